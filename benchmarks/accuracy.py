"""Accuracy of every model: ASR CER (Mandarin) / WER (English) per eval folder and source, through the same
VAD → ASR path as `speechsvc transcribe`, on the 16 kHz audio and on the 8 kHz telephone copies; intent
accuracy / macro-F1 and escalation cues on intent_dev.tsv; the emotion head's leave-one-speaker-out figures
(computed by training/train_emotion.py and shipped in models/emotion/model.json).

    python benchmarks/accuracy.py [--eval ../shared/eval] [--out benchmarks/results/accuracy.json]

Prints how it was taken (versions, device, compute type, beam, threads, machine) next to the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from pathlib import Path

from speechsvc.asr import WhisperRecognizer
from speechsvc.config import Settings
from speechsvc.escalation import EscalationRules
from speechsvc.evaluation.asr import evaluate_asr
from speechsvc.machine import describe
from speechsvc.models import heads_dir, resolve_whisper_dir, silero_vad_path
from speechsvc.nlp.classifier import TextModel
from speechsvc.nlp.evaluate import evaluate_text
from speechsvc.vad import SileroModel

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.json")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(device=args.device, cpu_threads=args.threads)
    recognizer = WhisperRecognizer(settings.asr(), resolve_whisper_dir(settings.asr_model_dir))
    vad = SileroModel(silero_vad_path())
    env = environment(recognizer, settings)
    print(json.dumps(env, indent=2))
    sets = [
        ("asr_zh", "file", "zh"),
        ("asr_zh", "tel_file", "zh"),
        ("asr_en", "file", "en"),
        ("asr_en", "orig_8k_file", "en"),
    ]
    results = []
    for folder, column, language in sets:
        if not (args.eval / folder / "manifest.csv").is_file():
            print(f"skip {folder}: {args.eval / folder} is absent")
            continue
        r = evaluate_asr(args.eval / folder, column, language, recognizer.transcribe, vad, settings.vad())
        results.append(asdict(r))
        print(f"{folder:8s} {column:13s} {r.metric} {r.error_rate:.3f}  files={r.files}  "
              f"audio={r.audio_s}s wall={r.wall_s}s RTF={r.rtf}")
        for source, v in r.per_source.items():
            print(f"    {source:32s} {v['error_rate']:.3f} ({v['files']:.0f} files)")
    report: dict[str, object] = {"environment": env, "results": results}
    dev = args.eval / "intent_dev.tsv"
    if dev.is_file():
        text = evaluate_text(dev, TextModel(heads_dir() / "text"), EscalationRules.load())
        report["intent"] = text
        print(f"intent   {text['overall']}  confidence=high {text['confidence_high']}  "
              f"{text['latency_ms_per_utterance']} ms/utterance")
        for cue, v in text["escalation_cues"].items():
            print(f"    cue {cue:18s} precision {v['precision']} recall {v['recall']} (support {v['support']})")
    emotion = json.loads((heads_dir() / "emotion" / "model.json").read_text())["evaluation"]
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
