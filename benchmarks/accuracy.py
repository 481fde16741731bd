"""Accuracy of every model: ASR CER (Mandarin) / WER (English) per eval folder and source, through the same
VAD → ASR path as `speechsvc transcribe`, on the 16 kHz audio and on the 8 kHz telephone copies; intent
accuracy / macro-F1 and escalation cues on intent_dev.tsv; the emotion head's leave-one-speaker-out figures
(computed by training/train_emotion.py and shipped in models/emotion/model.json).

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

import numpy as np

from speechsvc.analysis import load_stages, started
from speechsvc.config import Settings
from speechsvc.evaluation.asr_sets import APART, HOLDOUT, TUNE, Item, conditions, en_items, with_splits, zh_items
from speechsvc.evaluation.asr_sets import __doc__ as SPLIT_RULE
from speechsvc.evaluation.heldout import TextCache, Transcriber, score
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.seeded import SeededSampling
from speechsvc.evaluation.text import evaluate_text
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import AsrRequest, AsrResult, WhisperRecognizer
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

    def __init__(self, model_dir: Path, threads: int, seeded: SeededSampling) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads,
                                  local_files_only=True)
        self.model.model = seeded.wrap(self.model.model)  # its temperature fallback: seeded per clip
        self.seeded = seeded
        self.recipe = f"{self.RECIPE}, seed {seeded.seed} per clip"

    RECIPE = "fw-1: greedy, T 0/0.2/0.4, cr 2.0, vad_filter, 10 tok/s + 8, no prompt, PyAV s16 decode"

    def transcribe(self, path: Path, language: str) -> str:
        from faster_whisper import decode_audio

        self.seeded.new_clip()
        return self.decode(decode_audio(str(path)), language, vad_filter=True)

    def decode(self, audio: np.ndarray, language: str, vad_filter: bool = False) -> str:
        seconds = min(30.0, audio.size / 16000)
        segments, _ = self.model.transcribe(
            audio, language=language, beam_size=1, temperature=[0.0, 0.2, 0.4], compression_ratio_threshold=2.0,
            vad_filter=vad_filter, condition_on_previous_text=False, max_new_tokens=min(440, int(10 * seconds) + 8),
        )
        return ("" if language == "zh" else " ").join(s.text.strip() for s in segments)


VARIANTS = ("ours", "gate", "pad200", "gaps", "seg15", "chunk28", "fw_audio", "fw_vad", "whole", "win30", "no_drop",
            "fw_decode", "notime", "nocont", "cont1", "cont3", "nb35", "tail300", "tail500", "fill0", "lp100", "lp80",
            "lp60", "lpoff", "fw30", "fw20")


def _zero_padded(mel: np.ndarray, frames: int) -> np.ndarray:
    return np.pad(mel[:, :frames], ((0, 0), (0, max(0, frames - mel.shape[1]))))


def ours(recognizer: WhisperRecognizer, vad: SileroModel, settings: Settings, variant: str,
         peer: FasterWhisperRecipe | None, seeded: SeededSampling) -> Transcriber:
    """speechsvc's file path, or (for finding where it loses) the same with one stage changed: ``seg15`` recorded
    turns cut by force at 15 s (as before issue 27), ``gaps`` 0.3 s silences between a chunk's utterances instead
    of the recorded pauses (as before), ``gate`` the live VAD options (the WebRTC gate before
    Silero, 200 ms pads), ``pad200`` 200 ms pads without the gate, ``chunk28`` chunks of up to 28 s; or
    swapped for faster-whisper's: ``fw_audio`` its resampler, ``fw_vad`` its VAD segmentation (2 s pauses, 400 ms
    pads), ``whole`` none (the file as one chunk), ``win30`` its 30 s encoder window, ``no_drop`` no no-speech
    drop, ``fw_decode`` its decoder on our chunks; ``notime`` chunks decoded without timestamps and never continued
    (before the continuation), ``nocont`` with timestamps but never continued, ``cont1`` / ``cont3`` continued
    when the text ends 1 s / 3 s before the chunk does; ``nb35`` (any ``nbNN``) the narrowband VAD threshold 0.35 on
    sources at 8 kHz and below; ``tail300`` / ``tail500`` that much digital silence after each chunk, ``fill0`` the
    window padded with zeros instead of silence; ``lp100`` (any ``lpNN``) sampling again a chunk whose greedy
    average log-prob is below -1.00, ``lpoff`` never for doubt alone; ``fw30`` (any ``fwNN``) a chunk that falls
    back also decoded greedily in a 30 s window among its hypotheses."""
    from dataclasses import replace

    from speechsvc.batch.chunks import CHUNK_S, plan_chunks
    from speechsvc.batch.transcribe import recorded_vad, segment_audio, transcribe_segments
    from speechsvc.speech.audio import decode_with_source_rate
    from speechsvc.types import SpeechSegment

    options = recognizer.options
    if variant == "win30":
        tuned = replace(options, min_window_s=30.0)
    elif variant == "lpoff":  # no sampling for doubt
        tuned = replace(options, fallback_logprob=0.0)
    elif variant == "no_drop":
        tuned = replace(options, no_speech_threshold=1.0)
    elif variant.startswith("nb"):  # nb35: the narrowband VAD threshold 0.35 (sources at 8 kHz and below)
        settings = settings.model_copy(update={"vad_narrowband_threshold": int(variant[2:]) / 100})
        tuned = options
    elif variant.startswith("fw") and variant[2:].isdigit():  # fw30: the window candidate of a fallback
        tuned = replace(options, fallback_window_s=float(variant[2:]))
    elif variant.startswith("lp"):  # lp100: sample again a final whose greedy avg log-prob is below -1.00
        tuned = replace(options, fallback_logprob=-int(variant[2:]) / 100)
    elif variant in ("nocont", "cont1", "cont3"):
        tuned = replace(options, continue_after_s={"nocont": 0.0, "cont1": 1.0, "cont3": 3.0}[variant])
    else:
        tuned = options

    def recognize(requests: list[AsrRequest]) -> list[AsrResult]:
        recognizer.options = tuned
        if variant == "notime":
            requests = [replace(r, complete=False) for r in requests]
        if variant.startswith("tail"):

            tail = np.zeros(int(variant[4:]) * 16, np.float32)
            requests = [replace(r, audio=np.concatenate([r.audio, tail])) for r in requests]
        if variant == "fill0":  # the window padded with zeros (faster-whisper's pad_or_trim), not silence
            import speechsvc.speech.asr as asr_module

            keep = asr_module._pad_frames
            asr_module._pad_frames = _zero_padded
            try:
                return recognizer.transcribe(requests)
            finally:
                asr_module._pad_frames = keep
        try:
            return recognizer.transcribe(requests)
        finally:
            recognizer.options = options

    def transcribe(path: Path, language: str) -> str:
        seeded.new_clip()
        decoded, rate = decode_with_source_rate(path)
        if variant == "fw_audio":
            from faster_whisper import decode_audio

            audio = decode_audio(str(path))
        else:
            audio = decoded[0]
        if variant == "fw_vad":
            from faster_whisper.vad import get_speech_timestamps

            spans = get_speech_timestamps(audio)
            segments = [SpeechSegment("mixed", k, s["start"] // 16, s["end"] // 16, audio[s["start"]:s["end"]])
                        for k, s in enumerate(spans)]
        elif variant == "seg15":  # before issue 27: recorded turns cut by force at the live limit (15 s)
            from speechsvc.speech.vad import SpeechEnded, VadStream

            stream = VadStream(vad, settings.vad(), "mixed")
            events = [*stream.feed(audio), *stream.flush()]
            segments = [e.segment for e in events if isinstance(e, SpeechEnded)]
        elif variant == "whole":
            segments = [SpeechSegment("mixed", 0, 0, audio.size // 16, audio[: 30 * 16000])]
        else:
            live = settings.vad()
            if variant in ("gate", "pad200"):  # before issue 27: the live pads (200 ms), and the WebRTC gate
                from speechsvc.speech.vad import SpeechEnded, VadStream

                options = replace(recorded_vad(live), speech_pad_ms=live.speech_pad_ms,
                                  webrtc_mode=live.webrtc_mode if variant == "gate" else None)
                stream = VadStream(vad, options, "mixed")
                segments = [e.segment for e in [*stream.feed(audio), *stream.flush()] if isinstance(e, SpeechEnded)]
            else:
                segments = segment_audio(audio, "mixed", vad, live, rate)
        if variant == "fw_decode" and peer is not None:
            return "".join(peer.decode(c.audio, language) for c in plan_chunks(segments))
        out = transcribe_segments(segments, recognize, language, chunk_s=28.0 if variant == "chunk28" else CHUNK_S,
                                  recording=None if variant == "gaps" else {"mixed": audio})
        return ("" if language == "zh" else " ").join(s.text for s in out)

    return transcribe


def asr_heldout(args: argparse.Namespace, recognizer: WhisperRecognizer, vad: SileroModel,
                settings: Settings, seeded: SeededSampling) -> dict[str, Any]:
    """Every condition x split: speechsvc (each variant asked for) and plain faster-whisper, per family."""
    items = zh_items(args.eval) + (en_items(args.eval) if "en" in args.languages else [])
    items = [i for i in items if i.language in args.languages and (args.long_turns or i.family != "long_turn")
             and (not args.families or i.family in args.families)]
    splits = with_splits(items)
    peer = FasterWhisperRecipe(whisper_dir(settings), settings.cpu_threads, seeded) if args.peer else None
    peer_text = TextCache(args.cache / "faster_whisper_texts.json", peer.recipe).wrap(
        peer.transcribe) if peer else None
    out: dict[str, Any] = {}

    def print_item(key: str, error_rate: float, text: str) -> None:
        print(f"    {key:40s} {error_rate:.3f} {text}")

    show = print_item if args.show else None
    for condition in args.conditions:
        for split in args.splits:
            chosen = subset(splits[split], args.subset) if split == TUNE else splits[split]
            row: dict[str, object] = {}
            if condition not in args.long_turn_conditions:
                chosen = [i for i in chosen if i.family not in APART]
            for variant in args.variants:
                # Only where a variant can differ: seg15 on turns that reach 15 s, the rest on short items.
                if variant == "seg15":
                    mine = [i for i in chosen if i.family in ("spontaneous", "long_turn")]
                elif variant == "ours":
                    mine = chosen
                elif split == TUNE or args.variants_on_holdout:
                    mine = [i for i in chosen if i.family != "long_turn"]
                else:  # stage swaps are for choosing, on tune
                    continue
                r = score(mine, condition, split, ours(recognizer, vad, settings, variant, peer, seeded), args.cache,
                          args.eval / "noise" / "audio", show)
                row[variant] = asdict(r)
                line = f"{condition:15s} {split:7s} {variant:9s} {r.error_rate:.3f} ({r.files} files, {r.wall_s}s)"
                print(line + "  " + "  ".join(f"{f} {v['error_rate']:.3f}/{v['files']:.0f}"
                                             for f, v in r.per_family.items()), flush=True)
            if peer_text:
                p = score(chosen, condition, split, peer_text, args.cache, args.eval / "noise" / "audio", show)
                row["faster_whisper"] = asdict(p)
                print(f"{condition:15s} {split:7s} {'fw':9s} {p.error_rate:.3f} ({p.files} files)  "
                      + "  ".join(f"{f} {v['error_rate']:.3f}/{v['files']:.0f}" for f, v in p.per_family.items()),
                      flush=True)
            out[f"{condition}/{split}"] = row
    return out


def noise_only(args: argparse.Namespace, recognizer: WhisperRecognizer, vad: SileroModel, settings: Settings,
               seeded: SeededSampling) -> dict[str, Any]:
    """Audio with no speech (eval/noise: noise recordings, hold music; not the impulse responses), each file's
    first 30 s through every 8 kHz telephone chain (brought to the chain's speech level: a stress case): per
    variant, the seconds the VAD calls speech and the characters of text the recorded path writes (all
    hallucinations)."""
    from speechsvc.batch.transcribe import segment_audio
    from speechsvc.evaluation.telephone import CHAINS, build
    from speechsvc.speech.audio import decode_file, decode_with_source_rate

    folder = args.eval / "noise" / "audio"
    files = sorted(p for p in folder.glob("*.wav") if not p.name.startswith("rir_"))
    out: dict[str, Any] = {}
    for variant in args.variants:
        transcribe = ours(recognizer, vad, settings, variant, None, seeded)
        vad_settings = settings.model_copy(update={"vad_narrowband_threshold": int(variant[2:]) / 100}) \
            if variant.startswith("nb") else settings
        speech_s, chars, texts = 0.0, 0, {}
        for chain in CHAINS:
            for f in files:
                audio = decode_file(f)[0][0][: 30 * 16000]
                path = build(audio, 16000, chain, f"noise_{f.stem}", args.cache)
                decoded, rate = decode_with_source_rate(path)
                heard = segment_audio(decoded[0], "mixed", vad, vad_settings.vad(), rate)
                speech_s += sum(s.audio.size for s in heard) / 16000
                text = transcribe(path, "zh")
                chars += len(text)
                if text:
                    texts[f"{chain.name}/{f.stem}"] = text
        out[variant] = {"files": len(files) * len(CHAINS), "speech_s": round(speech_s, 1), "chars": chars,
                        "texts": texts}
        print(f"noise-only      {variant:9s} {len(files) * len(CHAINS)} files: VAD speech {speech_s:.1f} s, "
              f"{chars} characters of text  {texts}", flush=True)
    return out


def markdown(asr: dict[str, Any], split: str) -> str:
    """The README table of one split: per condition and family, speechsvc / plain faster-whisper (files)."""
    families = ["read", "prompt", "spontaneous", "all", "read_turn", "long_turn"]
    lines = [f"| {split} | " + " | ".join(families) + " |", "|---" * (len(families) + 1) + "|"]
    for key, row in asr.items():
        condition, part = key.split("/")
        if part != split or "faster_whisper" not in row or "ours" not in row:  # only variants were run
            continue
        cells = []
        for family in families:
            ours_, fw = (row["ours"], row["faster_whisper"])
            if family == "all":
                a, b, n = ours_["error_rate"], fw["error_rate"], ours_["files"]
            elif family == "long_turn":
                a, b = ours_["per_family"].get("bronze", {}), fw["per_family"].get("bronze", {})
                a, b, n = a.get("error_rate"), b.get("error_rate"), a.get("files")
            else:
                a, b = ours_["per_family"].get(family, {}), fw["per_family"].get(family, {})
                a, b, n = a.get("error_rate"), b.get("error_rate"), a.get("files")
            cells.append("–" if a is None else f"{'**' if a <= b else ''}{a:.3f}{'**' if a <= b else ''} / {b:.3f} "
                         f"({n:.0f})")
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def subset(items: list[Item], n: int) -> list[Item]:
    """At most ``n`` items per family and source (evenly spaced, deterministic): quick tuning runs; 0 = all."""
    if not n:
        return items
    by: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        by.setdefault((item.family, item.source), []).append(item)
    return [group[k * len(group) // min(n, len(group))] for group in by.values() for k in range(min(n, len(group)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "accuracy-cache",
                        help="telephone copies and faster-whisper texts (built from --eval, never committed)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="skip the side-by-side run of plain faster-whisper")
    parser.add_argument("--conditions", type=lambda v: v.split(","), default=list(conditions()),
                        help=f"comma-separated, of {','.join(conditions())}")
    parser.add_argument("--splits", type=lambda v: v.split(","), default=[TUNE, HOLDOUT])
    parser.add_argument("--variants", type=lambda v: v.split(","), default=["ours"],
                        help=f"speechsvc's path and stage swaps: {','.join(VARIANTS)}")
    parser.add_argument("--variants-on-holdout", action="store_true",
                        help="score the stage swaps on holdout too (by default only speechsvc's path and the peer)")
    parser.add_argument("--show", action="store_true", help="print each item's error rate and text")
    parser.add_argument("--languages", type=lambda v: v.split(","), default=["zh"])
    parser.add_argument("--subset", type=int, default=0,
                        help="at most N tune items per source (0: all); holdout is always whole")
    parser.add_argument("--no-long-turns", dest="long_turns", action="store_false")
    parser.add_argument("--long-turn-conditions", type=lambda v: v.split(","), default=["16k", "g711u"],
                        help="conditions that also score the long turns (bronze, 13 x 26 s) and read turns")
    parser.add_argument("--families", type=lambda v: v.split(","), default=[],
                        help="only these source families (read, prompt, spontaneous, read_turn, long_turn, en)")
    parser.add_argument("--asr-only", action="store_true", help="skip intent and emotion")
    parser.add_argument("--noise-only", action="store_true",
                        help="only the hallucination check: noise and hold music through the 8 kHz chains")
    parser.add_argument("--seed", type=int, default=0,
                        help="every clip's temperature sampling (both sides) starts from this seed: reproducible runs")
    args = parser.parse_args()
    # One decoding lane: the benchmark decodes one clip at a time.
    settings = Settings(device=args.device, cpu_threads=args.threads, asr_inter_threads=1)
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    seeded = SeededSampling(whisper_dir(settings), recognizer.device, recognizer.compute_type, settings.cpu_threads,
                            args.seed)
    recognizer._ct2 = seeded.wrap(recognizer._ct2)  # its sampled fallback: seeded per clip
    vad = SileroModel(silero_vad_path())
    env = environment(recognizer, settings) | {"seed": args.seed, "sampling": "seeded per clip (evaluation/seeded.py)"}
    print(json.dumps(env, indent=2))
    report: dict[str, object] = {"environment": env, "split_rule": SPLIT_RULE, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if args.noise_only:
        report["noise_only"] = noise_only(args, recognizer, vad, settings, seeded)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
        print(f"wrote {args.out}")
        return
    asr = asr_heldout(args, recognizer, vad, settings, seeded)
    report["asr"] = asr
    env["sampled_clips"] = seeded.loads  # clips whose decoding sampled (each from the seed)
    for split in args.splits:
        print(markdown(asr, split))
    if args.asr_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
        print(f"wrote {args.out}")
        return
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
