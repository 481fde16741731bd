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
from typing import TYPE_CHECKING, Any

from speechsvc import __version__
from speechsvc import log as logsetup
from speechsvc.config import Settings
from speechsvc.errors import SpeechsvcError
from speechsvc.types import fixed_language

if TYPE_CHECKING:
    from speechsvc.analysis.base import Stage
    from speechsvc.batch.speakers import SpeakerSplit
    from speechsvc.speech.asr import WhisperRecognizer

log = logging.getLogger("speechsvc")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """Flags that were given override SPEECHSVC_* environment variables."""
    fields = {
        "asr_model_dir": getattr(args, "model_dir", None),
        "device": getattr(args, "device", None),
        "compute_type": getattr(args, "compute_type", None),
        "cpu_threads": getattr(args, "threads", None),
        "asr_hotwords_file": getattr(args, "hotwords", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "grpc_port": getattr(args, "grpc_port", None),
        "max_calls": getattr(args, "max_calls", None),
        "diarize": getattr(args, "diarize", None),
        "diarize_speakers": getattr(args, "speakers", None),
        **extra,
    }
    return Settings(**{k: v for k, v in fields.items() if v is not None})


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, help="CTranslate2 Whisper directory (default: assembled Whisper base)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--compute-type", help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)")
    p.add_argument("--threads", type=int, help="CPU threads for the ASR model")
    p.add_argument("--hotwords", type=Path, metavar="FILE",
                   help="names and words to bias recognition toward, one per line (SPEECHSVC_ASR_HOTWORDS_FILE)")


def _recognizer(settings: Settings) -> WhisperRecognizer:
    from speechsvc.models import whisper_dir
    from speechsvc.speech.asr import WhisperRecognizer

    return WhisperRecognizer(settings.asr(), whisper_dir(settings))


def cmd_serve(args: argparse.Namespace) -> int:
    from speechsvc.server import serve

    settings = _settings(args, **({"insecure": True} if args.insecure else {}))
    try:
        asyncio.run(serve(settings))
    except ValueError as e:  # an insecure or inconsistent security configuration, refused before loading models
        log.error("%s", e)
        return 2
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """API keys: create (the key is printed once, only its hash is kept), list, revoke; webhook secrets."""
    from speechsvc.security.audit import AuditLog
    from speechsvc.security.keys import KeyStore
    from speechsvc.security.principal import Principal
    from speechsvc.security.signing import new_secret

    settings = _settings(args)
    store = KeyStore(settings.keys_path)
    audit = AuditLog(settings.audit_path)
    operator = Principal("cli", "-", frozenset({"admin"}), via="none")
    if args.action == "create":
        if not args.tenant or not args.scopes:
            log.error("keys create needs --tenant and --scopes")
            return 2
        try:
            token, record = store.create(args.tenant, args.scopes, args.name or "")
        except ValueError as e:
            log.error("%s", e)
            return 2
        audit.record("key.create", principal=operator, surface="cli", target=record.id,
                     detail=f"tenant={record.tenant} scopes={','.join(record.scopes)}")
        sys.stdout.write(token + "\n")
        sys.stderr.write(f"key {record.id} for tenant {record.tenant} ({', '.join(record.scopes)}) stored in "
                         f"{store.path}; the key above is shown once\n")
    elif args.action == "list":
        for key in store.keys():
            row = {"id": key.id, "tenant": key.tenant, "scopes": list(key.scopes), "name": key.name,
                   "created": key.created, "revoked": key.revoked}
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif args.action == "revoke":
        try:
            record = store.revoke(args.id or "")
        except KeyError:
            log.error("no key %r in %s", args.id, store.path)
            return 2
        audit.record("key.revoke", principal=operator, surface="cli", target=record.id)
        sys.stderr.write(f"key {record.id} revoked\n")
    else:  # webhook-secret
        sys.stdout.write(new_secret() + "\n")
    return 0


def _speaker_split(settings: Settings) -> SpeakerSplit:
    """Diarization of mono files as the settings ask (the speaker encoder loaded once)."""
    from speechsvc.analysis.roles import QA_PACK
    from speechsvc.batch.speakers import SpeakerSplit
    from speechsvc.models.speaker import speaker_encoder_path
    from speechsvc.speech.diarize import DiarizeOptions
    from speechsvc.speech.speaker import SpeakerEncoder

    encoder = SpeakerEncoder.load(speaker_encoder_path(settings.speaker_dir))
    return SpeakerSplit(encoder, DiarizeOptions(speakers=settings.diarize_speakers), settings.qa_rules or QA_PACK)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from speechsvc.analysis import load_stages
    from speechsvc.analysis.analyzer import CallAnalyzer
    from speechsvc.analysis.base import CallInfo, Mode
    from speechsvc.batch.transcribe import rewrite_segments, transcribe_file
    from speechsvc.batch.writers import WRITERS
    from speechsvc.models import silero_vad_path
    from speechsvc.speech.vad import SileroModel

    settings = _settings(args, **({"pii_redaction": False} if args.no_redact else {}))
    recognizer = _recognizer(settings)
    vad = SileroModel(silero_vad_path())
    speaker_split = _speaker_split(settings) if args.diarize else None
    stages = load_stages(settings, only=("pii",))
    language = fixed_language(args.language)
    failures = 0
    for path in args.files:
        bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio"
        with tqdm(total=0.0, desc=Path(path).name, file=sys.stderr, disable=args.quiet, bar_format=bar_format) as bar:
            try:
                result = transcribe_file(
                    path, recognizer.transcribe, vad, settings.vad(), language,
                    progress=bar.update, on_duration=partial(setattr, bar, "total"), punctuation=settings.punctuation,
                    speaker_split=speaker_split,
                )
            except SpeechsvcError as e:
                log.error("%s: %s", path, e)
                failures += 1
                continue
        analyzer = CallAnalyzer(stages, CallInfo(str(path), result.legs, Mode.BATCH))
        result = replace(result, segments=tuple(rewrite_segments(result.segments, analyzer)))
        sys.stdout.write(WRITERS[args.format](result))
        if args.format == "json":
            sys.stdout.write("\n")
        sys.stdout.flush()
    return 1 if failures else 0


def cmd_stream(args: argparse.Namespace) -> int:
    from speechsvc.clients.ws import load_stream_audio, stream_ws

    audio = load_stream_audio(args.file)

    def show(event: dict[str, Any]) -> None:
        event = {k: v for k, v in event.items() if k not in ("received_at", "sent_ms")}
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    if args.grpc:
        from speechsvc.clients.grpc_client import stream_grpc

        asyncio.run(stream_grpc(args.grpc, audio, language=args.language, speed=args.speed, on_event=show))
    else:
        events = asyncio.run(stream_ws(args.url, audio, language=args.language, speed=args.speed, on_event=show))
        if events and events[0].get("type") != "ready":
            show(events[0])
            return 1
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from speechsvc.batch.files import expand_inputs
    from speechsvc.batch.outputs import OutputDir
    from speechsvc.batch.runners import JobProgress, run_local, run_ray
    from speechsvc.runtime.engine import Engine

    settings = _settings(args, grpc_port=-1, audiosocket_port=-1)
    agents: dict[str, str] = {}
    items = expand_inputs(args.inputs, agents=agents)
    if not items:
        log.error("no inputs found in %s", args.inputs)
        return 2
    if args.redact_audio and args.ray is not None:
        log.error("--redact-audio runs on the local engine; leave out --ray")
        return 2
    formats = sorted({"json", *args.format})
    language = fixed_language(args.language)
    out = OutputDir(args.out)
    if args.ray is not None:
        progress = run_ray(items, out, formats, language, settings, address=args.ray or None,
                           actors=args.actors, num_cpus=args.ray_cpus, words=args.words, agents=agents)
    else:
        bar = tqdm(total=len(items), unit="call", file=sys.stderr, disable=args.quiet)

        def update(p: JobProgress, audio_s: float) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{p.audio_s / 3600:.2f} h audio, {p.failed} failed, {p.skipped} skipped")

        async def main() -> JobProgress:
            engine = await asyncio.to_thread(Engine.load, settings)
            await engine.start()
            try:
                return await run_local(engine, items, out, formats, language, args.concurrency, update,
                                       words=args.words, redact_audio=args.redact_audio, agents=agents)
            finally:
                await engine.stop()

        progress = asyncio.run(main())
        bar.close()
    summary = {"inputs": progress.total, "done": progress.done, "skipped": progress.skipped,
               "failed": progress.failed, "audio_hours": round(progress.audio_s / 3600, 3), "out": str(args.out)}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 1 if progress.failed else 0


def cmd_emotion(args: argparse.Namespace) -> int:
    from speechsvc.analysis import load_stages, started
    from speechsvc.analysis.analyzer import CallAnalyzer
    from speechsvc.analysis.base import CallInfo, Mode
    from speechsvc.analysis.emotion import Emotion, overall_label
    from speechsvc.analysis.record import Utterance
    from speechsvc.batch.transcribe import legs_for, segment_audio
    from speechsvc.models import silero_vad_path
    from speechsvc.speech.audio import decode_with_source_rate
    from speechsvc.speech.vad import SileroModel
    from speechsvc.types import Transcript

    settings = _settings(args)
    recognizer = _recognizer(settings)
    vad = SileroModel(silero_vad_path())
    stages = load_stages(settings.model_copy(update={"emotion": True}), only=("emotion",))

    async def one(path: str) -> dict[str, Any]:
        audio, rate = await asyncio.to_thread(decode_with_source_rate, path)
        legs = legs_for(audio.shape[0])
        analyzer = CallAnalyzer(stages, CallInfo(path, legs, Mode.BATCH))
        utterances = []
        for channel, leg in enumerate(legs):
            for seg in segment_audio(audio[channel], leg, vad, settings.vad(), rate):
                stats = recognizer.encoder_stats([seg.audio])[0]
                final = Transcript(leg, seg.index, seg.start_ms, seg.end_ms, "", "", True, 0.0)
                utterances.append(Utterance.of(final, seg.audio, stats))
        emotions = [e for e in await analyzer.analyze(utterances) if isinstance(e, Emotion)]
        segments = [{"leg": e.leg, "start_ms": e.start_ms, "end_ms": e.end_ms, "label": e.label,
                     "probabilities": dict(e.probabilities), "p_angry": e.p_angry, "arousal": e.arousal}
                    for e in emotions]
        return {"file": path, "label": overall_label(emotions), "segments": segments}

    async def main() -> int:
        failures = 0
        async with started(stages):
            for path in args.files:
                try:
                    record = await one(path)
                except SpeechsvcError as e:
                    log.error("%s: %s", path, e)
                    failures += 1
                    continue
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                sys.stdout.flush()
        return 1 if failures else 0

    return asyncio.run(main())


def cmd_bench(args: argparse.Namespace) -> int:
    if args.kind == "batch":
        from speechsvc.evaluation.bench_batch import main as bench_batch

        bench_batch(args.options)
    elif args.kind == "gpu":
        from speechsvc.evaluation.bench_gpu import main as bench_gpu

        bench_gpu(args.options)
    else:
        from speechsvc.evaluation.bench_stream import main as bench_stream

        bench_stream(args.options)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from speechsvc.models import check_head, check_whisper_dir, install_whisper_base
    from speechsvc.models.speaker import check_speaker_encoder, install_speaker_encoder

    settings = _settings(args)
    whisper = settings.whisper_dir
    if args.action == "install":
        sys.stdout.write(f"{install_whisper_base(whisper)}\n")
        sys.stdout.write(f"{install_speaker_encoder(settings.speaker_dir)}\n")
        return 0
    if args.action == "path":
        sys.stdout.write(f"{whisper}\n")
        return 0
    rows = [("asr", whisper, check_whisper_dir(whisper, deep=args.action == "verify")),
            ("speaker", settings.speaker_dir, check_speaker_encoder(settings.speaker_dir))]
    for name in ("text", "emotion"):
        rows.append((name, settings.heads_dir / name, check_head(settings.heads_dir / name)))
    for name, path, problems in rows:
        status = "ok" if not problems else "; ".join(problems)
        sys.stdout.write(f"{name}\t{path}\t{status}\n")
    return 0 if all(not p for _, _, p in rows) else 1


def _text_stages(args: argparse.Namespace) -> list[Stage]:
    from speechsvc.analysis import load_stages

    settings = _settings(args, text_analysis=True, **({"escalation_rules": args.rules} if args.rules else {}))
    return load_stages(settings, only=("intent", "escalation"))


def cmd_classify(args: argparse.Namespace) -> int:
    from speechsvc.analysis import started
    from speechsvc.analysis.analyzer import CallAnalyzer
    from speechsvc.analysis.base import CallInfo, Mode
    from speechsvc.analysis.intent import Intent, Sentiment
    from speechsvc.analysis.record import Utterance
    from speechsvc.types import Transcript

    stages = _text_stages(args)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]

    async def main() -> None:
        async with started(stages):
            for i, text in enumerate(texts):
                analyzer = CallAnalyzer(stages, CallInfo(f"classify-{i}", ("customer",), Mode.BATCH))
                u = Utterance.of(Transcript("customer", 0, 0, 0, text, "zh", True, 1.0, text))
                events = await analyzer.analyze([u])
                intent = next(e for e in events if isinstance(e, Intent))
                negativity = next(e.negativity for e in events if isinstance(e, Sentiment))
                if args.format == "jsonl":
                    record = {
                        "text": text,
                        "intent": intent.label,
                        "probability": intent.probability,
                        "alternatives": [{"label": label, "probability": p} for label, p in intent.alternatives],
                        "cues": u.cues,
                        "negativity": negativity,
                    }
                    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    cue_text = ",".join(sorted(u.cues)) or "-"
                    sys.stdout.write(f"{intent.label}\t{intent.probability:.2f}\t{negativity:.2f}\t{cue_text}\t{text}\n")

    asyncio.run(main())
    return 0


def cmd_redact(args: argparse.Namespace) -> int:
    from speechsvc.analysis.pii import PiiPolicy, PiiRedactor
    from speechsvc.analysis.pii.rules import ALL_TYPES

    types = frozenset(t.strip().upper() for t in args.types.split(",") if t.strip()) if args.types else None
    policy = PiiPolicy(style=args.style, types=types if types is not None else frozenset(ALL_TYPES))
    redactor = PiiRedactor(policy)
    lines = args.texts if args.texts else [line.rstrip("\r\n") for line in sys.stdin]
    state = redactor.new_state()
    for line in lines:
        if not line.strip():
            state = redactor.new_state()  # --call: an empty line starts a new call
            continue
        if not args.call:
            state = redactor.new_state()
        red = state.redact_final(line)
        sys.stdout.write(json.dumps(red.public(), ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


def cmd_eval_pii(args: argparse.Namespace) -> int:
    from speechsvc.evaluation.pii_eval import evaluate_pii

    path = args.file or Path(__file__).resolve().parents[2] / "shared" / "eval" / "pii" / "dev.tsv"
    if not path.is_file():
        log.error("%s is absent (evaluation data lives in ../shared/eval)", path)
        return 2
    text = json.dumps(evaluate_pii(path, errors=args.errors), ensure_ascii=False, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.stdout.write(text + "\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.stage == "pii":
        return cmd_eval_pii(args)
    from speechsvc.analysis import started
    from speechsvc.evaluation.text import evaluate_text

    if not args.dev.is_file():
        log.error("%s is absent (evaluation data lives in ../shared/eval)", args.dev)
        return 2
    stages = _text_stages(args)

    async def main() -> dict[str, Any]:
        async with started(stages):
            return await evaluate_text(args.dev, stages)

    report = asyncio.run(main())
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.stdout.write(text + "\n")
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    """Re-score batch reports with a QA rules file, without re-running ASR: one JSON line per report."""
    from speechsvc.analysis.qa import QaEngine, qa_aggregates
    from speechsvc.analysis.qa.rules import QaRules, QaRulesError
    from speechsvc.analysis.record import call_end_from_report, utterances_from_report

    try:
        rules = QaRules.load(args.rules)
    except (OSError, QaRulesError) as e:
        log.error("%s", e)
        return 2
    if rules.embedding_roles():  # the sentence encoder the text models use
        from speechsvc.analysis.intent import embedder

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


# ---- intent models an operator teaches (train intent, intents export) ------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    """Train a text model from the operator's labelled TSV; per-intent cross-validated accuracy to stdout."""
    from speechsvc.training.intent_data import IntentDataError, read_examples
    from speechsvc.training.intent_train import SHIPPED_DATA, model_card, train

    try:
        examples = read_examples(args.data)
        base = read_examples(SHIPPED_DATA) if args.base == "default" else []
        result = train(examples, args.out, base=base, source=str(args.data),
                       say=_progress)
    except IntentDataError as e:
        log.error("%s", e)
        return 2
    command = f"speechsvc train intent {args.data} --base {args.base} --out {args.out}"
    (args.out / "MODEL_CARD.md").write_text(model_card(result, command), encoding="utf-8")
    sys.stdout.write("intent\texamples\tcv_accuracy\tcv_f1\n")
    for label in result.labels:
        sys.stdout.write(f"{label}\t{result.support[label]}\t{result.cv_accuracy[label]:.3f}\t"
                         f"{result.cv_f1[label]:.3f}\n")
    own = f" ({result.own_rows:.3f} on your rows)" if result.own_rows is not None else ""
    sys.stdout.write(f"all\t{sum(result.support.values())}\t{result.overall:.3f}{own}\n")
    for label, (other, share) in result.confused_with.items():
        sys.stderr.write(f"note: {share:.0%} of `{label}` rows are predicted as `{other}` (out of fold): the two "
                         "overlap; label them apart, merge them, or train with --base none if one is a shipped "
                         "intent\n")
    sys.stderr.write(f"wrote {args.out} (model card: {args.out / 'MODEL_CARD.md'}); "
                     f"use it with SPEECHSVC_INTENT_MODEL={args.out.resolve()}\n")
    return 0


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")


def cmd_intents(args: argparse.Namespace) -> int:
    """The labelling sheet: utterances from batch reports the model was least sure of, and a diverse sample."""
    from speechsvc.training.intent_data import IntentDataError, candidates, select, write_sheet

    try:
        found = candidates(args.reports, legs=tuple(args.legs.split(",")))
    except IntentDataError as e:
        log.error("%s", e)
        return 2
    rows = select(found, args.uncertain, args.uncertain if args.sample is None else args.sample)
    write_sheet(rows, args.out)
    sys.stderr.write(f"{len(rows)} of {len(found)} distinct utterances written to {args.out}: fill in `intent` "
                     f"(and `negative` 0/1), then `speechsvc train intent {args.out} --out DIR`\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechsvc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"speechsvc {__version__}")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=logsetup.FORMATS, default=logsetup.default_format(),
                        help="text, or json: one JSON object per line (default: SPEECHSVC_LOG_FORMAT, else text)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the streaming service (HTTP/WebSocket and gRPC)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--grpc-port", type=int, help="gRPC port (-1 disables gRPC)")
    p.add_argument("--max-calls", type=int)
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback address without authentication (logged loudly; never in production)")
    _model_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="API keys: create (printed once, stored hashed), list, revoke; webhook-secret")
    p.add_argument("action", choices=["create", "list", "revoke", "webhook-secret"])
    p.add_argument("id", nargs="?", help="revoke: the key id (from `keys list`)")
    p.add_argument("--tenant", help="create: the tenant the key's calls and jobs belong to")
    p.add_argument("--scopes", help="create: comma-separated from stream, subscribe, jobs, admin")
    p.add_argument("--name", help="create: a label for `keys list`")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("transcribe", help="transcribe audio/video files")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=["json", "srt", "vtt", "txt"], default="txt")
    p.add_argument("--language", choices=["zh", "en", "auto"], default="zh")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-redact", action="store_true", help="keep personal information (redaction is on by default)")
    p.add_argument("--diarize", action="store_true",
                   help="split mono files by speaker: each segment says who (agent/customer when clear, else "
                        "speaker_N); stereo files keep their channels")
    p.add_argument("--speakers", type=int, metavar="N", help="speakers in each mono file with --diarize (default 2)")
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
    p.add_argument("--words", action="store_true",
                   help="word (Chinese: character) timings in each report segment (one more decoder pass)")
    p.add_argument("--redact-audio", nargs="?", const="beep", choices=["beep", "silence"],
                   help="also write <name>.redacted.wav: every redacted PII span beeped (default) or silenced")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray (ADDRESS of a cluster, or none for a local instance)")
    p.add_argument("--actors", type=int, default=2, help="Ray actors (each loads the models once)")
    p.add_argument("--ray-cpus", type=int, help="CPUs for a local Ray instance")
    p.add_argument("--diarize", action=argparse.BooleanOptionalAction, default=None,
                   help="split mono recordings by speaker and label agent/customer (default: on; stereo recordings "
                        "keep their channels)")
    p.add_argument("--speakers", type=int, metavar="N", help="speakers in each mono recording (default 2)")
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

    p = sub.add_parser("redact", help="redact PII in texts (args or stdin lines); one JSON object per text")
    p.add_argument("texts", nargs="*")
    p.add_argument("--call", action="store_true",
                   help="consecutive lines are utterances of one call leg; an empty line starts a new call")
    p.add_argument("--style", choices=["tag", "mask"], default="tag", help="[PHONE] or 138****5678")
    p.add_argument("--types", help="comma-separated PII types to redact (default: all)")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("eval", help="evaluate a stage on labelled data (`eval pii [FILE.tsv]`)")
    p.add_argument("stage", choices=["intent", "pii"])
    p.add_argument("file", nargs="?", type=Path, help="pii: the labelled TSV (default ../shared/eval/pii/dev.tsv)")
    p.add_argument("--errors", action="store_true", help="pii: list every missed and spurious span")
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

    p = sub.add_parser("bench", help="benchmarks: `bench stream` (latency and capacity), `bench batch` (ASR batch "
                                     "size), `bench gpu` (the GPU capacity run); --help after the kind for options")
    p.add_argument("kind", choices=["stream", "batch", "gpu"])
    p.add_argument("options", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train an intent model from your labelled utterances (`train intent DATA.tsv`)")
    p.add_argument("what", choices=["intent"])
    p.add_argument("data", type=Path, metavar="DATA.tsv",
                   help="tab-separated, UTF-8: columns text, intent (required), negative (0/1, optional)")
    p.add_argument("--base", choices=["default", "none"], default="default",
                   help="default: add the shipped training rows (17 intents) to yours; none: your intents only")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (SPEECHSVC_INTENT_MODEL loads it)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("intents", help="`intents export REPORTS...`: a sheet of utterances to label (batch reports)")
    p.add_argument("action", choices=["export"])
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    p.add_argument("--uncertain", type=int, required=True, metavar="N",
                   help="the N utterances the model was least sure of")
    p.add_argument("--sample", type=int, metavar="M", help="plus M more, spread over the predicted intents (default N)")
    p.add_argument("--legs", default="customer,mixed", help="legs to take utterances from")
    p.add_argument("--out", type=Path, default=Path("to_label.tsv"), help="the sheet to write (TSV)")
    p.set_defaults(func=cmd_intents)

    p = sub.add_parser("models", help="install, list, verify the local models")
    p.add_argument("action", choices=["list", "verify", "path", "install"])
    p.add_argument("--model-dir", type=Path)
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except SpeechsvcError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
