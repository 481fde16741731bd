"""Escalation policy: what a supervisor should know about a call, from the call's history. Pure: no models,
no I/O; one :class:`EscalationPolicy` per call, fed one :class:`UtteranceAnalysis` at a time.

Each kind (``human_requested``, ``complaint``, ``regulator_threat``, ``cancellation_risk``,
``angry_caller``) scores every utterance from keyword cues, the intent, text negativity and the voice's
P(angry), as weighted in the rules file (:data:`DEFAULT_RULES`, TOML, editable by the operator). A kind
fires once per episode (score >= ``fire_at``), and re-arms only after ``release_after`` utterances of
that leg scored below ``release_below`` (hysteresis), so one angry caller is one event, not twenty.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from speechsvc.nlp.text import simplify
from speechsvc.types import Escalation, Evidence, Leg

DEFAULT_RULES = Path(__file__).with_name("escalation_rules.toml")


@dataclass(frozen=True)
class KindRule:
    name: str
    cues: dict[str, float] = field(default_factory=dict)
    intents: dict[str, float] = field(default_factory=dict)
    negativity: float = 0.0
    p_angry: float = 0.0
    fire_at: float = 0.8
    release_below: float = 0.4


@dataclass(frozen=True)
class EscalationRules:
    cues: dict[str, tuple[re.Pattern[str], ...]]
    kinds: tuple[KindRule, ...]
    legs: tuple[str, ...] = ("customer", "mixed")
    release_after: int = 3

    @classmethod
    def load(cls, path: Path | None = None) -> EscalationRules:
        """Parse and validate a rules file (default: the packaged one).

        Raises:
            ValueError: unknown cue names, bad regular expressions or thresholds, with the offending key.
        """
        path = path or DEFAULT_RULES
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        cues: dict[str, tuple[re.Pattern[str], ...]] = {}
        for name, patterns in data.get("cues", {}).items():
            try:
                cues[name] = tuple(re.compile(p) for p in patterns)
            except re.error as e:
                raise ValueError(f"{path}: cues.{name}: bad pattern: {e}") from None
        kinds = []
        for name, spec in data.get("kinds", {}).items():
            rule = KindRule(name=name, **spec)
            unknown = set(rule.cues) - set(cues)
            if unknown:
                raise ValueError(f"{path}: kinds.{name} uses undefined cues {sorted(unknown)}")
            if not 0 <= rule.release_below < rule.fire_at:
                raise ValueError(f"{path}: kinds.{name}: need 0 <= release_below < fire_at")
            kinds.append(rule)
        policy = data.get("policy", {})
        return cls(cues, tuple(kinds), tuple(policy.get("legs", cls.legs)), int(policy.get("release_after", 3)))

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


@dataclass(frozen=True)
class UtteranceAnalysis:
    """Everything known about one final utterance."""

    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    text: str
    intent: str = "other"
    intent_probability: float = 0.0
    negativity: float = 0.0
    # Smoothed P(angry) from the voice; None when the emotion model did not run.
    p_angry: float | None = None
    cues: dict[str, str] = field(default_factory=dict)


@dataclass
class _Episode:
    active: bool = False
    quiet: int = 0


class EscalationPolicy:
    """Per-call state. ``update`` returns the escalations this utterance triggers (often none)."""

    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules
        self._episodes: dict[tuple[str, str], _Episode] = {}

    def score(self, rule: KindRule, a: UtteranceAnalysis) -> tuple[float, list[str], list[Evidence]]:
        score, reasons, evidence = 0.0, [], []
        for cue, weight in rule.cues.items():
            if cue in a.cues:
                score += weight
                reasons.append(f"cue {cue}: '{a.cues[cue]}'")
                evidence.append(Evidence(a.utterance, a.leg, a.start_ms, a.end_ms, cue, a.text))
        intent_weight = rule.intents.get(a.intent, 0.0)
        if intent_weight:
            score += intent_weight * a.intent_probability
            reasons.append(f"intent {a.intent} ({a.intent_probability:.2f})")
            evidence.append(Evidence(a.utterance, a.leg, a.start_ms, a.end_ms, f"intent:{a.intent}", a.text))
        if rule.negativity and a.negativity:
            score += rule.negativity * a.negativity
            if a.negativity >= 0.5:
                reasons.append(f"negative wording ({a.negativity:.2f})")
        if rule.p_angry and a.p_angry is not None:
            score += rule.p_angry * a.p_angry
            if a.p_angry >= 0.5:
                reasons.append(f"angry voice ({a.p_angry:.2f})")
                evidence.append(Evidence(a.utterance, a.leg, a.start_ms, a.end_ms, "voice:angry", a.text))
        return min(score, 1.0), reasons, evidence

    def update(self, a: UtteranceAnalysis) -> list[Escalation]:
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
