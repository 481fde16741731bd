"""What is known of recent calls, for views that open mid-call (the supervisor console, a CRM): a snapshot of
every active call (transport, legs, platform ids, duration, current emotion, last intent, escalations, failed
QA rules, a risk score to sort by) and each call's events so far.

Calls are kept per tenant (keyed by ``(tenant, call_id)``: two tenants may use the same call id) and every view is
filtered by the caller: a tenant sees its own calls, an admin every tenant's.

Across replicas (an event broker): other replicas' calls are folded from their serialised events
(:meth:`CallIndex.remote`, fed by the broker), so every replica's console and ``/v1/calls`` show the whole
fleet's calls; each call says which ``replica`` holds it. A remote call whose replica went silent (it died
without ``ended``) is forgotten after ``keep_ended_s`` without an event.

Fed synchronously by the event bus (one listener, O(1) per event), bounded: at most ``max_events`` per call
(partials are not kept, only the latest per leg), ended calls are forgotten ``keep_ended_s`` after they end, and
at most ``max_calls`` calls are remembered (the oldest ended ones go first).

Thread-safety: used from the event loop only.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any

from speechsvc.analysis.emotion import Emotion
from speechsvc.analysis.escalation import Escalation
from speechsvc.analysis.inspection import Qa, QaSummary
from speechsvc.analysis.intent import Intent
from speechsvc.security.principal import Principal
from speechsvc.types import BusEvent, CallEnded, CallEvent, Ready, RemoteEvent, Transcript

CallKey = tuple[str, str]  # (tenant, call_id)

# How much an escalation or a failed QA rule weighs when calls are sorted by risk.
RISK = {"regulator_threat": 5.0, "angry_caller": 4.0, "complaint": 3.0, "human_requested": 2.0,
        "cancellation_risk": 2.0}
QA_SEVERITY_RISK = {"critical": 2.0, "major": 1.0, "minor": 0.3, "info": 0.0}


@dataclass
class CallView:
    """The live state of one call, as a console card shows it."""

    call_id: str
    tenant: str = ""
    # The replica that holds the call (its broker name; empty without a broker).
    replica: str = ""
    # When the last event arrived (time.time()): a remote call whose replica died goes silent.
    last_event_at: float = 0.0
    transport: str = ""
    legs: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None
    # Per leg: the latest emotion label and smoothed P(angry).
    emotion: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The latest intent of the customer (or mixed) leg.
    intent: dict[str, Any] | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)
    qa_failed: list[dict[str, Any]] = field(default_factory=list)
    qa_score: float | None = None
    last_text: dict[str, str] = field(default_factory=dict)
    events: collections.deque[BusEvent] = field(default_factory=collections.deque, repr=False)
    partials: dict[str, BusEvent] = field(default_factory=dict, repr=False)

    @property
    def risk(self) -> float:
        """Escalations and failed QA rules, weighted; the voice's P(angry) breaks ties."""
        score = sum(RISK.get(e["kind"], 1.0) for e in self.escalations)
        score += sum(QA_SEVERITY_RISK.get(q["severity"], 0.5) for q in self.qa_failed)
        p_angry = max((e.get("p_angry_smoothed") or 0.0 for e in self.emotion.values()), default=0.0)
        return round(score + p_angry, 3)

    def summary(self, now: float) -> dict[str, Any]:
        end = self.ended_at or now
        return {
            "call_id": self.call_id, "tenant": self.tenant, "replica": self.replica, "transport": self.transport,
            "legs": list(self.legs),
            "metadata": self.metadata,
            "started_at": self.started_at, "ended_at": self.ended_at, "end_reason": self.end_reason,
            "active": self.ended_at is None, "duration_s": round(max(0.0, end - self.started_at), 1),
            "emotion": self.emotion, "intent": self.intent, "escalations": self.escalations,
            "qa_failed": self.qa_failed, "qa_score": self.qa_score, "last_text": self.last_text, "risk": self.risk,
        }


class CallIndex:
    def __init__(self, max_events: int = 2000, max_calls: int = 500, keep_ended_s: float = 600.0,
                 replica: str = "") -> None:
        self.max_events = max_events
        self.max_calls = max_calls
        self.keep_ended_s = keep_ended_s
        # This replica's name: the holder of the calls it folds as typed events.
        self.replica = replica
        self._calls: dict[CallKey, CallView] = {}

    def __call__(self, event: CallEvent) -> None:
        """Bus listener: fold one event into its call's view."""
        key = (event.tenant, event.call_id)
        view = self._calls.get(key)
        if view is None:
            if not isinstance(event.event, Ready):
                return  # a call started before the index did: nothing to anchor it to
            self._forget_old()
            view = self._calls[key] = CallView(event.call_id, event.tenant, self.replica,
                                               started_at=event.event.emitted_at)
        view.last_event_at = time.time()
        self._fold(view, event)

    def remote(self, event: RemoteEvent, origin: str) -> None:
        """Broker listener: fold one event of a call that replica ``origin`` holds (its JSON, as its client got it)."""
        key = (event.tenant, event.call_id)
        view = self._calls.get(key)
        body: dict[str, Any] = json.loads(event.json)
        if view is None:
            if event.type != Ready.TYPE:
                return  # a call that started before this replica followed the stream
            self._forget_old()
            view = self._calls[key] = CallView(event.call_id, event.tenant, origin,
                                               started_at=float(body.get("emitted_at") or time.time()))
        view.last_event_at = time.time()
        self._fold_remote(view, event, body)

    def calls(self, viewer: Principal, include_ended: bool = True, tenant: str | None = None) -> list[dict[str, Any]]:
        """The calls ``viewer`` may see (an admin: every tenant's, or ``tenant``'s), riskiest first, active before
        ended."""
        now = time.time()
        self._forget_old(now)
        views = [v for v in self._calls.values()
                 if viewer.sees(v.tenant) and (tenant is None or v.tenant == tenant)
                 and (include_ended or v.ended_at is None)]
        views.sort(key=lambda v: (v.ended_at is not None, -v.risk, -v.started_at))
        return [v.summary(now) for v in views]

    def get(self, viewer: Principal, call_id: str, tenant: str | None = None) -> CallView | None:
        """The call ``call_id`` of the viewer's tenant (an admin: of ``tenant``, else of its own tenant, else the
        most recent one of that id in any tenant); None when the viewer may not see it."""
        if not viewer.is_admin:
            return self._calls.get((viewer.tenant, call_id))
        if tenant is not None:
            return self._calls.get((tenant, call_id))
        own = self._calls.get((viewer.tenant, call_id))
        if own is not None:
            return own
        matches = [v for (_, c), v in self._calls.items() if c == call_id]
        return max(matches, key=lambda v: v.started_at) if matches else None

    @staticmethod
    def history(view: CallView) -> list[BusEvent]:
        """The call's events so far in seq order (only the latest partial per leg)."""
        return sorted([*view.events, *view.partials.values()], key=lambda e: e.seq)

    def _fold(self, view: CallView, call_event: CallEvent) -> None:
        e = call_event.event
        if isinstance(e, Transcript) and not e.is_final:
            view.partials[e.leg] = call_event
            return
        view.events.append(call_event)
        if len(view.events) > self.max_events:
            view.events.popleft()
        if isinstance(e, Ready):
            view.transport, view.legs = e.transport, tuple(e.legs)
            view.metadata = dict(call_event.metadata)
        elif isinstance(e, Transcript):
            view.partials.pop(e.leg, None)
            view.last_text[e.leg] = e.text
        elif isinstance(e, CallEnded):
            view.ended_at, view.end_reason = e.emitted_at, e.reason
            view.partials.clear()
        elif isinstance(e, Emotion):
            view.emotion[e.leg] = {"label": e.label, "p_angry_smoothed": e.p_angry_smoothed}
        elif isinstance(e, Intent) and e.leg in ("customer", "mixed"):
            view.intent = {"label": e.label, "probability": e.probability, "utterance": e.utterance}
        elif isinstance(e, Escalation):
            view.escalations.append({"kind": e.kind, "score": e.score, "reasons": list(e.reasons),
                                     "at": e.emitted_at, "text": e.evidence[0].text if e.evidence else ""})
        elif isinstance(e, Qa) and e.passed is False:
            view.qa_failed.append({"rule": e.rule, "severity": e.severity, "category": e.category,
                                   "at": e.emitted_at, "note": e.note,
                                   "text": e.evidence[0].text if e.evidence else ""})
        elif isinstance(e, QaSummary):
            view.qa_score = e.score

    def _fold_remote(self, view: CallView, event: RemoteEvent, body: dict[str, Any]) -> None:
        """:meth:`_fold` for another replica's call: the same view from the event's JSON fields."""
        kind, leg = event.type, str(body.get("leg", ""))
        if kind == "transcript.partial":
            view.partials[leg] = event
            return
        view.events.append(event)
        if len(view.events) > self.max_events:
            view.events.popleft()
        evidence = body.get("evidence") or [{}]
        if kind == Ready.TYPE:
            view.transport, view.legs = str(body.get("transport", "")), tuple(body.get("legs", ()))
            view.metadata = dict(body.get("metadata") or {})
        elif kind == "transcript.final":
            view.partials.pop(leg, None)
            view.last_text[leg] = str(body.get("text", ""))
        elif kind == CallEnded.TYPE:
            view.ended_at, view.end_reason = float(body.get("emitted_at") or time.time()), body.get("reason")
            view.partials.clear()
        elif kind == Emotion.TYPE:
            view.emotion[leg] = {"label": body.get("label"), "p_angry_smoothed": body.get("p_angry_smoothed")}
        elif kind == Intent.TYPE and leg in ("customer", "mixed"):
            view.intent = {"label": body.get("label"), "probability": body.get("probability"),
                           "utterance": body.get("utterance")}
        elif kind == Escalation.TYPE:
            view.escalations.append({"kind": body.get("kind"), "score": body.get("score"),
                                     "reasons": list(body.get("reasons") or ()), "at": body.get("emitted_at"),
                                     "text": evidence[0].get("text", "")})
        elif kind == Qa.TYPE and body.get("passed") is False:
            view.qa_failed.append({"rule": body.get("rule"), "severity": body.get("severity"),
                                   "category": body.get("category"), "at": body.get("emitted_at"),
                                   "note": body.get("note"), "text": evidence[0].get("text", "")})
        elif kind == QaSummary.TYPE:
            view.qa_score = body.get("score")

    def _forget_old(self, now: float | None = None) -> None:
        now = now or time.time()
        for key in [k for k, v in self._calls.items()
                    if (v.ended_at is not None and now - v.ended_at > self.keep_ended_s)
                    or (v.replica != self.replica and now - v.last_event_at > self.keep_ended_s)]:
            del self._calls[key]
        while len(self._calls) >= self.max_calls:
            ended = [v for v in self._calls.values() if v.ended_at is not None]
            if not ended:
                break  # every remembered call is active: the capacity limit bounds them
            oldest = min(ended, key=lambda v: v.ended_at or 0.0)
            del self._calls[(oldest.tenant, oldest.call_id)]
