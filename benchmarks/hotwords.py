"""Hotwords: what listing names does to recognition of those names, and to speech that does not contain them.

    python benchmarks/hotwords.py [--eval ../shared/eval] [--out benchmarks/results/hotwords.json]

The AISHELL clips of ``eval/asr_zh`` (gold) are read commands (设定二十九度, 想听歌曲…) and place/shop names
(九井日本料理, 星巴克咖啡(虹桥西航二店)…). A clip is a *name clip* when the LAC lexical analyser finds a place or
organisation in its reference; its names are the reference's parts outside and inside brackets. Each clip goes
through the same VAD → ASR path as ``speechsvc transcribe``, at 16 kHz and on the 8 kHz telephone copy, under:

* ``none``: no hotwords (today's default);
* ``own``: the clip's own names (a call that knows which branch or product it is about);
* ``deployment``: every name clip's names in one list (a deployment's hotwords file), so most are absent
  from any one clip — and the command clips contain none of them (the "no harm without matches" check);
* ``other``: the names of another clip only (a wrong hint).

Reported per condition: CER of the name clips, CER of the command clips, and the share of names that appear
verbatim in the hypothesis. Prints how it was taken (machine, versions) next to the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from speechsvc.analysis.pii import lac_model
from speechsvc.batch.transcribe import transcribe_file
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts, normalize_zh
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import AsrRequest, AsrResult, WhisperRecognizer
from speechsvc.speech.vad import SileroModel

ROOT = Path(__file__).resolve().parent.parent
NAME_TAGS = {"LOC", "ORG", "ns", "nt", "nz"}


def names_of(reference: str) -> tuple[str, ...]:
    """The name parts of a reference: outside and inside brackets (``星巴克咖啡(虹桥西航二店)`` → two names)."""
    return tuple(p for p in (s.strip() for s in re.split(r"[()（）]", reference)) if len(p) >= 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hotwords.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    settings = Settings(cpu_threads=args.threads)
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    vad = SileroModel(silero_vad_path())
    folder = args.eval / "asr_zh"
    rows = [r for r in csv.DictReader((folder / "manifest.csv").open()) if r["transcript_quality"] == "gold"]
    lac = lac_model()
    name_rows = [r for r in rows if any(tag in NAME_TAGS for _, tag in lac.run(r["reference_text"]))]
    command_rows = [r for r in rows if r not in name_rows]
    deployment = tuple(dict.fromkeys(n for r in name_rows for n in names_of(r["reference_text"])))
    hints: dict[str, Any] = {
        "none": lambda i, r: (),
        "own": lambda i, r: names_of(r["reference_text"]),
        "deployment": lambda i, r: deployment,
        "other": lambda i, r: names_of(name_rows[(i + 1) % len(name_rows)]["reference_text"]),
    }

    def decode(path: Path, hotwords: tuple[str, ...]) -> str:
        def recognize(requests: list[AsrRequest]) -> list[AsrResult]:
            return recognizer.transcribe([replace(q, hotwords=hotwords) for q in requests])

        result = transcribe_file(path, recognize, vad, settings.vad(), "zh")
        return "".join(s.text for s in result.segments)

    results: dict[str, Any] = {}
    for column in ("file", "tel_file"):
        for condition, hint in hints.items():
            edits = {"names": [0, 0], "commands": [0, 0]}
            found = total = 0
            for i, row in enumerate(name_rows):
                hyp = decode(folder / row[column], hint(i, row))
                e, n = error_counts(row["reference_text"], hyp, "zh")
                edits["names"][0] += e
                edits["names"][1] += n
                names = names_of(row["reference_text"])
                found += sum(normalize_zh(name) in normalize_zh(hyp) for name in names)
                total += len(names)
            if condition in ("none", "deployment"):  # the command clips contain no name: any hint is a non-match
                for row in command_rows:
                    hyp = decode(folder / row[column], hint(0, row) if condition == "deployment" else ())
                    e, n = error_counts(row["reference_text"], hyp, "zh")
                    edits["commands"][0] += e
                    edits["commands"][1] += n
            entry = {
                "name_clips_cer": round(edits["names"][0] / max(1, edits["names"][1]), 4),
                "names_verbatim": round(found / max(1, total), 3),
                "command_clips_cer": (round(edits["commands"][0] / edits["commands"][1], 4)
                                      if edits["commands"][1] else None),
            }
            results[f"{column}/{condition}"] = entry
            print(f"{column:9s} {condition:11s} name clips CER {entry['name_clips_cer']:.3f}  "
                  f"names verbatim {entry['names_verbatim']:.2f}  command clips CER {entry['command_clips_cer']}",
                  flush=True)

    import ctranslate2
    import faster_whisper

    report = {
        "environment": {"machine": describe(), "python": platform.python_version(),
                        "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
                        "model": str(whisper_dir(settings)), "threads": args.threads},
        "name_clips": len(name_rows), "command_clips": len(command_rows), "deployment_list": len(deployment),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"{len(name_rows)} name clips, {len(command_rows)} command clips, {len(deployment)} names in the "
          f"deployment list; wrote {args.out}")


if __name__ == "__main__":
    main()
