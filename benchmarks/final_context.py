"""Live finals decoded with the leg's previous finals as previous text (``FINAL_CONTEXT``): does it help?

    python benchmarks/final_context.py [--out benchmarks/results/final_context.json]

Each VAD utterance of the ``eval/long`` recordings with a usable reference (Mandarin gold at 16 kHz and on its
8 kHz copy, the English oration) is decoded on its own, as a live call's finals are, with the previous 0, 1 or 2
finals of the recording as context (``AsrRequest.context``). CER/WER of the whole text.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from speechsvc.batch.transcribe import segment_audio
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import AsrRequest, WhisperRecognizer
from speechsvc.speech.audio import decode_file
from speechsvc.speech.vad import SileroModel

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "final_context.json")
    args = parser.parse_args()
    settings = Settings()
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    vad = SileroModel(silero_vad_path())
    results: dict[str, float] = {}
    for name, manifest, language in (("zh-16k", "manifest.csv", "zh"), ("zh-8k", "manifest_telephone_sim_8k.csv", "zh"),
                                     ("en-16k", "manifest.csv", "en")):
        rows = [r for r in csv.DictReader((args.eval / "long" / manifest).open())
                if r["language"] == language and r["reference_text"]
                and r["transcript_quality"] not in ("bronze", "none")]
        sep = "" if language == "zh" else " "
        for previous in (0, 1, 2):
            edits = total = 0
            for row in rows:
                audio = decode_file(args.eval / "long" / row["file"])[0][0]
                texts: list[str] = []
                for segment in segment_audio(audio, "customer", vad, settings.vad()):
                    context = sep.join(texts[-previous:]) if previous else ""
                    text = recognizer.transcribe([AsrRequest(segment.audio, language, context=context)])[0].text
                    if text:
                        texts.append(text)
                e, n = error_counts(row["reference_text"], sep.join(texts), language)
                edits, total = edits + e, total + n
            results[f"{name}/previous_{previous}"] = round(edits / max(1, total), 4)
            print(f"{name:7s} previous finals {previous}: {'CER' if language == 'zh' else 'WER'} "
                  f"{results[f'{name}/previous_{previous}']:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": describe(), "model": str(whisper_dir(settings)), "results": results},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
