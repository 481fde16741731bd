"""The quality-inspection rules file: schema (``version = 1``), parsing and validation at start-up.

A rules file is TOML. Its rules combine *operators* in the spirit of the call-center QA products (keyword,
regex, similarity to example sentences, A-then-B sequences, repetition, silence, speaking rate,
interruption, emotion / intent / negativity thresholds, hang-up) with ``and`` / ``or`` / ``not``::

    version = 1
    base_score = 100                    # the score of a call that triggers nothing

    [matchers.apology]                  # a named utterance matcher, used as "apology" or { ref = "apology" }
    op = "keyword"
    role = "agent"
    any = ["抱歉", "对不起", "不好意思"]

    [[rule]]
    id = "greeting_with_id"
    category = "script"
    severity = "major"                  # info | minor | major | critical
    score = -5                          # < 0: deducted when the rule fails; > 0: added when it passes
    kind = "requirement"                # "violation": a match fails the call; "requirement": no match does
    description = "坐席开场 15 秒内问候并报工号"
    when = { op = "regex", role = "agent", any = ["工号"], within_first_s = 15 }
    applies_if = { op = "duration", above_s = 10 }   # optional: otherwise the rule is not applicable

Two contexts, one syntax. A rule's ``when`` / ``applies_if`` is a *call condition* (true or false of the
whole call); ``and`` / ``or`` / ``not`` there combine call conditions, and an utterance operator there
means "some utterance matches". Inside ``sequence.first`` / ``.then``, ``repeat.match``,
``silence.excused_by``, ``op = "utterance"``'s ``match`` and ``[matchers.*]``, everything is about *one
utterance*, so ``and`` / ``or`` / ``not`` combine tests of the same utterance. See ``qa_default.toml`` for
every operator and its options, documented.

Validation errors (:class:`QaRulesError`) name the key path (``rule[3].when.or[1].threshold``) and, where
the text allows, the line: tomllib reports no lines for values, so the line is found by scanning the text
for the rule's block and the key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from speechsvc.analysis.record import Role

DEFAULT_RULES = Path(__file__).with_name("qa_default.toml")
SCHEMA_VERSION = 1

Severity = Literal["info", "minor", "major", "critical"]
Kind = Literal["violation", "requirement"]
SEVERITIES: tuple[Severity, ...] = ("info", "minor", "major", "critical")
# Default risk weight of a failed rule per severity (the pack's ``[risk]`` table overrides them).
RISK: dict[str, float] = {"critical": 2.0, "major": 1.0, "minor": 0.3, "info": 0.0}
ROLES: tuple[Role, ...] = ("agent", "customer", "any")
HANGUP_PARTIES = ("customer", "agent", "platform")
RULE_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")

KeyPath = tuple[str | int, ...]


class QaRulesError(ValueError):
    """A rules file that cannot be used; the message names the file, line (when found) and key path."""

    def __init__(self, source: str, key: KeyPath, problem: str, line: int | None = None) -> None:
        self.source, self.key, self.problem, self.line = source, key, problem, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {format_key(key) or '(top level)'}: {problem}")


def format_key(key: KeyPath) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# ---- the parsed rules: immutable specs (evaluation lives in qa_ops) ------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Matcher:
    """A test of one utterance. Every matcher may narrow who said it and when."""

    # Whose utterance: agent, customer or any leg.
    role: Role = "any"
    # Only utterances that start within this many seconds of the call's start.
    within_first_s: float | None = None
    # The name under [matchers] it was defined with, for evidence.
    name: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class KeywordMatch(Matcher):
    # Matches when the text holds one of `any` (if given), all of `all`, and none of `none`; words are
    # compared after the same normalisation as the text (Simplified, lower case, no spaces/punctuation).
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class RegexMatch(Matcher):
    # As KeywordMatch, with Python regular expressions searched in the normalised text.
    any: tuple[re.Pattern[str], ...] = ()
    all: tuple[re.Pattern[str], ...] = ()
    none: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class SimilarMatch(Matcher):
    # Example sentences; the utterance matches when its cosine similarity (sentence encoder) to one of them
    # reaches `threshold`.
    examples: tuple[str, ...]
    threshold: float


@dataclass(frozen=True, kw_only=True, eq=False)
class IntentMatch(Matcher):
    # Intent labels of the text model, and the least probability that counts.
    labels: tuple[str, ...]
    min_probability: float = 0.0


@dataclass(frozen=True, kw_only=True, eq=False)
class EmotionMatch(Matcher):
    # Voice emotion: one of these labels, and/or smoothed P(angry) / arousal at least this (all given must hold).
    labels: tuple[str, ...] = ()
    p_angry_above: float | None = None
    arousal_above: float | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class NegativityMatch(Matcher):
    # Text negativity at least `above` and/or at most `below`.
    above: float | None = None
    below: float | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class MatchAnd(Matcher):
    children: tuple[Matcher, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class MatchOr(Matcher):
    children: tuple[Matcher, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class MatchNot(Matcher):
    child: Matcher


@dataclass(frozen=True, kw_only=True, eq=False)
class Condition:
    """A statement about the whole call, true or false (or not applicable when the data to decide is missing)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Exists(Condition):
    # Some utterance matches; with within_first_s only utterances starting in the call's first N seconds
    # count, with within_last_s only those ending in its last N seconds.
    match: Matcher
    within_first_s: float | None = None
    within_last_s: float | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Sequence(Condition):
    # An utterance matching `first`, then a later one matching `then`, at most `within_utterances` later
    # (counting every utterance after `first`) and starting at most `within_s` after `first` ended.
    first: Matcher
    then: Matcher
    within_utterances: int | None = None
    within_s: float | None = None
    # None: the pair occurs. "then": some `first` is NOT followed by `then` in the window (a complaint
    # without an apology); a `first` still waiting when the call ends counts only if `then`'s role had a
    # chance to answer (spoke after it, or hung up). "first": some `then` is NOT preceded by `first` in the window
    # (account details without identity verification).
    absent: Literal["then", "first"] | None = None
    # With absent = "then": a `then` at most this many utterances BEFORE `first` answers it too (one apology
    # covers the complaints of the same episode that follow it).
    lookback_utterances: int | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Repeat(Condition):
    # `min_count` utterances match `match`; without `match`, `min_count` utterances of `role` say the same
    # thing: each at least min_chars long and at least min_similarity similar to one of the others, by
    # character-bigram Dice ("characters": the same words) or sentence-encoder cosine ("embedding": the same
    # request in other words).
    match: Matcher | None
    role: Role = "any"
    min_count: int = 3
    min_similarity: float = 0.8
    min_chars: int = 4
    similarity: Literal["characters", "embedding"] = "characters"


@dataclass(frozen=True, kw_only=True, eq=False)
class Silence(Condition):
    # A gap of more than min_s in which no leg speaks, between two utterances (and at the call's edges
    # when `edges`). `after`: who spoke last before it; `before`: who speaks first after it.
    min_s: float
    after: Role = "any"
    before: Role = "any"
    # The gap is excused when one of the last `excuse_lookback` utterances (of excused_by's role) before
    # it matches excused_by (e.g. the agent said 请稍等).
    excused_by: Matcher | None = None
    excuse_lookback: int = 2
    edges: bool = False


@dataclass(frozen=True, kw_only=True, eq=False)
class SpeakingRate(Condition):
    # Characters (Chinese) plus words (Latin script) per minute of speech of `role`, above `above` or
    # below `below`. per = "call": over the whole call (needs min_talk_s of speech, else not applicable);
    # per = "utterance": any one utterance of at least min_chars.
    role: Role = "agent"
    above: float | None = None
    below: float | None = None
    per: Literal["call", "utterance"] = "call"
    min_talk_s: float = 20.0
    min_chars: int = 10


@dataclass(frozen=True, kw_only=True, eq=False)
class Interruption(Condition):
    # `role` starts speaking while `over` is speaking (after `over` started) and they overlap by at least
    # min_overlap_ms; utterances shorter than min_chars (backchannels: 嗯, 好的) do not count.
    role: Role = "agent"
    over: Role = "customer"
    min_overlap_ms: int = 500
    min_chars: int = 0
    min_count: int = 1


@dataclass(frozen=True, kw_only=True, eq=False)
class Hangup(Condition):
    # Who ended the call (any of `by`), whether a leg was cut off mid-utterance, and which (all given must hold).
    by: tuple[str, ...] = ()
    mid_utterance: bool | None = None
    mid_leg: Role = "any"


@dataclass(frozen=True, kw_only=True, eq=False)
class Duration(Condition):
    # The call lasts more than above_s and/or less than below_s.
    above_s: float | None = None
    below_s: float | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class CallAnd(Condition):
    children: tuple[Condition, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class CallOr(Condition):
    children: tuple[Condition, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class CallNot(Condition):
    child: Condition


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    severity: Severity
    # Deducted (< 0) when the rule fails, added (> 0) when it passes.
    score: float
    # "violation": the condition matching fails the call; "requirement": it not matching does.
    kind: Kind
    description: str
    when: Condition
    # When given and false, the rule is not applicable to the call.
    applies_if: Condition | None = None
    # Roles the rule talks about; a call without a leg for one of them (a mono recording) is not applicable.
    roles: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class QaRules:
    rules: tuple[Rule, ...]
    base_score: float = 100.0
    # Where the rules came from and a digest of their text, so a report says which rules scored it.
    source: str = "<string>"
    digest: str = ""
    # How much a failed rule of each severity weighs when the console sorts live calls by risk (``[risk]``).
    risk: Mapping[str, float] = field(default_factory=lambda: dict(RISK))

    def similar_matchers(self) -> list[SimilarMatch]:
        """Every ``similar`` matcher of the enabled rules, once each: what needs the sentence encoder."""
        return list({id(m): m for m, _ in self._embedding_users()}.values())

    def embedding_roles(self) -> set[str]:
        """Roles whose utterances need a sentence embedding: those a ``similar`` matcher or an embedding
        ``repeat`` looks at ("any": every leg). Empty: the rules need no encoder."""
        return {role for _, role in self._embedding_users()} | {
            role for rule in self.rules for role in _embedding_repeats(rule)}

    def _embedding_users(self) -> list[tuple[SimilarMatch, str]]:
        """(similar matcher, the role it is narrowed to by itself or an enclosing matcher)."""
        found: list[tuple[SimilarMatch, str]] = []

        def walk(n: object, role: str) -> None:
            if isinstance(n, Matcher) and n.role != "any":
                role = n.role
            if isinstance(n, SimilarMatch):
                found.append((n, role))
            for attr in ("when", "applies_if", "match", "first", "then", "excused_by", "child"):
                child = getattr(n, attr, None)
                if child is not None:
                    walk(child, role)
            for child in getattr(n, "children", ()):
                walk(child, role)

        for rule in self.rules:
            walk(rule, "any")
        return found

    @property
    def identity(self) -> str:
        return f"{Path(self.source).name} v{SCHEMA_VERSION} sha256:{self.digest[:12]}"

    @classmethod
    def load(cls, path: Path | str | None = None) -> QaRules:
        """Parse and validate a rules file (default: the packaged Chinese service-call pack).

        Raises:
            QaRulesError: syntax errors, unknown keys or operators, bad values, undefined matchers; the
                message names the key path and, where found, the line.
        """
        path = Path(path) if path is not None else DEFAULT_RULES
        return cls.parse(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> QaRules:
        """Parse rules from TOML text (see :meth:`load`)."""
        return _Parser(text, source).parse()


# ---- parsing ------------------------------------------------------------------------------------------

_T = TypeVar("_T")
_MATCH_OPS = ("keyword", "regex", "similar", "intent", "emotion", "negativity")
_CALL_OPS = ("utterance", "sequence", "repeat", "silence", "speaking_rate", "interruption", "hangup", "duration")
_SCOPE_KEYS = ("role", "within_first_s", "name")


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.lines = text.splitlines()
        self.matchers: dict[str, Matcher] = {}
        self._raw_matchers: dict[str, Any] = {}
        self._resolving: list[str] = []

    def error(self, key: KeyPath, problem: str) -> QaRulesError:
        return QaRulesError(self.source, key, problem, _line_of(self.lines, key))

    def parse(self) -> QaRules:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as e:
            found = re.search(r"line (\d+)", str(e))
            line = int(found.group(1)) if found else None
            raise QaRulesError(self.source, (), f"not valid TOML: {e}", line) from None
        self.keys(data, (), ("version", "base_score", "matchers", "rule", "risk"))
        if "version" not in data:
            raise self.error(("version",), f"missing; this schema is version = {SCHEMA_VERSION}")
        if data["version"] != SCHEMA_VERSION:
            raise self.error(("version",), f"unsupported version {data['version']!r}; this engine reads "
                                           f"{SCHEMA_VERSION}")
        base = self.number(data, (), "base_score", 100.0)
        raw_risk = data.get("risk", {})
        if not isinstance(raw_risk, dict):
            raise self.error(("risk",), "must be a table of severity = weight")
        self.keys(raw_risk, ("risk",), SEVERITIES)
        risk: dict[str, float] = {severity: self.number(raw_risk, ("risk",), severity, RISK[severity])
                                  for severity in SEVERITIES}
        raw_matchers = data.get("matchers", {})
        if not isinstance(raw_matchers, dict):
            raise self.error(("matchers",), "must be a table of named matchers")
        self._raw_matchers = raw_matchers
        for name in raw_matchers:
            self.named(name, ("matchers", name))
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list) or not raw_rules:
            raise self.error(("rule",), "need at least one [[rule]]")
        rules: list[Rule] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_rules):
            rule = self.rule(raw, ("rule", i))
            if rule is None:
                continue
            if rule.id in seen:
                raise self.error(("rule", i, "id"), f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            rules.append(rule)
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return QaRules(tuple(rules), base, self.source, digest, risk)

    # -- helpers --

    def keys(self, raw: Mapping[str, Any], key: KeyPath, allowed: tuple[str, ...]) -> None:
        for k in raw:
            if k not in allowed:
                raise self.error((*key, k), f"unknown key; expected one of {', '.join(allowed)}")

    def typed(self, raw: Mapping[str, Any], key: KeyPath, name: str, kind: type[_T] | tuple[type, ...],
              default: _T, what: str) -> _T:
        if name not in raw:
            return default
        value = raw[name]
        if isinstance(value, bool) and kind is not bool and not (isinstance(kind, tuple) and bool in kind):
            raise self.error((*key, name), f"must be {what}, not {value!r}")
        if not isinstance(value, kind):
            raise self.error((*key, name), f"must be {what}, not {value!r}")
        return cast(_T, value)

    def number(self, raw: Mapping[str, Any], key: KeyPath, name: str, default: float) -> float:
        return float(self.typed(raw, key, name, (int, float), default, "a number"))

    def optional_number(self, raw: Mapping[str, Any], key: KeyPath, name: str, low: float | None = None,
                        high: float | None = None, positive: bool = False) -> float | None:
        if name not in raw:
            return None
        value = self.number(raw, key, name, 0.0)
        if positive and value <= 0:
            raise self.error((*key, name), f"must be > 0, not {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error((*key, name), f"must be in [{low}, {high}], not {value}")
        return value

    def integer(self, raw: Mapping[str, Any], key: KeyPath, name: str, default: int, low: int) -> int:
        value = self.typed(raw, key, name, int, default, "an integer")
        if value < low:
            raise self.error((*key, name), f"must be >= {low}, not {value}")
        return value

    def strings(self, raw: Mapping[str, Any], key: KeyPath, name: str) -> tuple[str, ...]:
        value = raw.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error((*key, name), "must be a list of non-empty strings")
        return tuple(value)

    def choice(self, raw: Mapping[str, Any], key: KeyPath, name: str, options: tuple[str, ...], default: str) -> str:
        value = raw.get(name, default)
        if value not in options:
            raise self.error((*key, name), f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)

    # -- rules --

    def rule(self, raw: Any, key: KeyPath) -> Rule | None:
        if not isinstance(raw, dict):
            raise self.error(key, "must be a table")
        self.keys(raw, key, ("id", "category", "severity", "score", "kind", "description", "when", "applies_if",
                             "enabled"))
        for required in ("id", "category", "severity", "score", "kind", "description", "when"):
            if required not in raw:
                raise self.error(key, f"missing required key {required!r}")
        rule_id = self.typed(raw, key, "id", str, "", "a string")
        if not RULE_ID.fullmatch(rule_id):
            raise self.error((*key, "id"), f"{rule_id!r} must be lower_snake_case ([a-z][a-z0-9_]*, <= 64 chars)")
        if not self.typed(raw, key, "enabled", bool, True, "true or false"):
            return None
        category = self.typed(raw, key, "category", str, "", "a string")
        description = self.typed(raw, key, "description", str, "", "a string")
        if not category.strip() or not description.strip():
            raise self.error((*key, "category" if not category.strip() else "description"), "must not be empty")
        when = self.condition(raw["when"], (*key, "when"))
        applies = self.condition(raw["applies_if"], (*key, "applies_if")) if "applies_if" in raw else None
        roles = _roles(when) | (_roles(applies) if applies else frozenset())
        return Rule(
            id=rule_id, category=category,
            severity=cast(Severity, self.choice(raw, key, "severity", SEVERITIES, "")),
            score=self.number(raw, key, "score", 0.0),
            kind=cast(Kind, self.choice(raw, key, "kind", ("violation", "requirement"), "")),
            description=description, when=when, applies_if=applies, roles=roles,
        )

    # -- call conditions --

    def condition(self, raw: Any, key: KeyPath) -> Condition:
        if isinstance(raw, str):
            return Exists(match=self.reference(raw, key))
        if not isinstance(raw, dict):
            raise self.error(key, "must be a table (a condition) or the name of a matcher")
        combinator = self.combinator_of(raw, key)
        if combinator == "not":
            self.keys(raw, key, ("not",))
            return CallNot(child=self.condition(raw["not"], (*key, "not")))
        if combinator in ("and", "or"):
            self.keys(raw, key, (combinator,))
            children = self.children(raw, key, combinator, self.condition)
            return CallAnd(children=children) if combinator == "and" else CallOr(children=children)
        if "ref" in raw:
            self.keys(raw, key, ("ref", "within_first_s", "within_last_s"))
            return Exists(match=self.reference(raw["ref"], (*key, "ref")),
                          within_first_s=self.optional_number(raw, key, "within_first_s", positive=True),
                          within_last_s=self.optional_number(raw, key, "within_last_s", positive=True))
        op = raw.get("op")
        if op in _MATCH_OPS:
            last_s = self.optional_number(raw, key, "within_last_s", positive=True)
            rest = {k: v for k, v in raw.items() if k != "within_last_s"}
            matcher = self.leaf(rest, key, top_level=True)
            return Exists(match=matcher, within_last_s=last_s)
        if op == "utterance":
            self.keys(raw, key, ("op", "match", "within_first_s", "within_last_s"))
            if "match" not in raw:
                raise self.error(key, "op = 'utterance' needs match (a matcher)")
            return Exists(match=self.matcher(raw["match"], (*key, "match")),
                          within_first_s=self.optional_number(raw, key, "within_first_s", positive=True),
                          within_last_s=self.optional_number(raw, key, "within_last_s", positive=True))
        if op == "sequence":
            return self.sequence(raw, key)
        if op == "repeat":
            self.keys(raw, key, ("op", "match", "role", "min_count", "min_similarity", "min_chars", "similarity"))
            return Repeat(
                match=self.matcher(raw["match"], (*key, "match")) if "match" in raw else None,
                role=cast(Role, self.choice(raw, key, "role", ROLES, "any")),
                min_count=self.integer(raw, key, "min_count", 3, 2),
                min_similarity=_default(self.optional_number(raw, key, "min_similarity", 0.0, 1.0), 0.8),
                min_chars=self.integer(raw, key, "min_chars", 4, 1),
                similarity=cast(Literal["characters", "embedding"],
                                self.choice(raw, key, "similarity", ("characters", "embedding"), "characters")),
            )
        if op == "silence":
            self.keys(raw, key, ("op", "min_s", "after", "before", "excused_by", "excuse_lookback", "edges"))
            min_s = self.optional_number(raw, key, "min_s", positive=True)
            if min_s is None:
                raise self.error(key, "op = 'silence' needs min_s (seconds)")
            return Silence(
                min_s=min_s, after=cast(Role, self.choice(raw, key, "after", ROLES, "any")),
                before=cast(Role, self.choice(raw, key, "before", ROLES, "any")),
                excused_by=self.matcher(raw["excused_by"], (*key, "excused_by")) if "excused_by" in raw else None,
                excuse_lookback=self.integer(raw, key, "excuse_lookback", 2, 1),
                edges=self.typed(raw, key, "edges", bool, False, "true or false"),
            )
        if op == "speaking_rate":
            self.keys(raw, key, ("op", "role", "above", "below", "per", "min_talk_s", "min_chars"))
            above = self.optional_number(raw, key, "above", positive=True)
            below = self.optional_number(raw, key, "below", positive=True)
            if above is None and below is None:
                raise self.error(key, "op = 'speaking_rate' needs above and/or below (chars per minute)")
            return SpeakingRate(
                role=cast(Role, self.choice(raw, key, "role", ROLES, "agent")), above=above, below=below,
                per=cast(Literal["call", "utterance"], self.choice(raw, key, "per", ("call", "utterance"), "call")),
                min_talk_s=self.number(raw, key, "min_talk_s", 20.0),
                min_chars=self.integer(raw, key, "min_chars", 10, 1),
            )
        if op == "interruption":
            self.keys(raw, key, ("op", "role", "over", "min_overlap_ms", "min_chars", "min_count"))
            role = cast(Role, self.choice(raw, key, "role", ROLES, "agent"))
            over = cast(Role, self.choice(raw, key, "over", ROLES, "customer"))
            if role == over and role != "any":
                raise self.error((*key, "over"), "a leg cannot interrupt itself; role and over must differ")
            return Interruption(
                role=role, over=over, min_overlap_ms=self.integer(raw, key, "min_overlap_ms", 500, 1),
                min_chars=self.integer(raw, key, "min_chars", 0, 0),
                min_count=self.integer(raw, key, "min_count", 1, 1),
            )
        if op == "hangup":
            self.keys(raw, key, ("op", "by", "mid_utterance", "mid_leg"))
            by = self.strings(raw, key, "by")
            for i, party in enumerate(by):
                if party not in HANGUP_PARTIES:
                    raise self.error((*key, "by", i), f"must be one of {', '.join(HANGUP_PARTIES)}, not {party!r}")
            mid = raw.get("mid_utterance")
            if mid is not None and not isinstance(mid, bool):
                raise self.error((*key, "mid_utterance"), "must be true or false")
            mid_leg = cast(Role, self.choice(raw, key, "mid_leg", ROLES, "any"))
            if not by and mid is None and mid_leg == "any":
                raise self.error(key, "op = 'hangup' needs by, mid_utterance and/or mid_leg")
            return Hangup(by=by, mid_utterance=mid, mid_leg=mid_leg)
        if op == "duration":
            self.keys(raw, key, ("op", "above_s", "below_s"))
            above_s = self.optional_number(raw, key, "above_s", low=0.0)
            below_s = self.optional_number(raw, key, "below_s", positive=True)
            if above_s is None and below_s is None:
                raise self.error(key, "op = 'duration' needs above_s and/or below_s")
            return Duration(above_s=above_s, below_s=below_s)
        raise self.unknown_op(raw, key, _MATCH_OPS + _CALL_OPS)

    def sequence(self, raw: Mapping[str, Any], key: KeyPath) -> Sequence:
        self.keys(raw, key, ("op", "first", "then", "within_utterances", "within_s", "absent", "lookback_utterances"))
        for required in ("first", "then"):
            if required not in raw:
                raise self.error(key, f"op = 'sequence' needs {required} (a matcher)")
        absent = raw.get("absent")
        if absent not in (None, "then", "first"):
            raise self.error((*key, "absent"), f"must be 'then' (first not followed by then) or 'first' (then not "
                                               f"preceded by first), not {absent!r}")
        lookback = self.integer(raw, key, "lookback_utterances", 0, 1) if "lookback_utterances" in raw else None
        if lookback is not None and absent != "then":
            raise self.error((*key, "lookback_utterances"), "only with absent = 'then'")
        return Sequence(
            first=self.matcher(raw["first"], (*key, "first")), then=self.matcher(raw["then"], (*key, "then")),
            within_utterances=self.integer(raw, key, "within_utterances", 0, 1) if "within_utterances" in raw else None,
            within_s=self.optional_number(raw, key, "within_s", positive=True),
            absent=cast(Literal["then", "first"] | None, absent),
            lookback_utterances=lookback,
        )

    def combinator_of(self, raw: Mapping[str, Any], key: KeyPath) -> str | None:
        found = [c for c in ("and", "or", "not") if c in raw]
        if len(found) > 1:
            raise self.error(key, f"one combinator per table, found {', '.join(found)}")
        if found and "op" in raw:
            raise self.error(key, f"a table is either an operator (op) or a combinator ({found[0]}), not both")
        return found[0] if found else None

    def children(self, raw: Mapping[str, Any], key: KeyPath, name: str,
                 parse: Callable[[Any, KeyPath], _T]) -> tuple[_T, ...]:
        items = raw[name]
        if not isinstance(items, list) or not items:
            raise self.error((*key, name), "must be a non-empty list")
        return tuple(parse(item, (*key, name, i)) for i, item in enumerate(items))

    def unknown_op(self, raw: Mapping[str, Any], key: KeyPath, known: tuple[str, ...]) -> QaRulesError:
        if "op" not in raw:
            return self.error(key, "needs op (an operator) or and / or / not / ref")
        return self.error((*key, "op"), f"unknown operator {raw['op']!r}; expected one of {', '.join(known)}")

    # -- utterance matchers --

    def reference(self, name: Any, key: KeyPath) -> Matcher:
        if not isinstance(name, str):
            raise self.error(key, "a matcher reference must be a string")
        if name not in self._raw_matchers:
            known = ", ".join(sorted(self._raw_matchers)) or "none defined"
            raise self.error(key, f"undefined matcher {name!r} (matchers: {known})")
        return self.named(name, ("matchers", name))

    def named(self, name: str, key: KeyPath) -> Matcher:
        if name in self.matchers:
            return self.matchers[name]
        if name in self._resolving:
            raise self.error(key, f"matcher {name!r} refers to itself ({' -> '.join([*self._resolving, name])})")
        self._resolving.append(name)
        matcher = self.matcher(self._raw_matchers[name], key, name=name)
        self._resolving.pop()
        self.matchers[name] = matcher
        return matcher

    def matcher(self, raw: Any, key: KeyPath, name: str | None = None) -> Matcher:
        if isinstance(raw, str):
            return self.reference(raw, key)
        if not isinstance(raw, dict):
            raise self.error(key, "must be a table (a matcher) or the name of one")
        combinator = self.combinator_of(raw, key)
        scope = self.scope(raw, key, name)
        if combinator is not None:
            self.keys(raw, key, (combinator, "role", "within_first_s"))
            if combinator == "not":
                return MatchNot(child=self.matcher(raw["not"], (*key, "not")), **scope)
            children = self.children(raw, key, combinator, self.matcher)
            return MatchAnd(children=children, **scope) if combinator == "and" else MatchOr(children=children, **scope)
        if "ref" in raw:
            self.keys(raw, key, ("ref",))
            return self.reference(raw["ref"], (*key, "ref"))
        if raw.get("op") in _CALL_OPS:
            raise self.error((*key, "op"), f"operator {raw['op']!r} is about the whole call; here one utterance is "
                                           f"tested (use {', '.join(_MATCH_OPS)})")
        return self.leaf(raw, key, name=name)

    def scope(self, raw: Mapping[str, Any], key: KeyPath, name: str | None) -> dict[str, Any]:
        return {
            "role": self.choice(raw, key, "role", ROLES, "any"),
            "within_first_s": self.optional_number(raw, key, "within_first_s", positive=True),
            "name": name,
        }

    def leaf(self, raw: Mapping[str, Any], key: KeyPath, top_level: bool = False, name: str | None = None) -> Matcher:
        op = raw.get("op")
        scope = self.scope(raw, key, name)
        if op in ("keyword", "regex"):
            self.keys(raw, key, ("op", "any", "all", "none", *_SCOPE_KEYS[:2]))
            words = {k: self.strings(raw, key, k) for k in ("any", "all", "none")}
            if not words["any"] and not words["all"]:
                if top_level:
                    raise self.error(key, f"op = {op!r} needs any or all; to forbid words, use kind = 'violation' "
                                          f"with any (none only narrows a match)")
                if not words["none"]:
                    raise self.error(key, f"op = {op!r} needs any, all or none")
            if op == "keyword":
                forms = {k: tuple(_keyword_form(w) for w in v) for k, v in words.items()}
                return KeywordMatch(any=forms["any"], all=forms["all"], none=forms["none"], **scope)
            patterns = {k: tuple(self.pattern(p, (*key, k, i)) for i, p in enumerate(v)) for k, v in words.items()}
            return RegexMatch(any=patterns["any"], all=patterns["all"], none=patterns["none"], **scope)
        if op == "similar":
            self.keys(raw, key, ("op", "examples", "threshold", *_SCOPE_KEYS[:2]))
            examples = self.strings(raw, key, "examples")
            if not examples:
                raise self.error(key, "op = 'similar' needs examples (sentences)")
            threshold = self.optional_number(raw, key, "threshold", 0.0, 1.0)
            if threshold is None:
                raise self.error(key, "op = 'similar' needs threshold (cosine similarity, 0..1)")
            return SimilarMatch(examples=examples, threshold=threshold, **scope)
        if op == "intent":
            self.keys(raw, key, ("op", "any", "min_probability", *_SCOPE_KEYS[:2]))
            labels = self.strings(raw, key, "any")
            if not labels:
                raise self.error(key, "op = 'intent' needs any (intent labels)")
            return IntentMatch(labels=labels, min_probability=self.optional_number(raw, key, "min_probability", 0, 1)
                               or 0.0, **scope)
        if op == "emotion":
            self.keys(raw, key, ("op", "labels", "p_angry_above", "arousal_above", *_SCOPE_KEYS[:2]))
            labels = self.strings(raw, key, "labels")
            p_angry = self.optional_number(raw, key, "p_angry_above", 0.0, 1.0)
            arousal = self.optional_number(raw, key, "arousal_above")
            if not labels and p_angry is None and arousal is None:
                raise self.error(key, "op = 'emotion' needs labels, p_angry_above and/or arousal_above")
            return EmotionMatch(labels=labels, p_angry_above=p_angry, arousal_above=arousal, **scope)
        if op == "negativity":
            self.keys(raw, key, ("op", "above", "below", *_SCOPE_KEYS[:2]))
            above = self.optional_number(raw, key, "above", 0.0, 1.0)
            below = self.optional_number(raw, key, "below", 0.0, 1.0)
            if above is None and below is None:
                raise self.error(key, "op = 'negativity' needs above and/or below (0..1)")
            return NegativityMatch(above=above, below=below, **scope)
        raise self.unknown_op(raw, key, _MATCH_OPS)

    def pattern(self, text: str, key: KeyPath) -> re.Pattern[str]:
        try:
            return re.compile(text)
        except re.error as e:
            raise self.error(key, f"bad regular expression {text!r}: {e}") from None


# ---- text form shared by the parser (keywords) and the evaluator (utterances) -------------------------

_NON_WORD = re.compile(r"[\W_]+")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff]) | (?=[\u3400-\u9fff])")


def match_form(text: str) -> str:
    """The text keywords and patterns are matched against: Simplified script, NFKC, lower case, punctuation
    removed, and no spaces next to Chinese characters (ASR output spaces Chinese unpredictably); Latin words
    keep one space between them."""
    from speechsvc.analysis.text import simplify

    spaced = " ".join(_NON_WORD.sub(" ", simplify(text)).split())
    return _CJK_GAP.sub("", spaced)


def _embedding_repeats(node: object) -> set[str]:
    """Roles of the repeat operators that compare sentence embeddings."""
    if isinstance(node, Repeat):
        return {node.role} if node.match is None and node.similarity == "embedding" else set()
    out: set[str] = set()
    for attr in ("when", "applies_if", "child"):
        child = getattr(node, attr, None)
        if child is not None:
            out |= _embedding_repeats(child)
    for child in getattr(node, "children", ()):
        out |= _embedding_repeats(child)
    return out


def _default(value: float | None, default: float) -> float:
    return default if value is None else value


def _keyword_form(word: str) -> str:
    return match_form(word) or word


def _roles(node: Condition | Matcher | None) -> frozenset[str]:
    """The agent/customer roles a condition talks about ("any" needs no particular leg)."""
    found: set[str] = set()

    def add(role: str) -> None:
        if role != "any":
            found.add(role)

    def walk(n: object) -> None:
        if isinstance(n, Matcher):
            add(n.role)
        for attr in ("role", "over", "after", "before", "mid_leg"):
            if isinstance(n, Condition) and isinstance(getattr(n, attr, None), str):
                add(getattr(n, attr))
        for attr in ("match", "first", "then", "excused_by", "child"):
            child = getattr(n, attr, None)
            if child is not None:
                walk(child)
        for child in getattr(n, "children", ()):
            walk(child)

    walk(node)
    return frozenset(found)


# ---- finding the line of a key path -------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")


def _line_of(lines: list[str], key: KeyPath) -> int | None:
    """1-based line of a key path, found by scanning the text: the block of rule[i] (its i-th [[rule]]
    header) or of matchers.NAME, then each named key in turn; list positions are skipped."""
    if not key:
        return None
    headers = [(i, m.group(1).replace(" ", "")) for i, line in enumerate(lines) if (m := _HEADER.match(line))]
    start, stop, found = 0, len(lines), -1
    names = [k for k in key if isinstance(k, str)]
    if key[0] == "rule" and len(key) > 1 and isinstance(key[1], int):
        rules = [i for i, name in headers if name == "rule" and lines[i].lstrip().startswith("[[")]
        if key[1] >= len(rules):
            return None
        start = found = rules[key[1]]
        stop = rules[key[1] + 1] if key[1] + 1 < len(rules) else len(lines)
        names = [k for k in key[2:] if isinstance(k, str)]
    elif key[0] == "matchers" and len(key) > 1:
        table = f"matchers.{key[1]}"
        own = next((i for i, name in headers if name == table), None)
        if own is not None:
            start = found = own
            stop = next((i for i, name in headers if i > own and not name.startswith(table + ".")), len(lines))
            names = [k for k in key[2:] if isinstance(k, str)]
        else:
            start = next((i for i, name in headers if name == "matchers"), 0)
            names = [k for k in key[1:] if isinstance(k, str)]
    for name in names:
        pattern = re.compile(rf"(^|[\s{{,.\[]){re.escape(name)}\s*(=|\]|\.)")
        hit = next((i for i in range(max(found, start), stop) if pattern.search(lines[i].split("#", 1)[0])), None)
        if hit is None:
            break
        found = hit
    return found + 1 if found >= 0 else None
