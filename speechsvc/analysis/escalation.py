"""The escalation stage: what a supervisor should know about a call, from the call's history. The policy is
pure (no models, no I/O); one :class:`EscalationPolicy` per call, fed one analysed utterance at a time, after
the intent and emotion stages. Emits ``escalation`` events.

Each kind (``human_requested``, ``complaint``, ``regulator_threat``, ``cancellation_risk``,
``angry_caller``) scores every utterance from keyword cues, the intent, text negativity and the voice's
P(angry), as weighted in the rules file (:data:`DEFAULT_RULES`, TOML, editable by the operator). A kind
fires once per episode (score >= ``fire_at``), and re-arms only after ``release_after`` utterances of
that leg scored below ``release_below`` (hysteresis), so one angry caller is one event, not twenty.

The rules file is validated whole when it loads (at start-up): an unknown key, an undefined cue, an intent
the text model does not predict, a bad pattern or threshold is a ``ValueError`` naming the key.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from speechsvc.analysis.base import CallInfo, Stage, StageCall
from speechsvc.analysis.record import Utterance
from speechsvc.analysis.text import simplify
from speechsvc.config import Settings
from speechsvc.models import head_labels
from speechsvc.types import Event, Leg

log = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("escalation_rules.toml")
LEGS = ("customer", "agent", "mixed")


@dataclass(frozen=True)
class Evidence:
    """Why an escalation fired: one utterance and the cue found in it."""

    utterance: int
    leg: Leg
    start_ms: int
    end_ms: int
    cue: str
    text: str


@dataclass(frozen=True)
class Escalation(Event):
    TYPE: ClassVar[str] = "escalation"
    kind: str
    score: float
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    leg: Leg = "customer"


@dataclass(frozen=True)
class KindRule:
    name: str
    cues: dict[str, float] = field(default_factory=dict)
    intents: dict[str, float] = field(default_factory=dict)
    negativity: float = 0.0
    p_angry: float = 0.0
    fire_at: float = 0.8
    release_below: float = 0.4
    # What one escalation of this kind weighs when live calls are sorted by risk.
    risk: float = 1.0


@dataclass(frozen=True)
class EscalationRules:
    cues: dict[str, tuple[re.Pattern[str], ...]]
    kinds: tuple[KindRule, ...]
    legs: tuple[str, ...] = ("customer", "mixed")
    release_after: int = 3

    @classmethod
    def load(cls, path: Path | None = None, intents: Collection[str] | None = None) -> EscalationRules:
        """Parse and validate a whole rules file (default: the packaged one).

        ``intents``: the labels the text model predicts; an intent weight on any other name is an error
        (it would never fire).

        Raises:
            ValueError: an unknown key, an undefined cue, an unknown intent, a bad pattern or threshold, with
                the file and the offending key.
        """
        path = path or DEFAULT_RULES
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{path}: cannot read the escalation rules: {e}") from None
        _known(path, "", data, {"policy", "cues", "kinds"})
        policy = _table(path, "policy", data.get("policy", {}))
        _known(path, "policy", policy, {"legs", "release_after"})
        cues: dict[str, tuple[re.Pattern[str], ...]] = {}
        for name, patterns in _table(path, "cues", data.get("cues", {})).items():
            if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise ValueError(f"{path}: cues.{name}: expected a list of regular expressions")
            try:
                cues[name] = tuple(re.compile(p) for p in patterns)
            except re.error as e:
                raise ValueError(f"{path}: cues.{name}: bad pattern: {e}") from None
        allowed = {f.name for f in fields(KindRule)} - {"name"}
        kinds = []
        for name, spec in _table(path, "kinds", data.get("kinds", {})).items():
            key = f"kinds.{name}"
            _known(path, key, _table(path, key, spec), allowed)
            try:
                rule = KindRule(name=name, **spec)
            except TypeError as e:
                raise ValueError(f"{path}: {key}: {e}") from None
            if unknown := set(rule.cues) - set(cues):
                raise ValueError(f"{path}: {key}.cues uses undefined cues {sorted(unknown)}")
            if intents is not None and (unknown := set(rule.intents) - set(intents)):
                raise ValueError(f"{path}: {key}.intents names intents the text model does not predict: "
                                 f"{sorted(unknown)}; known: {sorted(intents)}")
            weights = [*rule.cues.values(), *rule.intents.values(), rule.negativity, rule.p_angry, rule.risk]
            if not all(isinstance(w, int | float) and w >= 0 for w in weights):
                raise ValueError(f"{path}: {key}: weights must be numbers >= 0")
            if not 0 <= rule.release_below < rule.fire_at:
                raise ValueError(f"{path}: {key}: need 0 <= release_below < fire_at")
            kinds.append(rule)
        legs = tuple(policy.get("legs", cls.legs))
        if unknown := set(legs) - set(LEGS):
            raise ValueError(f"{path}: policy.legs: unknown legs {sorted(unknown)}; use {LEGS}")
        release_after = policy.get("release_after", 3)
        if not isinstance(release_after, int) or release_after < 1:
            raise ValueError(f"{path}: policy.release_after: expected an integer >= 1")
        return cls(cues, tuple(kinds), legs, release_after)

    def detect(self, text: str) -> dict[str, str]:
        """Cue name -> the matched words, for every cue found in ``text``."""
        norm = simplify(text)
        found = {}
        for name, patterns in self.cues.items():
            for pattern in patterns:
                match = pattern.search(norm)
                if match:
                    found[name] = match.group()
                    break
        return found


@dataclass
class _Episode:
    active: bool = False
    quiet: int = 0


class EscalationPolicy:
    """Per-call state. ``update`` returns the escalations this utterance triggers (often none)."""

    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules
        self._episodes: dict[tuple[str, str], _Episode] = {}

    def score(self, rule: KindRule, a: Utterance) -> tuple[float, list[str], list[Evidence]]:
        score, reasons, evidence = 0.0, [], []
        for cue, weight in rule.cues.items():
            if cue in a.cues:
                score += weight
                reasons.append(f"cue {cue}: '{a.cues[cue]}'")
                evidence.append(Evidence(a.index, a.leg, a.start_ms, a.end_ms, cue, a.text))
        intent_weight = rule.intents.get(a.intent or "other", 0.0)
        if intent_weight:
            probability = a.intent_probability or 0.0
            score += intent_weight * probability
            reasons.append(f"intent {a.intent} ({probability:.2f})")
            evidence.append(Evidence(a.index, a.leg, a.start_ms, a.end_ms, f"intent:{a.intent}", a.text))
        if rule.negativity and a.negativity:
            score += rule.negativity * a.negativity
            if a.negativity >= 0.5:
                reasons.append(f"negative wording ({a.negativity:.2f})")
        p_angry = a.p_angry_smoothed
        if rule.p_angry and p_angry is not None:
            score += rule.p_angry * p_angry
            if p_angry >= 0.5:
                reasons.append(f"angry voice ({p_angry:.2f})")
                evidence.append(Evidence(a.index, a.leg, a.start_ms, a.end_ms, "voice:angry", a.text))
        return min(score, 1.0), reasons, evidence

    def update(self, a: Utterance) -> list[Escalation]:
        if a.leg not in self.rules.legs:
            return []
        fired = []
        for rule in self.rules.kinds:
            score, reasons, evidence = self.score(rule, a)
            episode = self._episodes.setdefault((a.leg, rule.name), _Episode())
            if episode.active:
                episode.quiet = episode.quiet + 1 if score < rule.release_below else 0
                if episode.quiet >= self.rules.release_after:
                    episode.active = False
                continue
            if score >= rule.fire_at:
                episode.active, episode.quiet = True, 0
                fired.append(Escalation(rule.name, round(score, 3), tuple(reasons), tuple(evidence), a.leg))
        return fired


def _table(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: {key}: expected a table")
    return value


def _known(path: Path, key: str, table: dict[str, Any], allowed: set[str]) -> None:
    if unknown := set(table) - allowed:
        where = f"{key}." if key else ""
        raise ValueError(f"{path}: unknown key {where}{sorted(unknown)[0]}; expected one of {sorted(allowed)}")


class EscalationStage(Stage):
    """The policy over each call's analysed utterances (after intent and emotion)."""

    name = "escalation"
    phase = 2

    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules

    @classmethod
    def load(cls, settings: Settings) -> EscalationStage:
        intents = head_labels(settings.intent_model_dir)
        return cls(EscalationRules.load(settings.escalation_rules, intents))

    def open(self, call: CallInfo) -> StageCall[None]:
        return _EscalationCall(self.rules)

    def card(self, card: dict[str, Any], event: Event) -> float | None:
        """The call's escalations; risk: the weight of each (``risk`` of its kind in the rules)."""
        if not isinstance(event, Escalation):
            return None
        escalations = card.setdefault("escalations", [])
        escalations.append({"kind": event.kind, "score": event.score, "reasons": list(event.reasons),
                            "at": event.emitted_at, "text": event.evidence[0].text if event.evidence else ""})
        weights = {kind.name: kind.risk for kind in self.rules.kinds}
        return sum(weights.get(e["kind"], 1.0) for e in escalations)

    @classmethod
    def columns(cls, section: Any) -> dict[str, Any]:
        return {"escalations": ";".join(sorted({e["kind"] for e in section or ()}))}


class _EscalationCall(StageCall[None]):
    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules
        self.policy = EscalationPolicy(rules)

    def apply(self, u: Utterance, found: None) -> list[Event]:
        u.cues = self.rules.detect(u.text)
        fired = self.policy.update(u)
        for escalation in fired:
            log.info("escalation %s (%.2f) on %s utterance %d", escalation.kind, escalation.score, u.leg, u.index)
        return list(fired)
