"""Command line: flags → Settings → the modules that do the work. Results go to stdout; progress and logs
to stderr, so output can be piped."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from speechsvc import log as logsetup
from speechsvc.config import Settings
from speechsvc.errors import SpeechsvcError

log = logging.getLogger("speechsvc")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """Flags that were given override SPEECHSVC_* environment variables."""
    fields = {
        "asr_model_dir": getattr(args, "model_dir", None),
        "device": getattr(args, "device", None),
        "compute_type": getattr(args, "compute_type", None),
        "cpu_threads": getattr(args, "threads", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "grpc_port": getattr(args, "grpc_port", None),
        "max_calls": getattr(args, "max_calls", None),
        **extra,
    }
    return Settings(**{k: v for k, v in fields.items() if v is not None})


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, help="CTranslate2 Whisper directory (default: assembled Whisper base)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--compute-type", help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)")
    p.add_argument("--threads", type=int, help="CPU threads for the ASR model")


def cmd_serve(args: argparse.Namespace) -> int:
    from speechsvc.server import serve

    asyncio.run(serve(_settings(args)))
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from speechsvc.asr import WhisperRecognizer
    from speechsvc.models import resolve_whisper_dir, silero_vad_path
    from speechsvc.transcribe import transcribe_file
    from speechsvc.vad import SileroModel
    from speechsvc.writers import WRITERS

    settings = _settings(args)
    recognizer = WhisperRecognizer(settings.asr(), resolve_whisper_dir(settings.asr_model_dir))
    vad = SileroModel(silero_vad_path())
    language = None if args.language == "auto" else args.language
    failures = 0
    for path in args.files:
        bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio"
        with tqdm(total=0.0, desc=Path(path).name, file=sys.stderr, disable=args.quiet, bar_format=bar_format) as bar:
            try:
                result = transcribe_file(
                    path, recognizer.transcribe, vad, settings.vad(), language,
                    progress=bar.update, on_duration=partial(setattr, bar, "total"),
                )
            except SpeechsvcError as e:
                log.error("%s: %s", path, e)
                failures += 1
                continue
        sys.stdout.write(WRITERS[args.format](result))
        if args.format == "json":
            sys.stdout.write("\n")
        sys.stdout.flush()
    return 1 if failures else 0


def cmd_stream(args: argparse.Namespace) -> int:
    from speechsvc.client import load_stream_audio, stream_ws

    audio = load_stream_audio(args.file)

    def show(event: dict[str, Any]) -> None:
        event = {k: v for k, v in event.items() if k not in ("received_at", "sent_ms")}
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    if args.grpc:
        from speechsvc.grpc_client import stream_grpc

        asyncio.run(stream_grpc(args.grpc, audio, language=args.language, speed=args.speed, on_event=show))
    else:
        events = asyncio.run(stream_ws(args.url, audio, language=args.language, speed=args.speed, on_event=show))
        if events and events[0].get("type") != "ready":
            show(events[0])
            return 1
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from speechsvc.batch import OutputDir, expand_inputs
    from speechsvc.batch_runner import JobProgress, run_local, run_ray
    from speechsvc.engine import Engine

    settings = _settings(args, grpc_port=-1, audiosocket_port=-1)
    items = expand_inputs(args.inputs)
    if not items:
        log.error("no inputs found in %s", args.inputs)
        return 2
    formats = sorted({"json", *args.format})
    language = None if args.language == "auto" else args.language
    out = OutputDir(args.out)
    if args.ray is not None:
        progress = run_ray(items, out, formats, language, settings, address=args.ray or None,
                           actors=args.actors, num_cpus=args.ray_cpus)
    else:
        bar = tqdm(total=len(items), unit="call", file=sys.stderr, disable=args.quiet)

        def update(p: JobProgress, audio_s: float) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{p.audio_s / 3600:.2f} h audio, {p.failed} failed, {p.skipped} skipped")

        async def main() -> JobProgress:
            engine = await asyncio.to_thread(Engine.load, settings)
            await engine.start()
            try:
                return await run_local(engine, items, out, formats, language, args.concurrency, update)
            finally:
                await engine.stop()

        progress = asyncio.run(main())
        bar.close()
    summary = {"inputs": progress.total, "done": progress.done, "skipped": progress.skipped,
               "failed": progress.failed, "audio_hours": round(progress.audio_s / 3600, 3), "out": str(args.out)}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 1 if progress.failed else 0


def cmd_emotion(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from speechsvc.asr import WhisperRecognizer
    from speechsvc.audio import decode_file
    from speechsvc.emotion import EmotionHead, EmotionTracker, SegmentEmotion, overall_label, segment_features
    from speechsvc.models import heads_dir, resolve_whisper_dir, silero_vad_path
    from speechsvc.transcribe import legs_for, segment_audio
    from speechsvc.vad import SileroModel

    settings = _settings(args)
    recognizer = WhisperRecognizer(settings.asr(), resolve_whisper_dir(settings.asr_model_dir))
    vad = SileroModel(silero_vad_path())
    head = EmotionHead(heads_dir() / "emotion")
    failures = 0
    for path in args.files:
        try:
            audio, _ = decode_file(path)
        except SpeechsvcError as e:
            log.error("%s: %s", path, e)
            failures += 1
            continue
        segments = []
        for channel, leg in enumerate(legs_for(audio.shape[0])):
            tracker = EmotionTracker(head)
            for seg in segment_audio(audio[channel], leg, vad, settings.vad()):
                stats = recognizer.encoder_stats([seg.audio])[0]
                r = tracker.update(segment_features(seg.audio, stats, head.use_egemaps))
                segments.append(SegmentEmotion(leg, seg.start_ms, seg.end_ms, r.label, dict(r.probabilities),
                                               r.p_angry, r.arousal))
        record = {"file": str(path), "label": overall_label(segments), "segments": [asdict(s) for s in segments]}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 1 if failures else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from speechsvc.bench_stream import main as bench_stream

    bench_stream(args.options)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from speechsvc.models import check_whisper_dir, default_whisper_dir, heads_dir, install_whisper_base

    whisper = args.model_dir or default_whisper_dir()
    if args.action == "install":
        path = install_whisper_base(args.model_dir)
        sys.stdout.write(f"{path}\n")
        return 0
    if args.action == "path":
        sys.stdout.write(f"{whisper}\n")
        return 0
    rows = [("asr", whisper, check_whisper_dir(whisper, deep=args.action == "verify"))]
    for head in sorted(heads_dir().glob("*/model.json")) if heads_dir().is_dir() else []:
        rows.append((head.parent.name, head.parent, []))
    for name, path, problems in rows:
        status = "ok" if not problems else "; ".join(problems)
        sys.stdout.write(f"{name}\t{path}\t{status}\n")
    return 0 if all(not p for _, _, p in rows) else 1


def cmd_classify(args: argparse.Namespace) -> int:
    from speechsvc.escalation import EscalationRules
    from speechsvc.models import heads_dir
    from speechsvc.nlp.classifier import TextModel

    model = TextModel(heads_dir() / "text")
    rules = EscalationRules.load(args.rules)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text, result in zip(texts, model.predict(texts), strict=True):
        cues = rules.detect(text)
        if args.format == "jsonl":
            record = {
                "text": text,
                "intent": result.intent,
                "probability": result.probability,
                "alternatives": [{"label": label, "probability": p} for label, p in result.alternatives],
                "cues": cues,
                "negativity": result.negativity,
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            cue_text = ",".join(sorted(cues)) or "-"
            sys.stdout.write(f"{result.intent}\t{result.probability:.2f}\t{result.negativity:.2f}\t{cue_text}\t{text}\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from speechsvc.escalation import EscalationRules
    from speechsvc.models import heads_dir
    from speechsvc.nlp.classifier import TextModel
    from speechsvc.nlp.evaluate import evaluate_text

    if not args.dev.is_file():
        log.error("%s is absent (evaluation data lives in ../shared/eval)", args.dev)
        return 2
    report = evaluate_text(args.dev, TextModel(heads_dir() / "text"), EscalationRules.load(args.rules))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.stdout.write(text + "\n")
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    """Re-score batch reports with a QA rules file, without re-running ASR: one JSON line per report."""
    from speechsvc.analysis.call import call_end_from_report, utterances_from_report
    from speechsvc.analysis.qa import QaEngine, qa_aggregates
    from speechsvc.analysis.qa_rules import QaRules, QaRulesError

    try:
        rules = QaRules.load(args.rules)
    except (OSError, QaRulesError) as e:
        log.error("%s", e)
        return 2
    if rules.embedding_roles():  # the sentence encoder the text models use
        from speechsvc.nlp.classifier import embedder

        engine = QaEngine(rules, embedder().encode)
    else:
        engine = QaEngine(rules)
    scored: list[dict[str, Any]] = []
    failures = 0
    for path in args.reports:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
            qa = engine.score_call(utterances_from_report(report), call_end_from_report(report),
                                   legs=report.get("legs") or None)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            log.error("%s: %s", path, e)
            failures += 1
            continue
        record = {"report": str(path), "path": report.get("path"), "agent_id": report.get("agent_id"),
                  "qa": qa.to_dict()}
        scored.append(record)
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    if args.aggregates:
        sys.stdout.write(json.dumps({"aggregates": qa_aggregates(scored)}, ensure_ascii=False) + "\n")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechsvc", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the streaming service (HTTP/WebSocket and gRPC)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--grpc-port", type=int, help="gRPC port (-1 disables gRPC)")
    p.add_argument("--max-calls", type=int)
    _model_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("transcribe", help="transcribe audio/video files")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=["json", "srt", "vtt", "txt"], default="txt")
    p.add_argument("--language", choices=["zh", "en", "auto"], default="zh")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _model_flags(p)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("stream", help="stream a file to a server at real time and print events (JSON lines)")
    p.add_argument("file")
    p.add_argument("--url", default="ws://127.0.0.1:8080/v1/stream")
    p.add_argument("--grpc", metavar="HOST:PORT", help="use the gRPC API instead of WebSocket")
    p.add_argument("--language", choices=["zh", "en", "auto"], default="zh")
    p.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("batch", help="analyse recorded calls: transcripts, intents, emotion, QA summary (resumable)")
    p.add_argument("inputs", nargs="+", help="files, directories, or manifests (.csv with a path column, .jsonl)")
    p.add_argument("--out", required=True, help="output folder or fsspec URL (s3://bucket/prefix, ...)")
    p.add_argument("--format", nargs="*", choices=["json", "srt", "vtt", "txt"], default=["json"],
                   help="outputs besides the JSON report")
    p.add_argument("--language", choices=["zh", "en", "auto"], default="zh")
    p.add_argument("--concurrency", type=int, default=4, help="recordings in flight (their segments batch together)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray (ADDRESS of a cluster, or none for a local instance)")
    p.add_argument("--actors", type=int, default=2, help="Ray actors (each loads the models once)")
    p.add_argument("--ray-cpus", type=int, help="CPUs for a local Ray instance")
    p.add_argument("-q", "--quiet", action="store_true")
    _model_flags(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("emotion", help="voice emotion per speech segment of files (JSON lines)")
    p.add_argument("files", nargs="+")
    _model_flags(p)
    p.set_defaults(func=cmd_emotion)

    p = sub.add_parser("classify", help="intent, negativity and escalation cues of texts (args or stdin lines)")
    p.add_argument("texts", nargs="*")
    p.add_argument("--format", choices=["jsonl", "tsv"], default="jsonl")
    p.add_argument("--rules", type=Path, help="escalation rules TOML (default: the packaged rules)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("eval", help="evaluate a stage on labelled data")
    p.add_argument("stage", choices=["intent"])
    default_dev = Path(__file__).resolve().parents[2] / "shared" / "eval" / "intent_dev.tsv"
    p.add_argument("--dev", type=Path, default=default_dev)
    p.add_argument("--rules", type=Path)
    p.add_argument("--out", type=Path, help="also write the JSON report here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("qa", help="re-score batch reports (JSON) with QA rules, without re-running ASR (JSON lines)")
    p.add_argument("reports", nargs="+", metavar="REPORT.json")
    p.add_argument("--rules", type=Path, help="QA rules TOML (default: the packaged Chinese service-call pack)")
    p.add_argument("--aggregates", action="store_true",
                   help="finish with one line of aggregates (score distribution, top failing rules, per agent)")
    p.set_defaults(func=cmd_qa)

    p = sub.add_parser("bench", help="benchmarks: `bench stream` (latency and capacity; --help for options)")
    p.add_argument("kind", choices=["stream"])
    p.add_argument("options", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("models", help="install, list, verify the local models")
    p.add_argument("action", choices=["list", "verify", "path", "install"])
    p.add_argument("--model-dir", type=Path)
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup(args.log_level)
    try:
        return int(args.func(args))
    except SpeechsvcError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
