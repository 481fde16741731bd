"""Words as clients get them (WebSocket/gRPC events, the OpenAI API): like OpenAI's and Deepgram's words, the text
without the punctuation around it, the punctuated form as ``punctuated_word``, and ``confidence`` (one name for
a word's and an utterance's confidence).

Internally a transcript's :class:`~speechsvc.types.Word` texts join to spell its text exactly (punctuation and
leading spaces included: redaction maps characters to audio through them). Chinese words are the pieces
Whisper's tokenizer groups (faster-whisper's alignment: tokens that decode to whole characters; often one
character, sometimes a common word), never regrouped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speechsvc.types import Word

# Sentence punctuation and quotes, ASCII and full-width; never the characters of a redaction (``[PHONE]``,
# ``138****5678``) nor those inside a word (``don't``, ``3.5``, ``e-mail``).
PUNCTUATION = frozenset(",.!?;:…\"'“”‘’，。！？；：、「」『』《》（）()")


def plain_word(text: str) -> str:
    """A word without the punctuation and spaces around it (``度。`` → ``度``, `` "Hello,`` → ``Hello``)."""
    text = text.strip()
    start, end = 0, len(text)
    while start < end and text[start] in PUNCTUATION:
        start += 1
    while end > start and text[end - 1] in PUNCTUATION:
        end -= 1
    return text[start:end]


def wire_words(words: Sequence[Word]) -> list[dict[str, Any]]:
    """``[{text, punctuated_word, start_ms, end_ms, confidence}]``; a piece that is only punctuation joins the
    ``punctuated_word`` of the word before it (or is dropped at the start)."""
    out: list[dict[str, Any]] = []
    for w in words:
        text = plain_word(w.text)
        if not text:
            if out and w.text.strip():
                out[-1]["punctuated_word"] += w.text.strip()
            continue
        out.append({"text": text, "punctuated_word": w.text.strip(), "start_ms": w.start_ms, "end_ms": w.end_ms,
                    "confidence": w.probability})
    return out
