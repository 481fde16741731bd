"""Diarization on real audio with the real speaker encoder: the weights converted from the resemblyzer wheel, and
a two-party mono call (an agent's prompts and a different real caller, composed from ../shared/eval) analysed
end to end: its segments land on the right speaker and the speakers get the right roles, as stereo legs."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from speechsvc.analysis import load_stages
from speechsvc.batch.recording import analyze_recording
from speechsvc.config import Settings
from speechsvc.models.speaker import ENCODER_KEYS, check_speaker_encoder, install_speaker_encoder
from speechsvc.runtime.engine import Engine
from speechsvc.speech.audio import decode_file
from speechsvc.speech.diarize import DiarizeOptions, diarize
from speechsvc.speech.speaker import SpeakerEncoder
from speechsvc.types import SpeechSegment
from tests.support.datasets import eval_path, fixture_clip

pytestmark = pytest.mark.model

SR = 16000
# (role, clip under eval/asr_en/audio, seconds to keep): agent = Asterisk's Allison, caller = CMU ARCTIC's aew.
TURNS = (
    ("agent", "asterisk_basic-pbx-ivr-main", 7.0),
    ("customer", "cmuarctic_aew_a0001", None),
    ("agent", "asterisk_pls-hold-while-try", None),
    ("customer", "cmuarctic_aew_a0002", None),
    ("agent", "asterisk_demo-thanks", None),
    ("customer", "cmuarctic_aew_a0003", None),
)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> SpeakerEncoder:
    """Converted here from the installed wheel (not the shared home), so the conversion itself is tested."""
    target = tmp_path_factory.mktemp("speaker")
    path = install_speaker_encoder(target)
    assert check_speaker_encoder(target) == [] and install_speaker_encoder(target) == path  # idempotent
    with np.load(path) as npz:
        assert set(npz.files) == set(ENCODER_KEYS) and npz["lstm.weight_ih_l0"].shape == (1024, 40)
    return SpeakerEncoder.load(path)


@pytest.fixture(scope="module")
def call() -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """The mono call and its turns (role, start_ms, end_ms), 0.5 s apart."""
    parts, turns, at = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for role, name, keep in TURNS:
        audio = decode_file(eval_path("asr_en", "audio", f"{name}.wav"))[0][0]
        audio = audio[: int(keep * SR)] if keep else audio
        audio = audio / max(1e-6, float(np.sqrt(np.mean(audio**2)))) * 0.05
        turns.append((role, at * 1000 // SR, (at + audio.size) * 1000 // SR))
        parts += [audio.astype(np.float32), np.zeros(SR // 2, np.float32)]
        at += audio.size + SR // 2
    return np.concatenate(parts)[None, :], turns


def test_embeddings_tell_speakers_apart(encoder: SpeakerEncoder) -> None:
    def clip(name: str) -> np.ndarray:
        return decode_file(eval_path("asr_en", "audio", f"{name}.wav"))[0][0][: int(1.5 * SR)]

    same_a = encoder.embed([clip("cmuarctic_aew_a0001"), clip("cmuarctic_aew_a0002")])
    other = encoder.embed([clip("asterisk_demo-thanks")])[0]
    assert np.allclose(np.linalg.norm(same_a, axis=1), 1.0, atol=1e-4)
    assert float(same_a[0] @ same_a[1]) > float(same_a[0] @ other) + 0.1


def test_mono_call_reads_like_the_stereo_one(recognizer, vad_model, encoder, call) -> None:  # type: ignore[no-untyped-def]
    audio, turns = call
    settings = Settings(emotion=False, assist=False)
    engine = Engine(settings, recognizer, vad_model, load_stages(settings, only=("qa",)), encoder)

    async def main():  # type: ignore[no-untyped-def]
        await engine.start()
        try:
            return await analyze_recording(engine, audio, "call.wav", "en")
        finally:
            await engine.stop()

    report = asyncio.run(main())
    assert report.legs == ("customer", "agent")
    assert report.speakers is not None and sorted(report.speakers["roles"].values()) == ["agent", "customer"]
    assert report.speakers["role_confidence"] > 0.5
    right = total = 0
    for s in report.segments:
        assert s.speaker in report.speakers["roles"] and report.speakers["roles"][s.speaker] == s.leg
        for role, start, end in turns:
            overlap = max(0, min(end, s.end_ms) - max(start, s.start_ms))
            total += overlap
            right += overlap if role == s.leg else 0
    assert total > 0.8 * sum(end - start for _, start, end in turns)  # the speech was heard
    assert right / total >= 0.9, [(s.leg, s.start_ms, s.end_ms, s.text) for s in report.segments]
    assert any("thank you for calling" in s.text.lower() for s in report.segments if s.leg == "agent")
    # QA judges the agent leg as on a stereo call: agent-only rules are decided, not "not applicable" for all.
    qa = report.sections.get("qa")
    assert qa is not None and any(o["status"] != "not_applicable" for o in qa["outcomes"])


def test_stereo_keeps_its_channels(recognizer, vad_model, encoder, call) -> None:  # type: ignore[no-untyped-def]
    audio, _ = call
    stereo = np.concatenate([audio, np.zeros_like(audio)])
    settings = Settings(emotion=False, assist=False, qa=False)
    engine = Engine(settings, recognizer, vad_model, [], encoder)

    async def main():  # type: ignore[no-untyped-def]
        await engine.start()
        try:
            return await analyze_recording(engine, stereo[:, : 12 * SR], "stereo.wav", "en")
        finally:
            await engine.stop()

    report = asyncio.run(main())
    assert report.speakers is None and all(s.speaker is None and s.leg == "customer" for s in report.segments)


def _clip(name: str) -> np.ndarray:
    audio = decode_file(fixture_clip(name).path)[0][0]
    return np.asarray(audio / max(1e-6, float(np.sqrt(np.mean(audio**2)))) * 0.05, np.float32)


def _seg(index: int, start_ms: int, audio: np.ndarray) -> SpeechSegment:
    return SpeechSegment("mixed", index, start_ms, start_ms + audio.size * 1000 // SR, audio)


def test_a_short_turn_inside_a_segment_gets_its_own_speaker(encoder: SpeakerEncoder) -> None:
    """Committed audio: Allison's prompts and a second (synthetic Mandarin) voice; in the middle segment the
    second voice answers for 1.2 s between two stretches of Allison with no pause (shorter than a window)."""
    allison, other = _clip("asterisk_queue-periodic-announce"), _clip("espeak_zh_network")
    short = other[SR // 2 : SR // 2 + int(1.2 * SR)]
    middle = np.concatenate([allison[: 3 * SR], short, allison[3 * SR : 6 * SR]])
    segments = [_seg(0, 0, _clip("asterisk_agent-user")), _seg(1, 6000, middle),
                _seg(2, 14000, _clip("espeak_zh_bill"))]
    result = diarize(segments, encoder, DiarizeOptions())
    assert result.speakers == 2
    parts = [(p.segment.start_ms, p.segment.end_ms, p.speaker) for p in result.segments]
    allison_speaker, other_speaker = parts[0][2], parts[-1][2]
    assert allison_speaker != other_speaker
    inner = [p for p in parts if 6000 <= p[0] and p[1] <= 13300 and p[2] == other_speaker]
    assert len(inner) == 1, parts  # the short answer is cut out of the middle segment, near where it is
    assert abs(inner[0][0] - 9000) <= 500 and abs(inner[0][1] - 10200) <= 500, parts


def _eval_clip(name: str, seconds: float | None = None) -> np.ndarray:
    audio = decode_file(eval_path("asr_en", "audio", f"{name}.wav"))[0][0]
    audio = audio[: int(seconds * SR)] if seconds else audio
    return np.asarray(audio / max(1e-6, float(np.sqrt(np.mean(audio**2)))) * 0.05, np.float32)


def _talked_over(overlap_s: float) -> tuple[list[SpeechSegment], int]:
    """Two real voices (CMU ARCTIC's aew, Asterisk's Allison) in turns, and one segment where Allison comes in
    ``overlap_s`` before aew stops (no pause); returns the segments and where aew stops in that segment (ms)."""
    caller, agent = _eval_clip("cmuarctic_aew_a0001"), _eval_clip("asterisk_basic-pbx-ivr-main", 12.0)
    into = caller.size - int(overlap_s * SR)
    mixed = np.zeros(into + int(4.0 * SR), np.float32)
    mixed[: caller.size] += 0.7 * caller  # the one talked over is quieter, as a far-end caller
    mixed[into:] += agent[: mixed.size - into]
    segments = [_seg(0, 0, agent[4 * SR : 8 * SR]), _seg(1, 4500, _eval_clip("cmuarctic_aew_a0002")),
                _seg(2, 9000, mixed), _seg(3, 18000, _eval_clip("cmuarctic_aew_a0003")),
                _seg(4, 22000, agent[8 * SR :])]
    return segments, 9000 + caller.size * 1000 // SR


def test_overlap_spans_on_real_voices_stay_inside_their_segments(encoder: SpeakerEncoder) -> None:
    """Overlap detection on (it is off by default: not reliable on the tune split, docs/results.md): whatever it
    finds on two real voices, the audio is still cut once per change and a part's time only widens over the
    other speaker's neighbouring part, inside its own segment."""
    segments, _ = _talked_over(1.5)
    assert diarize(segments, encoder, DiarizeOptions()).spans == ()  # off by default
    result = diarize(segments, encoder, DiarizeOptions(overlap_presence=0.3))
    assert result.speakers == 2 and len(result.spans) == len(result.segments)
    parts = [p.segment for p in result.segments]
    for k, (p, (start, end)) in enumerate(zip(parts, result.spans, strict=True)):
        assert start <= p.start_ms and end >= p.end_ms and p.audio.size == pytest.approx(
            (p.end_ms - p.start_ms) * 16, abs=16)
        home = next(s for s in segments if s.start_ms <= p.start_ms and p.end_ms <= s.end_ms)
        assert home.start_ms <= start and end <= home.end_ms
        if start < p.start_ms:  # widened back over the part before, another speaker's
            assert result.segments[k - 1].speaker != result.segments[k].speaker and start >= parts[k - 1].start_ms
        if end > p.end_ms:
            assert result.segments[k + 1].speaker != result.segments[k].speaker and end <= parts[k + 1].end_ms
