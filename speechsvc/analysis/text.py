"""Normalisation of transcripts for the text models: the same function at training and at run time.

Spoken and ASR-style variation the models should not see: Traditional vs Simplified script, full-width
forms, 幺 for 一, digit strings (phone and order numbers, amounts), @mentions, URLs, emoji and
bracketed placeholders, punctuation, stretched characters (人工人工人工, 好好好好). Fillers (呃, 嗯) are
kept: they carry little weight in TF-IDF and the embeddings handle them.
"""

from __future__ import annotations

import re
import unicodedata

from speechsvc.speech.text import converter

_NUMBER = re.compile(r"[0-9０-９零〇一二三四五六七八九十百千万幺两点.]{3,}|[0-9]+")
_MENTION = re.compile(r"@[\w\-·]+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_PLACEHOLDER = re.compile(r"\[[^\]]{0,12}\]|<num>|#E-s<num>|\*{2,}")
_NOISE = re.compile(r"[^\w#]+")
_REPEAT = re.compile(r"(.)\1{2,}")


def simplify(text: str) -> str:
    """Script and width only: NFKC, lower case, Simplified characters. Digits and words are kept (cue rules
    match 12315 or 转人工 on this)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return converter("t2s").convert(text)


def normalize(text: str) -> str:
    """Canonical form for classification (not for display)."""
    text = simplify(text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _PLACEHOLDER.sub("#", text)
    text = text.replace("幺", "一")
    text = _NUMBER.sub("#", text)
    text = _NOISE.sub(" ", text)
    text = _REPEAT.sub(r"\1", text)
    return " ".join(text.split())


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> list[str]:
    """Character n-grams of the normalised text, spaces as boundaries (the TF-IDF analyzer)."""
    grams: list[str] = []
    for word in normalize(text).split():
        padded = f" {word} " if len(word) > 1 else word
        for n in range(n_min, n_max + 1):
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1) if padded[i : i + n].strip())
    return grams
