"""Accuracy of every model: ASR CER (Mandarin) / WER (English) per eval folder and source, through the same
VAD → ASR path as `speechsvc transcribe`, on the 16 kHz audio and on the 8 kHz telephone copies; intent
accuracy / macro-F1 and escalation cues on intent_dev.tsv; the emotion head's leave-one-speaker-out figures
(computed by training/train_emotion.py and shipped in speechsvc/models/emotion/model.json).

    python benchmarks/accuracy.py [--eval ../shared/eval] [--out benchmarks/results/accuracy.json]

Prints how it was taken (versions, device, compute type, beam, threads, machine) next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from speechsvc.analysis import load_stages, started
from speechsvc.config import Settings
from speechsvc.evaluation.asr import evaluate_asr
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.text import evaluate_text
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import WhisperRecognizer
from speechsvc.speech.vad import SileroModel

ROOT = Path(__file__).resolve().parent.parent


def environment(recognizer: WhisperRecognizer, settings: Settings) -> dict[str, object]:
    import ctranslate2
    import faster_whisper

    return {
        "machine": describe(),
        "python": platform.python_version(),
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "model": str(recognizer.model_dir),
        "device": recognizer.device,
        "compute_type": recognizer.compute_type,
        "beam_size": settings.asr_beam_size,
        "threads": settings.cpu_threads,
        "min_window_s": settings.asr_min_window_s,
    }


class FasterWhisperRecipe:
    """Plain faster-whisper on the same Whisper directory, with the recipe of shared/ASR_NOTES.md: greedy,
    temperatures 0/0.2/0.4, compression-ratio threshold 2.0, its own Silero VAD filter, about 10 tokens per
    second (+8) of output, no prompt. The yardstick speechsvc's file path must meet on every source."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads,
                                  local_files_only=True)

    def transcribe(self, path: Path, language: str) -> str:
        from speechsvc.speech.audio import decode_file

        audio = decode_file(path)[0][0]
        seconds = min(30.0, audio.size / 16000)
        segments, _ = self.model.transcribe(
            audio, language=language, beam_size=1, temperature=[0.0, 0.2, 0.4], compression_ratio_threshold=2.0,
            vad_filter=True, condition_on_previous_text=False, max_new_tokens=min(440, int(10 * seconds) + 8),
        )
        return ("" if language == "zh" else " ").join(s.text.strip() for s in segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.json")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="skip the side-by-side run of plain faster-whisper")
    args = parser.parse_args()
    settings = Settings(device=args.device, cpu_threads=args.threads)
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    vad = SileroModel(silero_vad_path())
    env = environment(recognizer, settings)
    print(json.dumps(env, indent=2))
    sets = [  # (folder, manifest, audio column, language, compared with faster-whisper)
        ("asr_zh", "manifest.csv", "file", "zh", True),
        ("asr_zh", "manifest.csv", "tel_file", "zh", True),
        ("long", "manifest.csv", "file", "zh", True),
        ("long", "manifest_telephone_sim_8k.csv", "file", "zh", True),
        ("asr_en", "manifest.csv", "file", "en", False),
        ("asr_en", "manifest.csv", "orig_8k_file", "en", False),
    ]
    peer = FasterWhisperRecipe(whisper_dir(settings), settings.cpu_threads) if args.peer else None
    results, peers = [], []
    for folder, manifest, column, language, compare in sets:
        if not (args.eval / folder / manifest).is_file():
            print(f"skip {folder}: {args.eval / folder / manifest} is absent")
            continue
        name = column if manifest == "manifest.csv" else f"{column} ({manifest})"
        r = evaluate_asr(args.eval / folder, column, language, recognizer.transcribe, vad, settings.vad(), manifest)
        results.append(asdict(r) | {"audio": name})
        p = (evaluate_asr(args.eval / folder, column, language, recognizer.transcribe, vad, settings.vad(), manifest,
                          transcribe=peer.transcribe) if peer and compare else None)
        if p is not None:
            peers.append(asdict(p) | {"audio": name})
        versus = f"  faster-whisper recipe {p.error_rate:.3f} (wall {p.wall_s}s)" if p else ""
        print(f"{folder:8s} {name:13s} {r.metric} {r.error_rate:.3f}  files={r.files}  "
              f"audio={r.audio_s}s wall={r.wall_s}s RTF={r.rtf}{versus}")
        for source, v in r.per_source.items():
            theirs = f"   faster-whisper {p.per_source[source]['error_rate']:.3f}" if p else ""
            print(f"    {source:32s} {v['error_rate']:.3f} ({v['files']:.0f} files){theirs}")
    report: dict[str, object] = {"environment": env, "results": results, "faster_whisper_recipe": peers}
    dev = args.eval / "intent_dev.tsv"
    if dev.is_file():
        stages = load_stages(settings, only=("intent", "escalation"))

        async def text_eval() -> dict[str, Any]:
            async with started(stages):
                return await evaluate_text(dev, stages)

        text = asyncio.run(text_eval())
        report["intent"] = text
        print(f"intent   {text['overall']}  confidence=high {text['confidence_high']}  "
              f"{text['analysis_ms_per_utterance']} ms/utterance")
        for cue, v in text["escalation_cues"].items():
            print(f"    cue {cue:18s} precision {v['precision']} recall {v['recall']} (support {v['support']})")
    emotion = json.loads((settings.heads_dir / "emotion" / "model.json").read_text())["evaluation"]
    report["emotion_loso"] = emotion
    for corpus, rows in emotion.items():
        for condition in ("clean", "tel"):
            r = rows[condition]
            print(f"emotion  {corpus:6s} {condition:5s} UAR4 {r['uar4']}  angry AUC {r['angry_auc']}  "
                  f"angry UAR {r['angry_uar']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
