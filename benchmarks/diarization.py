"""Diarization and roles of mono recordings, on two-party calls assembled from real speakers of ../shared/eval.

    python benchmarks/diarization.py [--eval ../shared/eval] [--out benchmarks/results/diarization.json] [--grid]
        [--compare-overlap P:T:M,...] [--channels 16k,8k_mulaw] [--tune-only]

How it is taken:
- Speakers (real recordings, each speaker's utterances trimmed of leading/trailing silence and joined into one
  stream at -26 dBFS). Split by source: **tune** = EmoDB (10 German speakers) and CASIA (3 Mandarin speakers),
  **holdout** = the AISHELL sample's S0150 and S0252 (from eval/long), Asterisk's Allison (eval/asr_en), the two
  IBM talks and the MagicData monologue (eval/long): 6 speakers never looked at while choosing anything.
- Calls: the 44 scripted service calls of data/qa_calls.jsonl give each call's turns (who speaks when, overlaps
  and interruptions included) and its words. Tune uses the 15 bank calls, in ``--tune-rounds`` rounds (default
  4: 60 calls) each with other pairs of tune speakers; holdout the 29 telecom and e-commerce calls (once, the
  same calls and pairs as before the rounds existed). **One voice**: every speaker also fills both roles of one
  script alone (13 tune, 6 holdout recordings), to measure how often one voice stays one speaker. Each turn is filled
  with the next stretch of its speaker's stream (agent and customer are two different real speakers, a different pair
  per call; the customer 0-6 dB quieter); the stereo call has them on two channels,
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
- Merged voices: where the clustering merged two voices for sounding alike, the split before the merge is
  scored instead when the script's text on it shows an agent and a customer side (as
  :func:`speechsvc.batch.speakers.label_roles` does with the ASR text; ``kept_apart`` in a call's row).
- The same-speaker threshold is compared on the tune split (``--compare-same``, embeddings cached, with and
  without that rule) by the whole metric set (speech on the right speaker + calls with the right roles + QA
  agreement, over all channels); the shipped default is the winner there. ``--compare-fine`` compares short
  scoring windows and change holds on tune (whole metric set plus short turns); the final run takes tune's
  choice. ``--grid`` also searches window options on the tune split (slow).
- Overlapped speech (:mod:`speechsvc.speech.overlap`): ``overlap_precision`` = frames two found speakers' widened
  parts both cover that lie inside a scripted overlap (both parties' turns running) / all such found frames;
  ``overlap_recall`` = frames where both voices sound (reference == 3) that were found / all of them. Overtalk:
  mono = the agent leg's widened parts over the customer leg's (by the roles' legs), stereo = the scripted turns'
  overlap. ``interruption_*``: the default pack's ``no_interrupting`` rule on the stereo call and on the mono call
  whose utterances take their times from the diarized parts of their speaker (widened where overlap was found),
  as the service times them; ``timed_qa_agreement``: every rule so. ``--compare-overlap`` compares detection
  settings on tune (``presence:trim_s:min_s``); ``--channels`` and ``--tune-only`` keep a comparison short.
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
from collections.abc import Mapping
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
from speechsvc.analysis.roles import MIN_MARGIN, Roles, SpeakerText, assign_roles, two_sides  # noqa: E402
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
from speechsvc.types import Float32Array, Leg, SpeechSegment  # noqa: E402

SR = 16000
FRAME = 160  # 10 ms
CHANNELS = ("16k", "8k_mulaw", "8k_brickwall")
SPLITS = ("tune", "holdout", "one_voice/tune", "one_voice/holdout")
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


def build_calls(calls: list[dict[str, Any]], pools: dict[str, dict[str, Float32Array]], tune_rounds: int = 1,
                one_voice: bool = False) -> list[BuiltCall]:
    """The two-party calls of each split. ``tune_rounds`` > 1 adds rounds of the tune scripts with more tune
    speaker pairs (``bank-01~2``: round 2); ``one_voice`` adds each speaker alone in both roles of a script
    (split ``one_voice/<split>``). The extras draw from their own generator, so the base calls stay the same."""
    out = []
    rng = np.random.default_rng(29)
    more = np.random.default_rng(30)
    extra: list[tuple[dict[str, Any], str, str, str, str]] = []
    for split in ("tune", "holdout"):
        chosen = [c for c in calls if (c["domain"] == "bank") == (split == "tune")]
        speakers = sorted(pools[split])
        pairs = [p for p in itertools.permutations(speakers, 2)]
        order = rng.permutation(len(pairs))
        for n, call in enumerate(chosen):
            agent, customer = pairs[int(order[n % len(pairs)])]
            out.append(_build_one(call, split, agent, customer, pools[split], rng, ""))
        if split == "tune":
            extra += [(call, split, *pairs[int(order[(r * len(chosen) + n) % len(pairs)])], f"~{r + 1}")
                      for r in range(1, tune_rounds) for n, call in enumerate(chosen)]
        if one_voice:
            extra += [(chosen[n % len(chosen)], f"one_voice/{split}", spk, spk, f"~{spk}")
                      for n, spk in enumerate(speakers)]
    for call, split, agent, customer, suffix in extra:
        out.append(_build_one(call, split, agent, customer, pools[split.split("/")[-1]], more, suffix))
    return out


def _build_one(call: dict[str, Any], split: str, agent: str, customer: str, pool: dict[str, Float32Array],
               rng: np.random.Generator, suffix: str) -> BuiltCall:
    """One call of ``call``'s turns, agent and customer filled from their streams (see the module docstring)."""
    duration = call["end"]["duration_ms"]
    stereo = np.zeros((2, duration * SR // 1000 + SR), np.float32)
    reference = np.zeros(stereo.shape[1] // FRAME, np.int8)
    masks = {spk: _voiced(pool[spk]) for spk in (agent, customer)}
    cursor = {agent: int(rng.integers(0, pool[agent].size)),
              customer: int(rng.integers(0, pool[customer].size))}
    gain = {agent: 1.0, customer: float(10 ** (-rng.uniform(0, 6) / 20))}
    for u in call["utterances"]:
        spk = agent if u["leg"] == "agent" else customer
        stream = pool[spk]
        a, b = u["start_ms"] * SR // 1000, u["end_ms"] * SR // 1000
        cursor_before = cursor[spk]
        take = np.take(stream, np.arange(cursor[spk], cursor[spk] + b - a), mode="wrap")
        cursor[spk] = (cursor[spk] + b - a) % stream.size
        stereo[0 if spk == customer else 1, a:b] += take * gain[spk]
        frames = np.arange(cursor_before // FRAME, cursor_before // FRAME + (b - a) // FRAME) % masks[spk].size
        voiced = np.flatnonzero(masks[spk][frames]) + a // FRAME
        reference[voiced[voiced < reference.size]] |= 1 if spk == agent else 2
    mono = np.clip(stereo.sum(axis=0), -1, 1).astype(np.float32)
    return BuiltCall(call["id"] + suffix, split, agent, customer, mono, reference, call)


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
OVERLAP_KEYS = ("on_right_speaker", "roles_right", "qa_agreement", "overlap_precision", "overlap_recall",
                "overlap_found_s", "overlap_false_s", "overtalk_mono_s", "overtalk_stereo_s", "overtalk_abs_err_s",
                "overtalk_calls_mono", "overtalk_calls_both", "interruption_agreement", "interruption_stereo_fired",
                "interruption_mono_fired_too", "interruption_mono_only", "timed_qa_agreement")
INTERRUPTION_RULE = "no_interrupting"  # the default pack's rule on the interruption op


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


def _cover(spans: list[tuple[int, int]], frames: int) -> np.ndarray:
    out = np.zeros(frames, bool)
    for start, end in spans:
        out[start // 10 : end // 10] = True
    return out


def _scripted(built: BuiltCall, leg: str) -> np.ndarray:
    return _cover([(u["start_ms"], u["end_ms"]) for u in built.call["utterances"] if u["leg"] == leg],
                  built.reference.size)


def overlap_scores(built: BuiltCall, spans: list[tuple[int, int]], labels: list[int],
                   legs: Mapping[int, str]) -> dict[str, Any]:
    """Overlapped speech found (frames two found speakers' widened parts both cover) against the script:
    ``ovl_hit`` = found frames inside a scripted overlap (both parties' turns running), ``ovl_found`` = found
    frames, ``ovl_heard`` = reference frames with both voices sounding (reference == 3) that were found,
    ``ovl_ref`` = all such frames; overtalk (seconds of the agent leg's time over the customer leg's) of the mono
    call by the roles' legs, and of the stereo call by its scripted turns."""
    frames = built.reference.size
    covered = [_cover([sp for sp, lab in zip(spans, labels, strict=True) if lab == spk], frames)
               for spk in sorted(set(labels))]
    found = np.sum(covered, axis=0) >= 2 if len(covered) >= 2 else np.zeros(frames, bool)
    scripted = _scripted(built, "agent") & _scripted(built, "customer")
    both = built.reference == 3
    per_leg = {leg: _cover([sp for sp, lab in zip(spans, labels, strict=True) if legs.get(lab) == leg], frames)
               for leg in ("agent", "customer")}
    return {"ovl_found": int(found.sum()), "ovl_hit": int((found & scripted).sum()),
            "ovl_ref": int(both.sum()), "ovl_heard": int((found & both).sum()),
            "overtalk_mono_s": round(float((per_leg["agent"] & per_leg["customer"]).sum()) / 100, 2),
            "overtalk_stereo_s": round(float(scripted.sum()) / 100, 2)}


def timed_qa(built: BuiltCall, parts: list[tuple[int, int]], spans: list[tuple[int, int]], labels: list[int],
             owner: list[int], roles: Roles, parsed: list[Any], qa: QaEngine) -> dict[str, Any]:
    """QA of the mono call with each utterance's times taken from the diarized parts of its speaker (the
    widened span of every part of that speaker that meets the scripted utterance), as the service times them;
    compared with the stereo call: ``interrupt_same`` for the interruption rule, ``timed_qa_same`` for all."""
    counters: dict[str, int] = defaultdict(int)
    mono_utts = []
    for u, spk in zip(parsed, owner, strict=True):
        if spk < 0:
            continue
        near = [sp for part, sp, lab in zip(parts, spans, labels, strict=True)
                if lab == spk and part[0] < u.end_ms and part[1] > u.start_ms]
        start, end = (min(a for a, _ in near), max(b for _, b in near)) if near else (u.start_ms, u.end_ms)
        leg = roles.leg(spk)
        mono_utts.append(replace(u, leg=leg, index=counters[leg], start_ms=start, end_ms=end))
        counters[leg] += 1
    legs: tuple[Leg, ...] = ("customer", "agent") if roles.known else ("mixed",)
    mono = qa.score_call(sorted(mono_utts, key=lambda x: x.start_ms), built.call["call_end"], legs)
    stereo = qa.score_call(parsed, built.call["call_end"], ("customer", "agent"))
    outcomes = [(r.rule, r.status, mono.outcome(r.rule).status) for r in stereo.outcomes]
    rule = [(a, b) for r, a, b in outcomes if r == INTERRUPTION_RULE]
    return {"timed_qa_same": sum(a == b for _, a, b in outcomes), "timed_qa_total": len(outcomes),
            "interrupt_stereo": rule[0][0] if rule else None, "interrupt_mono": rule[0][1] if rule else None,
            "interrupt_same": bool(rule and rule[0][0] == rule[0][1])}


def script_roles(built: BuiltCall, hyp: np.ndarray, min_margin: float) -> tuple[list[int], Roles]:
    """Each scripted utterance's speaker (the one found over most of its span; -1: none) and the roles their
    texts give."""
    texts, owner = [], []
    for raw in built.call["utterances"]:
        span = hyp[raw["start_ms"] // 10 : raw["end_ms"] // 10]
        span = span[span >= 0]
        spk = int(np.bincount(span).argmax()) if span.size else -1
        owner.append(spk)
        if spk >= 0:
            texts.append(SpeakerText(spk, raw["start_ms"], raw["text"]))
    n = max([s for s in owner if s >= 0], default=-1) + 1
    return owner, assign_roles(texts, n, min_margin=min_margin)


def roles_and_qa(built: BuiltCall, hyp: np.ndarray, mapping: dict[int, int], parsed: list[Any],
                 qa: QaEngine, min_margin: float) -> dict[str, Any]:
    owner, roles = script_roles(built, hyp, min_margin)
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
    legs: tuple[Leg, ...] = ("customer", "agent") if roles.known else ("mixed",)
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
        cache: dict[str, list[SpeechSegment]], two_sides_rule: bool = True) -> list[dict[str, Any]]:
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
        hyp = hypothesis([(p.segment, p.speaker) for p in result.segments], b.reference.size)
        kept_apart = False
        if result.unmerged is not None and two_sides_rule:
            # As label_roles does: voices merged for sounding alike stay apart when the text shows both roles.
            alt = hypothesis([(p.segment, spk) for p, spk in zip(result.segments, result.unmerged, strict=True)],
                             b.reference.size)
            if two_sides(script_roles(b, alt, min_margin)[1]):
                hyp, kept_apart = alt, True
        s = score(b.reference, hyp)
        row = {"call": b.id, "split": b.split, "channel": channel, "agent": b.agent, "customer": b.customer,
               "duration_s": round(b.mono.size / SR, 2), "diarize_s": round(elapsed, 3), **s,
               "merged": result.unmerged is not None, "kept_apart": kept_apart}
        row.update(roles_and_qa(b, hyp, s["mapping"], parsed[b.call["id"]], qa, min_margin))
        row.update(short_turns(b, hyp, s["mapping"]))
        labels = list(result.unmerged) if kept_apart and result.unmerged is not None else [
            p.speaker for p in result.segments]
        parts = [(p.segment.start_ms, p.segment.end_ms) for p in result.segments]
        spans = list(result.spans) or parts
        owner, roles = script_roles(b, hyp, min_margin)
        legs = {spk: roles.leg(spk) for spk in set(labels)}
        row.update(overlap_scores(b, spans, labels, legs))
        row.update(timed_qa(b, parts, spans, labels, owner, roles, parsed[b.call["id"]], qa))
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
        **overlap_summary(rows),
    }


def overlap_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Overlap detection by duration (precision against the scripted overlaps, recall of the frames where both
    voices sound), overtalk mono against stereo, and the interruption rule's agreement."""
    found, hit = sum(r["ovl_found"] for r in rows), sum(r["ovl_hit"] for r in rows)
    ref, heard = sum(r["ovl_ref"] for r in rows), sum(r["ovl_heard"] for r in rows)
    mono = np.array([r["overtalk_mono_s"] for r in rows])
    stereo = np.array([r["overtalk_stereo_s"] for r in rows])
    fired = [r for r in rows if r["interrupt_stereo"] == "fail"]
    return {"overlap_precision": round(hit / found, 4) if found else None,
            "overlap_recall": round(heard / ref, 4) if ref else None,
            "overlap_found_s": round(found / 100, 1), "overlap_false_s": round((found - hit) / 100, 1),
            "overtalk_mono_s": round(float(mono.sum()), 1), "overtalk_stereo_s": round(float(stereo.sum()), 1),
            "overtalk_abs_err_s": round(float(np.mean(np.abs(mono - stereo))), 3),
            "overtalk_calls_both": int(np.sum((mono > 0) & (stereo > 0))),
            "overtalk_calls_stereo": int(np.sum(stereo > 0)), "overtalk_calls_mono": int(np.sum(mono > 0)),
            "interruption_agreement": round(sum(r["interrupt_same"] for r in rows) / len(rows), 4),
            "interruption_stereo_fired": len(fired),
            "interruption_mono_fired_too": sum(r["interrupt_mono"] == "fail" for r in fired),
            "interruption_mono_only": sum(r["interrupt_mono"] == "fail" and r["interrupt_stereo"] != "fail"
                                          for r in rows),
            "timed_qa_agreement": round(sum(r["timed_qa_same"] for r in rows)
                                        / max(1, sum(r["timed_qa_total"] for r in rows)), 4)}


def one_voice_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One speaker in both roles: how often the recording stays one speaker, by the voices alone
    (``kept_one_by_voice``) and after the two-sides rule (``kept_one``), and the share of its speech on its main
    speaker."""
    return {"calls": len(rows),
            "kept_one_by_voice": round(sum(r["merged"] or r["speakers_found"] <= 1 for r in rows) / max(1, len(rows)),
                                       4),
            "kept_one": round(sum(r["speakers_found"] <= 1 for r in rows) / max(1, len(rows)), 4),
            "on_main_speaker": round(float(np.mean([r["on_right_speaker"] for r in rows])) if rows else 0.0, 4)}


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
    parser.add_argument("--compare-fine", default="0:1.5,0.75:1.5,0.75:1.0,0.75:0.5",
                        help="fine_window_s:min_turn_s pairs compared on tune (comma-separated; empty: none)")
    parser.add_argument("--compare-overlap", default="",
                        help="overlap_presence:overlap_trim_s:overlap_min_s triples compared on tune "
                             "(comma-separated; empty: none; presence 0 is off)")
    parser.add_argument("--channels", default=",".join(CHANNELS), help="channels to run (comma-separated)")
    parser.add_argument("--tune-only", action="store_true", help="only the comparisons on tune (no final run)")
    parser.add_argument("--tune-rounds", type=int, default=4,
                        help="rounds of the tune scripts, each with other tune speaker pairs (15 calls a round)")
    args = parser.parse_args()
    channels = tuple(c for c in args.channels.split(",") if c)
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
    built = build_calls(calls, pools, args.tune_rounds, one_voice=True)
    if args.limit:
        built = [b for split in SPLITS for b in [x for x in built if x.split == split][: args.limit]]
    tune = [b for b in built if b.split == "tune"]
    one_tune = [b for b in built if b.split == "one_voice/tune"]
    cache: dict[str, list[SpeechSegment]] = {}
    results: dict[str, Any] = {"machine": describe(), "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                               "speakers": {k: sorted(v) for k, v in pools.items()}}
    defaults = DiarizeOptions()
    margin = MIN_MARGIN
    if args.grid:
        grid = []
        cached = CachedEncoder(encoder)
        for min_turn, prune, same in itertools.product((1.0, 1.5), (0.15, 0.25), (0.85, 0.9, 0.95, 1.01)):
            options = replace(defaults, min_turn_s=min_turn, prune=prune, same_speaker=same)
            rows = [r for channel in channels
                    for r in run(tune, channel, vad, settings, cached, options, parsed, qa, margin, cache)]
            grid.append({"min_turn_s": min_turn, "prune": prune, "same_speaker": same, **summarize(rows)})
            print(json.dumps(grid[-1]), flush=True)
        best = max(grid, key=lambda g: (g["on_right_speaker"] + g["roles_right"] + g["qa_agreement"] - g["roles_wrong"],
                                        -g["der"]))
        defaults = replace(defaults, min_turn_s=best["min_turn_s"], prune=best["prune"],
                           same_speaker=best["same_speaker"])
        margins = []
        for m in (0.5, 1.0, 2.0, 3.0, 4.0):
            rows = [r for channel in channels
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
        cached_encoder = CachedEncoder(encoder)
        for same in (float(v) for v in args.compare_same.split(",")):
            options = replace(defaults, same_speaker=same)
            for rule in (False, True):
                rows = [r for channel in channels for r in run(tune, channel, vad, settings, cached_encoder, options,
                                                               parsed, qa, margin, cache, rule)]
                alone = [r for channel in channels for r in run(one_tune, channel, vad, settings, cached_encoder,
                                                                options, parsed, qa, margin, cache, rule)]
                compared.append({"same_speaker": same, "two_sides_rule": rule, **summarize(rows),
                                 **{f"{ch}/{k}": summarize([r for r in rows if r["channel"] == ch])[k]
                                    for ch in channels for k in ("on_right_speaker", "roles_right", "qa_agreement")},
                                 "one_voice_kept_one": one_voice_summary(alone)["kept_one"]})
                print(json.dumps(compared[-1]), flush=True)
        results["same_speaker_tune"] = compared
        best = max((g for g in compared if g["two_sides_rule"]),
                   key=lambda g: (g["on_right_speaker"] + g["roles_right"] + g["qa_agreement"] - g["roles_wrong"],
                                  g["same_speaker"] == defaults.same_speaker))
        results["same_speaker_tune_best"] = best["same_speaker"]
        if best["same_speaker"] != defaults.same_speaker:
            print(f"tune prefers same_speaker={best['same_speaker']} over the default {defaults.same_speaker}",
                  file=sys.stderr)
    if args.compare_fine:
        fine_rows = []
        cached_encoder = CachedEncoder(encoder)
        for pair in args.compare_fine.split(","):
            fine, turn = (float(v) for v in pair.split(":"))
            options = replace(defaults, fine_window_s=fine, min_turn_s=turn)
            rows = [r for channel in channels
                    for r in run(tune, channel, vad, settings, cached_encoder, options, parsed, qa, margin, cache)]
            fine_rows.append({"fine_window_s": fine, "min_turn_s": turn, **summarize(rows),
                              **{f"{ch}/{k}": summarize([r for r in rows if r["channel"] == ch])[k]
                                 for ch in channels for k in ("on_right_speaker", "short_turns_on_right_speaker",
                                                              "roles_right")}})
            print(json.dumps(fine_rows[-1]), flush=True)
        results["fine_windows_tune"] = fine_rows
        # The final run takes tune's choice (whole metric set plus short turns; ties to the shipped default).
        chosen = max(fine_rows, key=lambda g: (g["on_right_speaker"] + g["short_turns_on_right_speaker"]
                                               + g["roles_right"] + g["qa_agreement"] - g["roles_wrong"],
                                               (g["fine_window_s"], g["min_turn_s"])
                                               == (defaults.fine_window_s, defaults.min_turn_s)))
        results["fine_windows_tune_best"] = {"fine_window_s": chosen["fine_window_s"],
                                             "min_turn_s": chosen["min_turn_s"]}
        defaults = replace(defaults, fine_window_s=chosen["fine_window_s"], min_turn_s=chosen["min_turn_s"])
    if args.compare_overlap:
        overlap_rows = []
        cached_encoder = CachedEncoder(encoder)
        for triple in args.compare_overlap.split(","):
            presence, trim, shortest = (float(v) for v in triple.split(":"))
            options = replace(defaults, overlap_presence=presence, overlap_trim_s=trim, overlap_min_s=shortest)
            rows = [r for channel in channels
                    for r in run(tune, channel, vad, settings, cached_encoder, options, parsed, qa, margin, cache)]
            overlap_rows.append({"overlap_presence": presence, "overlap_trim_s": trim, "overlap_min_s": shortest,
                                 **{f"{ch}/{k}": v for ch in channels
                                    for k, v in summarize([r for r in rows if r["channel"] == ch]).items()
                                    if k in OVERLAP_KEYS}})
            print(json.dumps(overlap_rows[-1]), flush=True)
        results["overlap_tune"] = overlap_rows
    if args.tune_only:
        print(json.dumps({k: v for k, v in results.items() if k.endswith("_tune")}, indent=1))
        return 0
    if args.same_speaker is not None:
        defaults = replace(defaults, same_speaker=args.same_speaker)
    rows = []
    for channel in channels:
        rows += run(built, channel, vad, settings, encoder, defaults, parsed, qa, margin, cache)
    results["options"] = {k: getattr(defaults, k) for k in ("speakers", "window_s", "hop_s", "prune",
                                                            "same_speaker", "min_turn_s", "fine_window_s",
                                                            "fine_hop_s", "overlap_presence", "overlap_trim_s",
                                                            "overlap_min_s")}
    results["min_margin"] = margin
    results["summary"] = {f"{split}/{channel}": summarize([r for r in rows if r["split"] == split
                                                           and r["channel"] == channel])
                          for split in ("tune", "holdout") for channel in channels}
    results["one_voice"] = {f"{split}/{channel}": one_voice_summary([r for r in rows if r["split"] == split
                                                                     and r["channel"] == channel])
                            for split in ("one_voice/tune", "one_voice/holdout") for channel in channels}
    if args.out.exists():
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        results["holdout_previous"] = previous.get("holdout_previous") or {
            "note": "the holdout rows before the two-sides rule and fine windows (issue 29, third pass)",
            "options": previous.get("options"),
            **{k: v for k, v in previous.get("summary", {}).items() if k.startswith("holdout/")}}
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
