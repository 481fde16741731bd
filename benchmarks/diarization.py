"""Diarization and roles of mono recordings, on two-party calls assembled from real speakers of ../shared/eval.

    python benchmarks/diarization.py [--eval ../shared/eval] [--out benchmarks/results/diarization.json] [--grid]

How it is taken:
- Speakers (real recordings, each speaker's utterances trimmed of leading/trailing silence and joined into one
  stream at -26 dBFS). Split by source: **tune** = EmoDB (10 German speakers) and CASIA (3 Mandarin speakers),
  **holdout** = the AISHELL sample's S0150 and S0252 (from eval/long), Asterisk's Allison (eval/asr_en), the two
  IBM talks and the MagicData monologue (eval/long): 6 speakers never looked at while choosing anything.
- Calls: the 44 scripted service calls of data/qa_calls.jsonl give each call's turns (who speaks when, overlaps
  and interruptions included) and its words. Tune uses the 15 bank calls, holdout the 29 telecom and e-commerce
  calls. Each turn is filled with the next stretch of its speaker's stream (agent and customer are two different
  real speakers, a different pair per call; the customer 0-6 dB quieter); the stereo call has them on two channels,
  the mono call is its mixdown, and every mono call also goes through two simulated G.711 lines: ``8k_mulaw`` is
  the project's telephone chain ``g711u`` (:mod:`speechsvc.evaluation.telephone`, as the ASR evaluation uses it:
  4th-order 300-3400 Hz band-pass, 8 kHz by libswresample, FFmpeg's μ-law round trip), decoded back to 16 kHz as
  the service decodes an 8 kHz file; ``8k_brickwall`` is the harsher copy of ``telephone_channel`` (an FFT
  brick-wall band-pass that removes everything below 300 Hz, then 8 kHz μ-law), kept as a stress row.
- Pipeline as the service runs it: Silero VAD on the mono audio, then :func:`speechsvc.speech.diarize.diarize`.
- Attribution: every 10 ms of reference speech (a frame of the speaker's stream within 30 dB of its loud frames and
  6 dB above its noise floor) where one party speaks (overlaps excluded), with the best mapping
  of found speakers to the two parties; ``on_right_speaker`` = share of that speech given to its speaker (speech
  the VAD missed counts as wrong); DER = (missed + false alarm + confusion) / reference speech, no collar.
- Roles and QA: the audio's speakers do not say the script's words (they read other texts), so each scripted
  utterance takes the found speaker that covers most of its span, and roles are assigned from the script's text
  (:func:`speechsvc.analysis.roles.assign_roles`): ASR is left out (the same for stereo and mono). ``roles_right``
  counts a call right when the speaker mapped to the agent was labelled agent; ``abstained`` = labelled
  speaker_0/1. QA: the default pack scores the mono call (utterances on the legs the roles gave) and the stereo
  call; ``qa_agreement`` = share of (call, rule) outcomes that are the same.
- Cost: wall time of diarize (embeddings + clustering) over the mono audio's duration, one process; run with
  OPENBLAS_NUM_THREADS=1 (one core; on a busy 2-core machine more BLAS threads only contend).
- The same-speaker threshold is compared on the tune split (``--compare-same``, embeddings cached) by the whole
  metric set (speech on the right speaker + calls with the right roles + QA agreement, over all channels); the
  shipped default is the winner there. ``--grid`` also searches window options on the tune split (slow).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsvc.analysis.intent import TextModel, embedder  # noqa: E402
from speechsvc.analysis.qa.engine import QaEngine  # noqa: E402
from speechsvc.analysis.qa.rules import QaRules  # noqa: E402
from speechsvc.analysis.record import CallEnd, Utterance  # noqa: E402
from speechsvc.analysis.roles import MIN_MARGIN, SpeakerText, assign_roles  # noqa: E402
from speechsvc.batch.transcribe import segment_audio  # noqa: E402
from speechsvc.config import Settings  # noqa: E402
from speechsvc.evaluation.machine import describe  # noqa: E402
from speechsvc.evaluation.telephone import CHAINS, apply_chain, seed_for  # noqa: E402
from speechsvc.models import silero_vad_path  # noqa: E402
from speechsvc.models.speaker import speaker_encoder_path  # noqa: E402
from speechsvc.speech.audio import decode_file, resample, telephone_channel  # noqa: E402
from speechsvc.speech.diarize import DiarizeOptions, diarize  # noqa: E402
from speechsvc.speech.speaker import SpeakerEncoder  # noqa: E402
from speechsvc.speech.vad import SileroModel  # noqa: E402
from speechsvc.types import Float32Array, SpeechSegment  # noqa: E402

SR = 16000
FRAME = 160  # 10 ms
CHANNELS = ("16k", "8k_mulaw", "8k_brickwall")
G711U = next(c for c in CHAINS if c.name == "g711u")


def channel_copy(built: BuiltCall, channel: str) -> Float32Array:
    """The mono call as ``channel`` hands it to the service (16 kHz; see the module docstring)."""
    if channel == "8k_mulaw":
        narrow = apply_chain(built.mono, SR, G711U, seed_for(built.id, G711U.name))
        return np.asarray(resample(narrow, 8000, SR)[: built.mono.size], np.float32)
    if channel == "8k_brickwall":
        return telephone_channel(built.mono, np.random.default_rng(7))
    return built.mono


def load_calls(path: Path, model: TextModel) -> list[dict[str, Any]]:
    """The labelled calls with the committed text model's intent and negativity on each utterance (as
    benchmarks/qa_rules.py reads them)."""
    calls = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    analyses = iter(model.predict([u["text"] for c in calls for u in c["utterances"]]))
    for call in calls:
        call["parsed"] = []
        for u in call["utterances"]:
            a = next(analyses)
            call["parsed"].append(Utterance(
                leg=u["leg"], index=u["index"], start_ms=u["start_ms"], end_ms=u["end_ms"], text=u["text"],
                intent=a.intent, intent_probability=a.probability, negativity=a.negativity,
                emotion=u.get("emotion"), p_angry=u.get("p_angry"), p_angry_smoothed=u.get("p_angry")))
        end = call["end"]
        legs = sorted({u.leg for u in call["parsed"]}) or ["mixed"]
        cut = (end.get("mid_utterance_leg") or legs[-1],) if end.get("mid_utterance") else ()
        call["call_end"] = CallEnd("recording", dict.fromkeys(legs, end["duration_ms"]), cut, end.get("ended_by"))
    return calls


def _trim(audio: Float32Array) -> Float32Array:
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    voiced = np.flatnonzero(energy > energy.max() - 40)
    if voiced.size == 0:
        return audio[:0]
    return np.asarray(audio[voiced[0] * FRAME : (voiced[-1] + 1) * FRAME], np.float32)


def _voiced(stream: Float32Array) -> np.ndarray:
    """Per 10 ms of a speaker's stream: speech, by energy within 30 dB of the stream's loud frames (95th
    percentile) and 6 dB above its noise floor (10th percentile), so the pauses and background of a long talk are
    not counted as that speaker's speech."""
    frames = stream[: stream.size // FRAME * FRAME].reshape(-1, FRAME)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    threshold = max(float(np.percentile(energy, 95)) - 30.0, float(np.percentile(energy, 10)) + 6.0)
    return np.asarray(energy > threshold)


def _level(audio: Float32Array, dbfs: float = -26.0) -> Float32Array:
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    return np.asarray(audio * (10 ** (dbfs / 20) / max(rms, 1e-9)), np.float32)


def _load(path: Path) -> Float32Array:
    audio, _ = decode_file(path)
    return np.asarray(audio[0], np.float32)


def speaker_pools(eval_dir: Path) -> dict[str, dict[str, Float32Array]]:
    """split → speaker → one stream of that speaker's speech."""
    files: dict[str, list[Path]] = defaultdict(list)
    with (eval_dir / "emotion" / "labels.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            files[row["speaker"]].append(eval_dir / "emotion" / row["path"])
    tune = {spk: _level(np.concatenate([_trim(_load(p)) for p in sorted(paths)])) for spk, paths in files.items()}
    holdout: dict[str, Float32Array] = {}
    long_dir = eval_dir / "long"
    aishell = _load(long_dir / "audio" / "aishellsample_S0150_S0252_concat_read.wav")
    segments = json.loads((long_dir / "segments" / "aishellsample_S0150_S0252_concat_read.json").read_text())
    for spk in ("S0150", "S0252"):
        parts = [aishell[int(s["start"] * SR) : int(s["end"] * SR)] for s in segments if spk in s["source_id"]]
        holdout[f"aishell_{spk}"] = _level(np.concatenate([_trim(p) for p in parts]))
    allison = sorted((eval_dir / "asr_en" / "audio").glob("asterisk_*.wav"))
    holdout["asterisk_allison"] = _level(np.concatenate([_trim(_load(p)) for p in allison]))
    for name, stem in (("ibm_gettysburg", "ibm_05-gettysburg-address-2min"),
                       ("ibm_watson", "ibm_08-ibm-watson-ai-3min"),
                       ("magicdata_talk", "magicdata_viewer_guava_talk_monologue")):
        holdout[name] = _level(_load(long_dir / "audio" / f"{stem}.wav"))
    return {"tune": tune, "holdout": holdout}


@dataclass
class BuiltCall:
    id: str
    split: str
    agent: str
    customer: str
    mono: Float32Array
    reference: np.ndarray  # per 10 ms: 0 none, 1 agent, 2 customer, 3 both
    call: dict[str, Any]


def build_calls(calls: list[dict[str, Any]], pools: dict[str, dict[str, Float32Array]]) -> list[BuiltCall]:
    out = []
    rng = np.random.default_rng(29)
    for split in ("tune", "holdout"):
        chosen = [c for c in calls if (c["domain"] == "bank") == (split == "tune")]
        speakers = sorted(pools[split])
        pairs = [p for p in itertools.permutations(speakers, 2)]
        order = rng.permutation(len(pairs))
        for n, call in enumerate(chosen):
            agent, customer = pairs[int(order[n % len(pairs)])]
            duration = call["end"]["duration_ms"]
            stereo = np.zeros((2, duration * SR // 1000 + SR), np.float32)
            reference = np.zeros(stereo.shape[1] // FRAME, np.int8)
            masks = {spk: _voiced(pools[split][spk]) for spk in (agent, customer)}
            cursor = {agent: int(rng.integers(0, pools[split][agent].size)),
                      customer: int(rng.integers(0, pools[split][customer].size))}
            gain = {agent: 1.0, customer: float(10 ** (-rng.uniform(0, 6) / 20))}
            for u in call["utterances"]:
                spk = agent if u["leg"] == "agent" else customer
                stream = pools[split][spk]
                a, b = u["start_ms"] * SR // 1000, u["end_ms"] * SR // 1000
                cursor_before = cursor[spk]
                take = np.take(stream, np.arange(cursor[spk], cursor[spk] + b - a), mode="wrap")
                cursor[spk] = (cursor[spk] + b - a) % stream.size
                stereo[0 if spk == customer else 1, a:b] += take * gain[spk]
                frames = np.arange(cursor_before // FRAME, cursor_before // FRAME + (b - a) // FRAME) % masks[spk].size
                voiced = np.flatnonzero(masks[spk][frames]) + a // FRAME
                reference[voiced[voiced < reference.size]] |= 1 if spk == agent else 2
            mono = np.clip(stereo.sum(axis=0), -1, 1).astype(np.float32)
            out.append(BuiltCall(call["id"], split, agent, customer, mono, reference, call))
    return out


def hypothesis(parts: list[tuple[SpeechSegment, int]], frames: int) -> np.ndarray:
    """Per 10 ms: -1 no speech, else the found speaker."""
    hyp = np.full(frames, -1, np.int16)
    for seg, speaker in parts:
        hyp[seg.start_ms // 10 : seg.end_ms // 10] = speaker
    return hyp


def score(reference: np.ndarray, hyp: np.ndarray) -> dict[str, Any]:
    single = (reference == 1) | (reference == 2)
    found = sorted(set(int(v) for v in hyp[hyp >= 0]))
    best: tuple[float, dict[int, int]] = (-1.0, {})
    for perm in itertools.permutations([1, 2], min(2, len(found))):
        mapping = dict(zip(found, perm, strict=False))
        mapped = np.array([mapping.get(int(v), 0) if v >= 0 else 0 for v in hyp])
        right = float(np.sum(single & (mapped == reference)))
        if right > best[0]:
            best = (right, mapping)
    mapping = best[1]
    mapped = np.array([mapping.get(int(v), 9) if v >= 0 else 0 for v in hyp])
    ref_speech = float(np.sum(single))
    miss = float(np.sum(single & (mapped == 0)))
    fa = float(np.sum((reference == 0) & (mapped != 0)))
    conf = float(np.sum(single & (mapped != 0) & (mapped != reference)))
    heard = ref_speech - miss
    return {"on_right_speaker": best[0] / ref_speech, "der": (miss + fa + conf) / ref_speech,
            "heard_on_right_speaker": best[0] / heard if heard else 0.0,
            "miss": miss / ref_speech, "false_alarm": fa / ref_speech, "confusion": conf / ref_speech,
            "mapping": mapping, "speakers_found": len(found)}


SHORT_TURN_MS = 1500


def short_turns(built: BuiltCall, hyp: np.ndarray, mapping: dict[int, int]) -> dict[str, int]:
    """Reference speech (one party speaking) of the scripted turns shorter than ``SHORT_TURN_MS`` ("嗯", "好的",
    a quick answer) and how much of it is on its speaker; the overlapped frames (both parties) of the call."""
    mapped = np.array([mapping.get(int(v), 0) if v >= 0 else 0 for v in hyp])
    right = total = 0
    for u in built.call["utterances"]:
        if u["end_ms"] - u["start_ms"] >= SHORT_TURN_MS:
            continue
        party = 1 if u["leg"] == "agent" else 2
        span = slice(u["start_ms"] // 10, u["end_ms"] // 10)
        ref, got = built.reference[span], mapped[span]
        right += int(np.sum((ref == party) & (got == party)))
        total += int(np.sum(ref == party))
    return {"short_right": right, "short_total": total, "overlap_frames": int(np.sum(built.reference == 3)),
            "single_frames": int(np.sum((built.reference == 1) | (built.reference == 2)))}


def roles_and_qa(built: BuiltCall, hyp: np.ndarray, mapping: dict[int, int], parsed: list[Any],
                 qa: QaEngine, min_margin: float) -> dict[str, Any]:
    texts, owner = [], []
    for u, raw in zip(parsed, built.call["utterances"], strict=True):
        span = hyp[u.start_ms // 10 : u.end_ms // 10]
        span = span[span >= 0]
        spk = int(np.bincount(span).argmax()) if span.size else -1
        owner.append(spk)
        if spk >= 0:
            texts.append(SpeakerText(spk, u.start_ms, raw["text"]))
    n = max([s for s in owner if s >= 0], default=-1) + 1
    roles = assign_roles(texts, n, min_margin=min_margin)
    agent_speaker = next((s for s, ref in mapping.items() if ref == 1), None)
    right = roles.known and agent_speaker is not None and roles.roles[agent_speaker] == "agent"
    stereo = qa.score_call(parsed, built.call["call_end"], ("customer", "agent"))
    counters: dict[str, int] = defaultdict(int)
    mono_utts = []
    for u, spk in zip(parsed, owner, strict=True):
        if spk < 0:
            continue
        leg = roles.leg(spk)
        mono_utts.append(replace(u, leg=leg, index=counters[leg]))
        counters[leg] += 1
    legs = ("customer", "agent") if roles.known else ("mixed",)
    mono = qa.score_call(mono_utts, built.call["call_end"], legs)
    outcomes = [(r.rule, r.status, mono.outcome(r.rule).status) for r in stereo.outcomes]
    return {"roles_right": bool(right), "abstained": not roles.known, "role_confidence": roles.confidence,
            "qa_same": sum(a == b for _, a, b in outcomes), "qa_total": len(outcomes),
            "qa_differ": [{"rule": r, "stereo": a, "mono": b} for r, a, b in outcomes if a != b]}


class CachedEncoder:
    """The encoder with its embeddings remembered by window content: the option search re-clusters the same
    windows many times (never used where cost is measured)."""

    def __init__(self, encoder: SpeakerEncoder) -> None:
        self.encoder = encoder
        self.memory: dict[bytes, np.ndarray] = {}

    def embed(self, windows: list[Float32Array]) -> Float32Array:
        keys = [hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in windows]
        todo = [k for k, key in enumerate(keys) if key not in self.memory]
        if todo:
            for k, e in zip(todo, self.encoder.embed([windows[k] for k in todo]), strict=True):
                self.memory[keys[k]] = e
        return np.stack([self.memory[key] for key in keys]).astype(np.float32)


def run(built: list[BuiltCall], channel: str, vad: SileroModel, settings: Settings, encoder: Any,
        options: DiarizeOptions, parsed: dict[str, list[Any]], qa: QaEngine, min_margin: float,
        cache: dict[str, list[SpeechSegment]]) -> list[dict[str, Any]]:
    rows = []
    for b in built:
        key = f"{b.id}/{channel}"
        if key not in cache:
            # The 8 kHz copies are endpointed as the service endpoints an 8 kHz file (vad.band_options).
            cache[key] = segment_audio(channel_copy(b, channel), "mixed", vad, settings.vad(),
                                       8000 if channel.startswith("8k") else SR)
        t0 = time.perf_counter()
        result = diarize(cache[key], encoder, options)
        elapsed = time.perf_counter() - t0
        parts = [(p.segment, p.speaker) for p in result.segments]
        hyp = hypothesis(parts, b.reference.size)
        s = score(b.reference, hyp)
        row = {"call": b.id, "split": b.split, "channel": channel, "agent": b.agent, "customer": b.customer,
               "duration_s": round(b.mono.size / SR, 2), "diarize_s": round(elapsed, 3), **s}
        row.update(roles_and_qa(b, hyp, s["mapping"], parsed[b.id], qa, min_margin))
        row.update(short_turns(b, hyp, s["mapping"]))
        row["mapping"] = {str(k): v for k, v in s["mapping"].items()}
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ref = sum(r["duration_s"] for r in rows)
    return {
        "calls": len(rows),
        "on_right_speaker": round(float(np.mean([r["on_right_speaker"] for r in rows])), 4),
        "on_right_speaker_min": round(min(r["on_right_speaker"] for r in rows), 4),
        "heard_on_right_speaker": round(float(np.mean([r["heard_on_right_speaker"] for r in rows])), 4),
        "der": round(float(np.mean([r["der"] for r in rows])), 4),
        "miss": round(float(np.mean([r["miss"] for r in rows])), 4),
        "false_alarm": round(float(np.mean([r["false_alarm"] for r in rows])), 4),
        "confusion": round(float(np.mean([r["confusion"] for r in rows])), 4),
        "roles_right": round(sum(r["roles_right"] for r in rows) / len(rows), 4),
        "roles_abstained": round(sum(r["abstained"] for r in rows) / len(rows), 4),
        "roles_wrong": round(sum((not r["roles_right"]) and not r["abstained"] for r in rows) / len(rows), 4),
        "qa_agreement": round(sum(r["qa_same"] for r in rows) / max(1, sum(r["qa_total"] for r in rows)), 4),
        "rtf": round(sum(r["diarize_s"] for r in rows) / ref, 4),
        "short_turns_on_right_speaker": round(sum(r["short_right"] for r in rows)
                                              / max(1, sum(r["short_total"] for r in rows)), 4),
        "overlap_share": round(sum(r["overlap_frames"] for r in rows)
                               / max(1, sum(r["overlap_frames"] + r["single_frames"] for r in rows)), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--calls", type=Path, default=ROOT / "data" / "qa_calls.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "diarization.json")
    parser.add_argument("--grid", action="store_true", help="also search the options on the tune split")
    parser.add_argument("--limit", type=int, default=0, help="first N calls of each split (a quick look)")
    parser.add_argument("--same-speaker", type=float, help="the same-speaker threshold of the final run")
    parser.add_argument("--compare-same", default="0.85,0.9,0.95",
                        help="same-speaker thresholds compared on tune (comma-separated; empty: none)")
    args = parser.parse_args()
    if not args.eval.is_dir():
        print(f"no evaluation data at {args.eval}", file=sys.stderr)
        return 2
    settings = Settings()
    encoder = SpeakerEncoder.load(speaker_encoder_path(settings.home / "models" / "speaker-ge2e"))
    vad = SileroModel(silero_vad_path())
    calls = load_calls(args.calls, TextModel(settings.heads_dir / "text"))
    parsed = {c["id"]: c["parsed"] for c in calls}
    qa = QaEngine(QaRules.load(), embedder().encode)
    pools = speaker_pools(args.eval)
    built = build_calls(calls, pools)
    if args.limit:
        built = [b for split in ("tune", "holdout") for b in [x for x in built if x.split == split][: args.limit]]
    cache: dict[str, list[SpeechSegment]] = {}
    results: dict[str, Any] = {"machine": describe(), "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                               "speakers": {k: sorted(v) for k, v in pools.items()}}
    defaults = DiarizeOptions()
    margin = MIN_MARGIN
    if args.grid:
        grid = []
        tune = [b for b in built if b.split == "tune"]
        cached = CachedEncoder(encoder)
        for min_turn, prune, same in itertools.product((1.0, 1.5), (0.15, 0.25), (0.85, 0.9, 0.95, 1.01)):
            options = replace(defaults, min_turn_s=min_turn, prune=prune, same_speaker=same)
            rows = [r for channel in CHANNELS
                    for r in run(tune, channel, vad, settings, cached, options, parsed, qa, margin, cache)]
            grid.append({"min_turn_s": min_turn, "prune": prune, "same_speaker": same, **summarize(rows)})
            print(json.dumps(grid[-1]), flush=True)
        best = max(grid, key=lambda g: (g["on_right_speaker"] + g["roles_right"] + g["qa_agreement"] - g["roles_wrong"],
                                        -g["der"]))
        defaults = replace(defaults, min_turn_s=best["min_turn_s"], prune=best["prune"],
                           same_speaker=best["same_speaker"])
        margins = []
        for m in (0.5, 1.0, 2.0, 3.0, 4.0):
            rows = [r for channel in CHANNELS
                    for r in run(tune, channel, vad, settings, cached, defaults, parsed, qa, m, cache)]
            margins.append({"min_margin": m, **summarize(rows)})
            print(json.dumps(margins[-1]), flush=True)
        safe = [g for g in margins if g["roles_wrong"] == 0] or margins
        # Ties go to the shipped default (speechsvc.analysis.roles.MIN_MARGIN), then to the larger margin.
        margin = max(safe, key=lambda g: (g["roles_right"], g["min_margin"] == MIN_MARGIN, g["min_margin"]))[
            "min_margin"]
        results["grid_tune"] = grid
        results["role_margin_tune"] = margins
    if args.compare_same:
        compared = []
        tune = [b for b in built if b.split == "tune"]
        cached_encoder = CachedEncoder(encoder)
        for same in (float(v) for v in args.compare_same.split(",")):
            options = replace(defaults, same_speaker=same)
            rows = [r for channel in CHANNELS
                    for r in run(tune, channel, vad, settings, cached_encoder, options, parsed, qa, margin, cache)]
            compared.append({"same_speaker": same, **summarize(rows),
                             **{f"{ch}/{k}": summarize([r for r in rows if r["channel"] == ch])[k]
                                for ch in CHANNELS for k in ("on_right_speaker", "roles_right", "qa_agreement")}})
            print(json.dumps(compared[-1]), flush=True)
        results["same_speaker_tune"] = compared
        best = max(compared, key=lambda g: (g["on_right_speaker"] + g["roles_right"] + g["qa_agreement"]
                                            - g["roles_wrong"], g["same_speaker"] == defaults.same_speaker))
        results["same_speaker_tune_best"] = best["same_speaker"]
        if best["same_speaker"] != defaults.same_speaker:
            print(f"tune prefers same_speaker={best['same_speaker']} over the default {defaults.same_speaker}",
                  file=sys.stderr)
    if args.same_speaker is not None:
        defaults = replace(defaults, same_speaker=args.same_speaker)
    rows = []
    for channel in CHANNELS:
        rows += run(built, channel, vad, settings, encoder, defaults, parsed, qa, margin, cache)
    results["options"] = {k: getattr(defaults, k) for k in ("speakers", "window_s", "hop_s", "prune",
                                                            "same_speaker", "min_turn_s")}
    results["min_margin"] = margin
    results["summary"] = {f"{split}/{channel}": summarize([r for r in rows if r["split"] == split
                                                           and r["channel"] == channel])
                          for split in ("tune", "holdout") for channel in CHANNELS}
    results["calls"] = rows
    for r in rows:
        print(r["call"], r["channel"], r["agent"], r["customer"], round(r["on_right_speaker"], 3),
              round(r["miss"], 3), round(r["false_alarm"], 3), r["speakers_found"], r["roles_right"], r["qa_differ"])
    print(json.dumps(results["summary"], indent=2))
    if not args.limit:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
