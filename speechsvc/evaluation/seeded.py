"""Reproducible temperature sampling for evaluations: each clip's sampled decodes start from one seed.

CTranslate2 keeps one random generator per worker thread (``thread_local``), seeded from
``ctranslate2.set_random_seed`` the first time that thread samples; setting the seed again does not reseed a thread
that has already sampled. A model's worker threads live as long as the model, so a clip's temperature fallback
(faster-whisper's temperatures 0.2/0.4, speechsvc's sampled fallback) depended on every clip sampled before it and
on which worker ran it: single read clips swung between CER 0.00 and 0.86 from run to run, for both sides.

:class:`SeededSampling` sends every sampling call of a clip to a model of its own, loaded at the clip's first
sampling call with the seed set (about 0.5 s for Whisper base int8 on CPU, paid only by clips that sample), so a
clip's text depends only on its audio and the seed. Greedy and beam calls stay on the shared model.

Thread-safety: one evaluation thread; the wrapped model is used by that thread only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SeededSampling:
    """Fresh, seeded sampling per clip for the CTranslate2 Whisper models it wraps.

    Args:
        model_dir: the CTranslate2 Whisper directory the wrapped models were loaded from.
        device, compute_type, threads: as the wrapped models (the sampler decodes their encoder features).
        seed: the random seed every clip's sampling starts from.
    """

    def __init__(self, model_dir: Path, device: str, compute_type: str, threads: int, seed: int) -> None:
        self.model_dir = model_dir
        self.device = device
        self.compute_type = compute_type
        self.threads = threads
        self.seed = seed
        self._sampler: Any = None
        self.loads = 0  # samplers loaded: clips that sampled

    def new_clip(self) -> None:
        """Start a clip: its first sampling call gets a fresh generator seeded with ``seed``."""
        self._sampler = None

    def wrap(self, model: Any) -> Any:
        """``model`` (a ``ctranslate2.models.Whisper``) with its sampling calls routed to the clip's sampler."""
        return _Routed(model, self)

    def sampler(self) -> Any:
        if self._sampler is None:
            import ctranslate2

            # The generator of the new model's worker thread is created, from this seed, at its first sample.
            ctranslate2.set_random_seed(self.seed)
            self._sampler = ctranslate2.models.Whisper(str(self.model_dir), device=self.device,
                                                       compute_type=self.compute_type, inter_threads=1,
                                                       intra_threads=self.threads)
            self.loads += 1
        return self._sampler


def samples(kwargs: dict[str, Any]) -> bool:
    """Whether a ``generate`` call with these options draws random numbers (CTranslate2: top-k 1 is greedy)."""
    return int(kwargs.get("sampling_topk", 1)) != 1 and float(kwargs.get("sampling_temperature", 1.0)) > 0


class _Routed:
    """A Whisper model whose sampling ``generate`` calls run on the clip's seeded sampler."""

    def __init__(self, model: Any, seeded: SeededSampling) -> None:
        self._model = model
        self._seeded = seeded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if samples(kwargs):
            import ctranslate2

            sampler = self._seeded.sampler()
            ctranslate2.set_random_seed(self._seeded.seed)  # a fallback's own set_random_seed must not win
            return sampler.generate(*args, **kwargs)
        return self._model.generate(*args, **kwargs)
