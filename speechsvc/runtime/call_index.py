"""What is known of recent calls, for views that open mid-call (the supervisor console, a CRM): a snapshot of
every active call (transport, legs, platform ids, duration, last words, what each analysis stage shows of it on
the call's card: current emotion, last intent, escalations, failed QA rules..., and a risk score to sort by, the
sum of the stages' own) and each call's events so far.

Calls are kept per tenant (keyed by ``(tenant, call_id)``: two tenants may use the same call id) and every view is
filtered by the caller: a tenant sees its own calls, an admin every tenant's.

Fed synchronously by the event bus (one listener, O(1) per event), bounded: at most ``max_events`` per call
(partials are not kept, only the latest per leg), ended calls are forgotten ``keep_ended_s`` after they end, and
at most ``max_calls`` calls are remembered (the oldest ended ones go first).

Thread-safety: used from the event loop only.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from speechsvc.analysis.base import Stage
from speechsvc.security.principal import Principal
from speechsvc.types import CallEnded, CallEvent, Ready, Transcript

CallKey = tuple[str, str]  # (tenant, call_id)


@dataclass
class CallView:
    """The live state of one call, as a console card shows it."""

    call_id: str
    tenant: str = ""
    transport: str = ""
    legs: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None
    last_text: dict[str, str] = field(default_factory=dict)
    # What the analysis stages show of the call (``Stage.card``: emotion, intent, escalations, qa_failed...),
    # and each stage's risk score for it.
    card: dict[str, Any] = field(default_factory=dict)
    risks: dict[str, float] = field(default_factory=dict)
    events: collections.deque[CallEvent] = field(default_factory=collections.deque, repr=False)
    partials: dict[str, CallEvent] = field(default_factory=dict, repr=False)

    @property
    def risk(self) -> float:
        """The stages' risk scores summed (escalations and failed QA rules weighted by their rules files; the
        voice's P(angry) breaks ties)."""
        return round(sum(self.risks.values()), 3)

    def summary(self, now: float) -> dict[str, Any]:
        end = self.ended_at or now
        return {
            "call_id": self.call_id, "tenant": self.tenant, "transport": self.transport, "legs": list(self.legs),
            "metadata": self.metadata,
            "started_at": self.started_at, "ended_at": self.ended_at, "end_reason": self.end_reason,
            "active": self.ended_at is None, "duration_s": round(max(0.0, end - self.started_at), 1),
            **self.card, "last_text": self.last_text, "risk": self.risk,
        }


class CallIndex:
    def __init__(self, stages: Sequence[Stage] = (), max_events: int = 2000, max_calls: int = 500,
                 keep_ended_s: float = 600.0) -> None:
        self.stages = stages
        self.max_events = max_events
        self.max_calls = max_calls
        self.keep_ended_s = keep_ended_s
        self._calls: dict[CallKey, CallView] = {}

    def __call__(self, event: CallEvent) -> None:
        """Bus listener: fold one event into its call's view."""
        key = (event.tenant, event.call_id)
        view = self._calls.get(key)
        if view is None:
            if not isinstance(event.event, Ready):
                return  # a call started before the index did: nothing to anchor it to
            self._forget_old()
            view = self._calls[key] = CallView(event.call_id, event.tenant, started_at=event.event.emitted_at)
        self._fold(view, event)

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
    def history(view: CallView) -> list[CallEvent]:
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
        else:
            for stage in self.stages:
                risk = stage.card(view.card, e)
                if risk is not None:
                    view.risks[stage.name] = risk

    def _forget_old(self, now: float | None = None) -> None:
        now = now or time.time()
        for key in [k for k, v in self._calls.items()
                    if v.ended_at is not None and now - v.ended_at > self.keep_ended_s]:
            del self._calls[key]
        while len(self._calls) >= self.max_calls:
            ended = [v for v in self._calls.values() if v.ended_at is not None]
            if not ended:
                break  # every remembered call is active: the capacity limit bounds them
            oldest = min(ended, key=lambda v: v.ended_at or 0.0)
            del self._calls[(oldest.tenant, oldest.call_id)]
