"""What the recognizer's text looks like: Simplified script, punctuation, known hallucinations.

Whisper writes Mandarin in Taiwan-style Traditional characters. OpenCC's ``tw2s`` converts them with Taiwan
variant phrases first, so characters whose Simplified form depends on the word come out right in context
(``看著`` → ``看着`` but ``著名`` stays, ``乾淨`` → ``干净``); plain ``t2s`` left ``著`` everywhere.

Punctuation in Mandarin output is full-width (``，。？！：；``), and each final ends a sentence (``。`` unless it
already ends in sentence punctuation), so subtitles and readers get consistent text; ``punctuation=False``
strips sentence punctuation instead (search indexes, downstream NLP that wants bare text). Decimal points,
times and Latin words keep their ASCII forms.
"""

from __future__ import annotations

import functools
import re
from typing import Protocol

REPLACEMENT = "\ufffd"  # what a byte-level BPE decode gives for an incomplete UTF-8 sequence

# Text Whisper is known to invent on silence, music and noise (from subtitle-laden training data).
HALLUCINATIONS = (
    "字幕由amara.org社区提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "thank you for watching",
    "thanks for watching",
    "优优独播剧场",
    "小编字幕",
    "中文字幕",
)

FULL_WIDTH = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；", ".": "。"}
SENTENCE_END = "。？！…"
# Clause marks a final may end on (a pause the recognizer punctuated); the sentence end replaces them.
CLAUSE_END = "，、；：,;:"
# Sentence punctuation removed when punctuation is off (ASCII forms only outside numbers, see _ascii_punct).
STRIPPED = "，。？！：；、“”‘’「」『』《》…—"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# Languages (Whisper's codes) written without spaces between words: Chinese, Cantonese, Japanese, Thai, Lao,
# Burmese, Khmer. Korean separates words with spaces.
UNSPACED = frozenset({"zh", "yue", "ja", "th", "lo", "my", "km"})


def word_separator(*languages: str) -> str:
    """What goes between two pieces of text in these languages: nothing when all are written without spaces
    (``zh`` beside ``zh``), else one space. The one rule every surface that joins texts uses."""
    return "" if languages and all(lang in UNSPACED for lang in languages) else " "


class Converter(Protocol):
    def convert(self, text: str) -> str: ...


@functools.cache
def converter(config: str) -> Converter:
    """The OpenCC converter of ``config`` (``tw2s``, ``t2s``, ``s2tw``), built once per process (its tables are
    not free to load) and shared: ``convert`` keeps no state between calls."""
    import opencc

    built: Converter = opencc.OpenCC(config)
    return built
# ASCII sentence punctuation that is not part of a number (3.5, 10:30, 1,000) or of a Latin token (www.x.com).
_ASCII_PUNCT = re.compile(r"(?<![0-9A-Za-z])[,?!:;.]|[,?!:;.](?![0-9A-Za-z])")


class TextNormalizer:
    """Output clean-up per language."""

    def __init__(self, punctuation: bool = True) -> None:
        self.punctuation = punctuation
        self._tw2s = converter("tw2s")

    def __call__(self, text: str, language: str, final: bool = True) -> str:
        """The text as callers see it; ``final`` adds the sentence end of a Mandarin final."""
        text = self.piece(" ".join(text.split()), language).strip()
        squashed = "".join(ch for ch in text.lower() if ch.isalnum() or ch == ".")
        if any(h.replace(" ", "") in squashed for h in HALLUCINATIONS) and len(squashed) < 40:
            return ""
        return end_sentence(text, language, self.punctuation) if final else text

    def piece(self, text: str, language: str) -> str:
        """Script and punctuation of a piece of text (a whole hypothesis or one of its words), same length
        unless punctuation is stripped."""
        if language != "zh":
            return text if self.punctuation else _ASCII_PUNCT.sub("", text)
        text = str(self._tw2s.convert(text))
        if not self.punctuation:
            return _ASCII_PUNCT.sub("", text.translate({ord(c): None for c in STRIPPED}))
        return _ASCII_PUNCT.sub(lambda m: _full_width(text, m.start()), text)

    @staticmethod
    def ends_sentence(text: str) -> bool:
        return text.endswith(tuple(SENTENCE_END + ".?!"))


def end_sentence(text: str, language: str, punctuation: bool = True) -> str:
    """A Mandarin final ends a sentence: ``。`` unless it already ends in sentence punctuation (or is empty).
    A trailing clause mark (``，`` ``、`` ``；`` ``：``) is replaced, not added to: ``好的，`` → ``好的。``."""
    if not text or language != "zh" or not punctuation or TextNormalizer.ends_sentence(text):
        return text
    body = text.rstrip(CLAUSE_END + " ")
    return body + "。" if body else text


def _full_width(text: str, i: int) -> str:
    """The full-width form of the ASCII mark at ``i`` when it punctuates Chinese (a CJK character before or
    after it), else the mark itself (Latin text inside a Mandarin utterance keeps its punctuation)."""
    before = text[:i].rstrip()[-1:]
    after = text[i + 1 :].lstrip()[:1]
    if _CJK.match(before) or _CJK.match(after):
        return FULL_WIDTH[text[i]]
    return text[i]
