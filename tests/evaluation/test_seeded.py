"""Seeded sampling per clip: which CTranslate2 calls sample, and that only those go to the clip's sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechsvc.evaluation.seeded import SeededSampling, samples


class _Model:
    def __init__(self, name: str) -> None:
        self.name = name
        self.is_multilingual = True

    def generate(self, *args: Any, **kwargs: Any) -> str:
        return self.name


def test_which_calls_sample() -> None:
    assert not samples({})  # CTranslate2's default top-k 1 is greedy
    assert not samples({"beam_size": 5})
    assert not samples({"sampling_topk": 0, "sampling_temperature": 0.0})
    assert samples({"sampling_topk": 0, "sampling_temperature": 0.2})
    assert samples({"sampling_topk": 5})


def test_sampling_calls_go_to_one_sampler_per_clip() -> None:
    seeded = SeededSampling(Path("unused"), "cpu", "int8", 1, seed=7)
    made: list[_Model] = []

    def sampler() -> _Model:
        if seeded._sampler is None:
            seeded._sampler = _Model(f"sampler{len(made)}")
            made.append(seeded._sampler)
        return seeded._sampler

    seeded.sampler = sampler  # type: ignore[method-assign]  # no model load in the fast tier
    routed = seeded.wrap(_Model("shared"))
    assert routed.is_multilingual  # everything else is the wrapped model's
    assert routed.generate([], beam_size=1) == "shared"
    assert routed.generate([], sampling_topk=0, sampling_temperature=0.2) == "sampler0"
    assert routed.generate([], sampling_topk=0, sampling_temperature=0.4) == "sampler0"  # same clip, same generator
    seeded.new_clip()
    assert routed.generate([], sampling_topk=0, sampling_temperature=0.2) == "sampler1"
