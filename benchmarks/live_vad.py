"""Live endpointing on 8 kHz phone audio: utterances the live VAD misses, with and without the WebRTC gate.

Each tune utterance of the Mandarin ASR sets (``speechsvc.evaluation.asr_sets``), through each telephone chain, is
streamed as a live call would send it: 8 kHz G.711 μ-law in 20 ms frames, after 0.5 s of line silence, decoded
(``decode_frame``), resampled (the session's ``StreamResampler``) and endpointed by a ``VadStream`` with the live
options, exactly the steps of ``CallSession._feed_leg``. Counted per variant of the gate: utterances with no
speech found at all (*missed*), utterances that lose more than 1 s of the speech Silero alone finds (*cut*), the
seconds of speech found, and the VAD's CPU time per second of audio (also on a leg that stays quiet: 60 s of line
hiss, where the gate saves Silero's work).

    python -m benchmarks.live_vad [--eval ../shared/eval] [--out benchmarks/results/live_vad.json]
"""

from __future__ import annotations

import argparse
import json
import time
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np

from speechsvc.config import Settings, VadOptions
from speechsvc.evaluation.asr_sets import APART, TUNE, materialize, with_splits, zh_items
from speechsvc.evaluation.machine import describe
from speechsvc.models import silero_vad_path
from speechsvc.speech.audio import StreamResampler, decode_frame, mulaw_encode
from speechsvc.speech.vad import SileroModel, SpeechEnded, VadStream, live_options
from speechsvc.types import AudioFormat

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ("g711u", "g711a_loss_agc", "amrnb_noise", "g726_hot_noise")
GATES = {"webrtc1": 1, "webrtc0": 0, "none": None}  # the old default, the least aggressive gate, no gate
FRAME = 160  # 20 ms at 8 kHz
LEAD_S = 0.5  # line silence before the caller speaks
CUT_S = 1.0  # an utterance that loses more speech than this (against no gate) counts as cut


def read_8k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != 8000 or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: not 8 kHz 16-bit mono")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def variants(settings: Settings, narrowband: list[float]) -> dict[str, VadOptions]:
    """The gates (on the live options without the narrowband threshold), and each narrowband threshold asked for
    (no gate, as a phone-band leg runs: ``vad.live_options``)."""
    base = replace(settings.vad(), narrowband_threshold=None)
    out = {name: replace(base, webrtc_mode=gate) for name, gate in GATES.items()}
    for t in narrowband:
        out[f"nb{t:g}"] = live_options(replace(base, narrowband_threshold=t), 8000)
    return out


def stream(model: SileroModel, options: VadOptions, pcm: np.ndarray) -> tuple[float, float]:
    """Speech seconds the live VAD finds in ``pcm`` sent as μ-law frames, and the CPU seconds it took."""
    fmt = AudioFormat("mulaw", 8000, 1)
    payload = mulaw_encode(np.concatenate([np.zeros(int(LEAD_S * 8000), np.int16), pcm]))
    resampler = StreamResampler(8000)
    vad = VadStream(model, options, "customer")
    found = 0
    started = time.process_time()
    for at in range(0, len(payload), FRAME):
        audio = resampler.process(decode_frame(payload[at : at + FRAME], fmt)[:, 0])
        found += sum(e.segment.audio.size for e in vad.feed(audio) if isinstance(e, SpeechEnded))
    found += sum(e.segment.audio.size for e in [*vad.feed(resampler.flush()), *vad.flush()]
                 if isinstance(e, SpeechEnded))
    return found / 16000, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "accuracy-cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "live_vad.json")
    parser.add_argument("--split", default=TUNE)
    parser.add_argument("--narrowband", type=lambda v: [float(x) for x in v.split(",") if x], default=[],
                        help="narrowband speech thresholds to compare (comma-separated), each without the gate")
    args = parser.parse_args()
    settings = Settings()
    options = variants(settings, args.narrowband)
    model = SileroModel(silero_vad_path())
    items = [i for i in with_splits(zh_items(args.eval))[args.split] if i.family not in APART]
    report: dict[str, object] = {"machine": describe(), "split": args.split, "items": len(items),
                                 "vad": {k: v for k, v in vars(settings.vad()).items() if k != "webrtc_mode"},
                                 "chains": {}}
    for chain in CHAINS:
        found: dict[str, list[float]] = {g: [] for g in options}
        cpu = dict.fromkeys(options, 0.0)
        audio_s = 0.0
        keys: list[str] = []
        for item in items:
            path = materialize(item, chain, args.cache, args.eval / "noise" / "audio")
            if path is None:
                continue
            pcm = read_8k(path)
            keys.append(item.key)
            audio_s += pcm.size / 8000 + LEAD_S
            for name, option in options.items():
                seconds, spent = stream(model, option, pcm)
                found[name].append(seconds)
                cpu[name] += spent
        base = np.asarray(found["none"])
        rows: dict[str, dict[str, object]] = {}
        for name in options:
            got = np.asarray(found[name])
            missed, cut = (got == 0) & (base > 0), base - got > CUT_S
            rows[name] = {"missed": int(missed.sum()), "cut": int(cut.sum()),
                          "missed_items": [k for k, m in zip(keys, missed, strict=True) if m],
                          "cut_items": [k for k, c in zip(keys, cut, strict=True) if c],
                          "speech_s": round(float(got.sum()), 1), "cpu_ms_per_s": round(1000 * cpu[name] / audio_s, 2),
                          "utterances": len(got)}
            print(f"{chain:15s} {name:8s} missed {rows[name]['missed']:3d}/{len(got)}  cut {rows[name]['cut']:3d}  "
                  f"speech {rows[name]['speech_s']:7.1f} s  VAD CPU {rows[name]['cpu_ms_per_s']:.2f} ms per audio s",
                  flush=True)
        report["chains"][chain] = rows  # type: ignore[index]
    # What the gate saves: a leg that stays quiet (the other party talking), 60 s of line hiss at -60 dBFS.
    hiss = (np.random.default_rng(0).normal(0, 32768 * 10 ** (-60 / 20), 60 * 8000)).astype(np.int16)
    quiet: dict[str, float] = {}
    heard: dict[str, float] = {}
    for name, option in options.items():
        heard[name], spent = stream(model, option, hiss)
        quiet[name] = round(1000 * spent / (hiss.size / 8000 + LEAD_S), 2)
        print(f"quiet leg       {name:8s} VAD CPU {quiet[name]:.2f} ms per audio s, speech {heard[name]:.1f} s",
              flush=True)
    report["quiet_leg_cpu_ms_per_s"] = quiet
    report["quiet_leg_speech_s"] = heard
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
