"""Agent or customer: which diarized speaker of a mono recording is which, from what each one says.

Each speaker's utterances are scored with cues of the agent's script (a greeting with a job number, "how can I
help", "anything else", thanks for calling, honorific 您, "let me check for you"), the QA pack's own agent
matchers (their keywords and regular expressions), and cues of a caller (我想…, 你们…, "my order", "I want"),
plus who opens the call (the agent answers an inbound call). The most agent-like speaker is the agent when its
lead over the next one reaches ``min_margin``; the others are customers. Below that the evidence is weak and
every speaker keeps its number (``speaker_0``, ``speaker_1``): the report then reads as a mixed leg with
speakers, and agent-only rules are not applicable rather than judged on the wrong person.

Pure functions; no model.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from speechsvc.analysis.text import normalize
from speechsvc.types import Leg

QA_PACK = Path(__file__).resolve().parent / "qa" / "qa_default.toml"

# (cue, weight): normalised text (Simplified, lower case, no spaces or punctuation) contains the cue.
AGENT_CUES: tuple[tuple[str, float], ...] = (
    ("工号", 3), ("公号", 2), ("很高兴为您服务", 3), ("为您服务", 2), ("有什么可以帮", 3), ("有什么能帮", 3),
    ("感谢您的来电", 3), ("感谢来电", 3), ("感谢您的耐心", 2), ("祝您", 2), ("欢迎致电", 3), ("请您稍等", 2),
    ("您稍等", 2), ("为您", 1), ("帮您", 1), ("给您", 1), ("请您", 1), ("您的", 0.5), ("您好", 1),
    ("我这边", 1), ("系统显示", 2), ("核实", 1), ("先生", 1), ("女士", 1), ("还有什么", 1), ("还有其他", 1),
    ("请问", 0.5), ("麻烦您", 1), ("让您久等", 2), ("抱歉", 0.5), ("不好意思", 0.5),
    ("thankyouforcalling", 3), ("howcanihelp", 3), ("howmayihelp", 3), ("mynameis", 1), ("anythingelse", 2),
    ("letmecheck", 2), ("onemoment", 1), ("foryourpatience", 2), ("haveagreatday", 2), ("haveaniceday", 2),
    ("youraccount", 1), ("foryou", 0.5), ("speaking", 1),
)
CUSTOMER_CUES: tuple[tuple[str, float], ...] = (
    ("我想", 1.5), ("我要", 1.5), ("我的", 1), ("我那个", 1.5), ("我这个", 1), ("你们", 1.5), ("你好", 0.5),
    ("喂", 1), ("怎么回事", 1.5), ("为什么", 1), ("能不能", 0.5), ("帮我", 1.5), ("我家", 1), ("我刚", 1),
    ("我昨天", 1), ("我上", 0.5), ("投诉", 0.5), ("退款", 0.5), ("怎么办", 1), ("到底", 1),
    ("iwant", 1.5), ("idliketo", 1.5), ("ineed", 1), ("myaccount", 1), ("myorder", 1.5), ("mycard", 1),
    ("why", 0.5), ("canyou", 1), ("hello", 0.5),
)
OPENER_WEIGHT = 1.0  # to whoever speaks first
MIN_MARGIN = 2.0  # chosen on the tune split (benchmarks/diarization.py)


@dataclass(frozen=True)
class SpeakerText:
    """One utterance of a diarized speaker."""

    speaker: int
    start_ms: int
    text: str


@dataclass(frozen=True)
class Roles:
    """The role of each speaker (None: not known) and how sure we are (0..1)."""

    roles: tuple[Leg | None, ...]
    confidence: float
    scores: tuple[float, ...]

    def label(self, speaker: int) -> str:
        """``agent`` / ``customer`` when known, else ``speaker_N``."""
        role = self.roles[speaker] if speaker < len(self.roles) else None
        return role if role is not None else f"speaker_{speaker}"

    def leg(self, speaker: int) -> Leg:
        role = self.roles[speaker] if speaker < len(self.roles) else None
        return role if role is not None else "mixed"

    @property
    def known(self) -> bool:
        return any(r is not None for r in self.roles)


@dataclass(frozen=True)
class RoleCues:
    agent: tuple[tuple[str, float], ...]
    customer: tuple[tuple[str, float], ...]
    agent_patterns: tuple[re.Pattern[str], ...] = ()
    customer_patterns: tuple[re.Pattern[str], ...] = ()

    def score(self, text: str) -> float:
        """Agent-likeness of one utterance (positive: agent; negative: customer)."""
        t = normalize(text).replace(" ", "")  # English cues are written without spaces too
        s = sum(w for cue, w in self.agent if cue in t) - sum(w for cue, w in self.customer if cue in t)
        s += sum(1.0 for p in self.agent_patterns if p.search(t)) - sum(1.0 for p in self.customer_patterns
                                                                        if p.search(t))
        return s


@lru_cache(maxsize=8)
def cues_for(qa_pack: Path | None = QA_PACK) -> RoleCues:
    """The built-in cues plus the QA pack's agent and customer matchers (keyword and regex ``any`` lists; a
    pack that cannot be read adds nothing: the QA stage reports its errors)."""
    agent, customer = list(AGENT_CUES), list(CUSTOMER_CUES)
    agent_re: list[re.Pattern[str]] = []
    customer_re: list[re.Pattern[str]] = []
    if qa_pack is not None and qa_pack.is_file():
        try:
            matchers = tomllib.loads(qa_pack.read_text(encoding="utf-8")).get("matchers", {})
        except (OSError, tomllib.TOMLDecodeError):
            matchers = {}
        known = {c for c, _ in agent + customer}
        for name, node in matchers.items():
            if name == "forbidden":  # taboo phrases: what an agent must NOT say, so no evidence of the role
                continue
            for role, op, values in _leaves(node, node.get("role", "any") if isinstance(node, dict) else "any"):
                if role not in ("agent", "customer"):
                    continue
                if op == "keyword":
                    words = [normalize(v).replace(" ", "") for v in values]
                    extra = [(w, 1.0) for w in words if w and w not in known]
                    (agent if role == "agent" else customer).extend(extra)
                    known.update(c for c, _ in extra)
                elif op == "regex":
                    compiled = []
                    for v in values:
                        try:
                            compiled.append(re.compile(v))
                        except re.error:
                            continue
                    (agent_re if role == "agent" else customer_re).extend(compiled)
    return RoleCues(tuple(agent), tuple(customer), tuple(agent_re), tuple(customer_re))


def _leaves(node: Any, role: str) -> Iterable[tuple[str, str, list[str]]]:
    if not isinstance(node, dict):
        return
    role = node.get("role", role)
    if node.get("op") in ("keyword", "regex"):
        yield role, node["op"], [str(v) for v in node.get("any", [])]
    for key in ("or", "and"):
        for child in node.get(key, []):
            yield from _leaves(child, role)


def two_sides(roles: Roles) -> bool:
    """Whether the text shows an agent side *and* a customer side: roles known, the agent's speaker scored
    agent-like and another speaker caller-like (below zero). Used to keep apart two voices that sound alike
    (:func:`speechsvc.batch.speakers.label_roles`)."""
    if not roles.known:
        return False
    agent = [s for s, r in zip(roles.scores, roles.roles, strict=True) if r == "agent"]
    customer = [s for s, r in zip(roles.scores, roles.roles, strict=True) if r == "customer"]
    return bool(agent) and agent[0] > 0 and bool(customer) and min(customer) < 0


def assign_roles(utterances: Sequence[SpeakerText], speakers: int, cues: RoleCues | None = None,
                 min_margin: float = MIN_MARGIN) -> Roles:
    """Roles of ``speakers`` diarized speakers from their utterances (see the module docstring)."""
    cues = cues or cues_for()
    scores = [0.0] * speakers
    for u in utterances:
        if 0 <= u.speaker < speakers:
            scores[u.speaker] += cues.score(u.text)
    spoken = sorted((u for u in utterances if u.text.strip()), key=lambda u: u.start_ms)
    if spoken and 0 <= spoken[0].speaker < speakers:
        scores[spoken[0].speaker] += OPENER_WEIGHT
    if speakers < 2:
        return Roles((None,) * speakers, 0.0, tuple(scores))
    order = sorted(range(speakers), key=lambda k: -scores[k])
    margin = scores[order[0]] - scores[order[1]]
    confidence = round(1.0 - math.exp(-max(0.0, margin) / 3.0), 3)
    if margin < min_margin:
        return Roles((None,) * speakers, confidence, tuple(scores))
    roles: tuple[Leg | None, ...] = tuple("agent" if k == order[0] else "customer" for k in range(speakers))
    return Roles(roles, confidence, tuple(round(s, 2) for s in scores))
