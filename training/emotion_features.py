"""Feature extraction for the emotion head: every 4-class clip of ../shared/eval/emotion, clean and through a
simulated telephone line (band-pass 300–3400 Hz, 8 kHz, μ-law, background noise from ../shared/eval/noise at
10–30 dB SNR), as Whisper-encoder statistics (the same windows the ASR uses) and eGeMAPS functionals.

    .venv/bin/python training/emotion_features.py [--eval ../shared/eval] [--out var/emotion_features.npz]

Deterministic (seed 0). Takes ~10 minutes on 2 cores; the result is a cache for train_emotion.py.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from speechsvc.analysis.emotion import EMOTIONS, egemaps
from speechsvc.config import Settings
from speechsvc.models import whisper_dir
from speechsvc.speech.asr import WhisperRecognizer
from speechsvc.speech.audio import decode_file, telephone_channel

ROOT = Path(__file__).resolve().parent.parent
NOISES = ("speechbrain_noise1", "speechbrain_noise2", "speechbrain_noise3", "speechbrain_noise4",
          "speechbrain_noise5", "speechcommands_doing_the_dishes", "speechcommands_exercise_bike",
          "moh_manolo_camp-morning_coffee", "esc50_thunderstorm_3-103051-C-19")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "emotion_features.npz")
    args = parser.parse_args()
    rows = [r for r in csv.DictReader((args.eval / "emotion" / "labels.csv").open()) if r["emotion"] in EMOTIONS]
    noises = [decode_file(args.eval / "noise" / "audio" / f"{n}.wav")[0][0] for n in NOISES]
    settings = Settings()
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    rng = np.random.default_rng(0)
    enc = {"clean": [], "tel": []}
    ege = {"clean": [], "tel": []}
    started = time.perf_counter()
    for i, row in enumerate(rows):
        audio = decode_file(args.eval / "emotion" / row["path"])[0][0]
        tel = telephone_channel(audio, rng, noises[int(rng.integers(len(noises)))], float(rng.uniform(10, 30)))
        for name, x in (("clean", audio), ("tel", tel)):
            enc[name].append(recognizer.encoder_stats([x])[0])
            ege[name].append(egemaps(x))
        if i % 100 == 0:
            print(f"{i}/{len(rows)} clips, {time.perf_counter() - started:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        encoder_clean=np.stack(enc["clean"]), encoder_tel=np.stack(enc["tel"]),
        egemaps_clean=np.stack(ege["clean"]), egemaps_tel=np.stack(ege["tel"]),
        label=np.array([EMOTIONS.index(r["emotion"]) for r in rows]),
        speaker=np.array([r["speaker"] for r in rows]),
        corpus=np.array([r["corpus"] for r in rows]),
        duration=np.array([float(r["duration_s"]) for r in rows]),
    )
    print(f"wrote {args.out} ({len(rows)} clips) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
