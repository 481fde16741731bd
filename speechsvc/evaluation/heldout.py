"""Scoring a transcriber on the split ASR sets (:mod:`speechsvc.evaluation.asr_sets`), per family, side by side.

A *transcriber* is any ``(path, language) -> text``: speechsvc's file path, a variant of it with one stage
swapped, or plain faster-whisper. Plain faster-whisper's texts do not change while speechsvc is tuned, so they
are cached on disk (keyed by the file and the recipe) and a side-by-side run decodes them once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechsvc.evaluation.asr_sets import APART, Item, materialize
from speechsvc.evaluation.scoring import error_counts

Transcriber = Callable[[Path, str], str]


@dataclass
class SetScore:
    condition: str
    split: str
    error_rate: float  # over every item but bronze ones and the APART families
    files: int
    wall_s: float
    per_family: dict[str, dict[str, float]] = field(default_factory=dict)
    per_item: dict[str, float] = field(default_factory=dict)


class TextCache:
    """Texts of a transcriber that does not change (the peer), on disk as JSON."""

    def __init__(self, path: Path, recipe: str) -> None:
        self.path = path
        self.recipe = recipe
        self._data: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}

    def wrap(self, transcribe: Transcriber) -> Transcriber:
        def cached(audio: Path, language: str) -> str:
            stat = audio.stat()
            key = hashlib.sha1(f"{self.recipe}|{audio}|{stat.st_size}|{language}".encode()).hexdigest()
            if key not in self._data:
                self._data[key] = transcribe(audio, language)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self._data, ensure_ascii=False))
            return self._data[key]

        return cached


def pooled_in(item: Item) -> tuple[str, ...]:
    """The figures an item counts in: its family's, and "bronze" (machine-made references, shown apart) or "all"
    (the headline: every gold and silver item of the families not reported apart)."""
    if item.quality == "bronze":
        return (item.family, "bronze")
    return (item.family,) if item.family in APART else (item.family, "all")


def score(items: Sequence[Item], condition: str, split: str, transcribe: Transcriber, cache: Path,
          noise_dir: Path | None = None, show: Callable[[str, float, str], None] | None = None) -> SetScore:
    """Error rate of ``transcribe`` on ``items`` under ``condition``: per family, and over all but bronze."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    per_item: dict[str, float] = {}
    wall = 0.0
    for item in items:
        path = materialize(item, condition, cache, noise_dir)
        if path is None:
            continue
        started = time.perf_counter()
        hyp = transcribe(path, item.language)
        wall += time.perf_counter() - started
        edits, n = error_counts(item.reference, hyp, item.language)
        per_item[item.key] = round(edits / max(1, n), 4)
        if show is not None:
            show(item.key, per_item[item.key], hyp)
        for key in pooled_in(item):
            per[key][0] += edits
            per[key][1] += n
            per[key][2] += 1
    total = per.get("all", [0, 0, 0])
    return SetScore(
        condition=condition,
        split=split,
        error_rate=round(total[0] / max(1, total[1]), 4),
        files=total[2],
        wall_s=round(wall, 1),
        per_family={k: {"error_rate": round(e / max(1, n), 4), "files": f} for k, (e, n, f) in sorted(per.items())
                    if k != "all"},
        per_item=per_item,
    )
