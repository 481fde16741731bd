"""VAD: the state machine with scripted probabilities (unit), then real speech and real noise."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from speechsvc.config import Settings
from speechsvc.speech.audio import decode_file
from speechsvc.speech.vad import (
    WINDOW,
    SileroModel,
    SpeechEnded,
    SpeechStarted,
    VadState,
    VadStream,
    band_options,
    live_options,
)
from tests.support.datasets import eval_path, fixture_clip


class ScriptedModel:
    """Stands in for Silero: returns the next scripted probability per 32 ms window."""

    def __init__(self, probs: list[float]) -> None:
        self.script = iter(probs)

    def new_state(self) -> None:
        return None

    def prob(self, window: np.ndarray, state: object) -> float:
        return next(self.script, 0.0)

    def probs(self, windows: np.ndarray, state: object) -> np.ndarray:
        return np.array([self.prob(w, state) for w in windows], np.float32)


def run(probs: list[float], **options: object) -> tuple[list[object], VadStream]:
    opts = replace(Settings().vad(), webrtc_mode=None, **options)
    stream = VadStream(ScriptedModel(probs), opts, "customer")  # type: ignore[arg-type]
    events = stream.feed(np.zeros(len(probs) * WINDOW, np.float32))
    return events, stream


def test_the_webrtc_gate_guards_wideband_legs_only() -> None:
    gated = Settings(vad_webrtc_mode=1).vad()
    assert live_options(gated, 16000).webrtc_mode == 1
    assert live_options(gated, 48000).webrtc_mode == 1
    assert live_options(gated, 8000).webrtc_mode is None  # phone band: Silero on every window
    assert live_options(Settings(vad_webrtc_mode=None).vad(), 16000).webrtc_mode is None


def test_narrowband_sources_take_the_narrowband_threshold() -> None:
    options = Settings(vad_threshold=0.5, vad_hysteresis=0.15, vad_narrowband_threshold=0.35).vad()
    for rate in (8000, 6000):  # phone band: the lower threshold, the pause threshold as far below it
        narrow = band_options(options, rate)
        assert (narrow.threshold, round(narrow.neg_threshold, 6)) == (0.35, 0.2)
        assert live_options(options, rate).threshold == 0.35  # live phone legs decide the same way
    for rate in (11025, 16000, 48000):
        assert band_options(options, rate) == options
    unset = Settings(vad_narrowband_threshold=None).vad()
    assert band_options(unset, 8000) == unset
    low = band_options(Settings(vad_threshold=0.5, vad_hysteresis=0.45, vad_narrowband_threshold=0.04).vad(), 8000)
    assert low.neg_threshold == 0.01


def test_a_lower_threshold_hears_speech_the_wideband_one_misses() -> None:
    probs = [0.45] * 20 + [0.1] * 30  # phone-band speech: Silero less sure
    assert not run(probs)[0]
    events, _ = run(probs, threshold=0.35, neg_threshold=0.2)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_utterance_start_and_end_times() -> None:
    # 10 windows quiet, 20 speech (640 ms), 20 quiet (640 ms >= 500 ms pause)
    events, stream = run([0.0] * 10 + [0.9] * 20 + [0.0] * 20)
    assert isinstance(events[0], SpeechStarted)
    end = events[1]
    assert isinstance(end, SpeechEnded)
    seg = end.segment
    assert seg.start_ms == (10 - 6) * 32  # 200 ms pre-roll = 6 windows
    assert seg.end_ms <= (30 + 7) * 32 and seg.end_ms >= 30 * 32
    assert seg.audio.size == (seg.end_ms - seg.start_ms) * 16
    assert stream.state is VadState.QUIET


def test_short_blip_is_not_an_utterance() -> None:
    events, _ = run([0.0] * 5 + [0.9] * 3 + [0.0] * 30)  # 96 ms < 250 ms
    assert events == []


def test_short_pause_does_not_split() -> None:
    events, _ = run([0.9] * 20 + [0.0] * 8 + [0.9] * 20 + [0.0] * 20)  # 256 ms pause < 500 ms
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 1


def test_long_speech_is_cut_at_max_length() -> None:
    events, stream = run([0.9] * 200, max_segment_s=2.0)  # 6.4 s of speech
    ends = [e.segment for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 3 and all(s.forced for s in ends)
    assert all(s.end_ms - s.start_ms <= 2000 + 32 for s in ends)
    assert [s.index for s in ends] == [0, 1, 2]
    rest = stream.flush()
    assert len(rest) == 1 and isinstance(rest[0], SpeechEnded)


def test_forced_cut_falls_in_the_pause_and_loses_no_audio() -> None:
    # 2 s limit = 63 windows; a dip (a breath between words) at window 45 is inside the search range.
    probs = [0.9] * 45 + [0.4] + [0.9] * 60
    events, stream = run(probs, max_segment_s=2.0, cut_search_ms=1500)
    first = next(e.segment for e in events if isinstance(e, SpeechEnded))
    assert first.forced and first.end_ms == 46 * 32
    assert [e.start_ms for e in events if isinstance(e, SpeechStarted)][1] == 46 * 32
    rest = [e.segment for e in events[2:] + stream.flush() if isinstance(e, SpeechEnded)]
    assert first.audio.size + sum(s.audio.size for s in rest) == len(probs) * WINDOW


def test_forced_cut_without_search_cuts_at_the_limit() -> None:
    events, _ = run([0.9] * 45 + [0.4] + [0.9] * 60, max_segment_s=2.0, cut_search_ms=0)
    first = next(e.segment for e in events if isinstance(e, SpeechEnded))
    assert first.end_ms == 63 * 32


def test_flush_closes_open_utterance_and_current_reports_it() -> None:
    events, stream = run([0.9] * 20)
    current = stream.current()
    assert current is not None and current[0] == 0
    assert [type(e) for e in events] == [SpeechStarted]
    ends = stream.flush()
    assert len(ends) == 1 and stream.current() is None


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    from speechsvc.models import silero_vad_path

    return SileroModel(silero_vad_path())


def segments_of(audio: np.ndarray, model: SileroModel) -> list:
    stream = VadStream(model, Settings().vad(), "customer")
    events = []
    for i in range(0, audio.size, 320):  # 20 ms frames, like a phone call
        events += stream.feed(audio[i : i + 320])
    events += stream.flush()
    return [e.segment for e in events if isinstance(e, SpeechEnded)]


def test_real_speech_segments_match_reference_times(silero: SileroModel) -> None:
    name = "aishellsample_S0150_S0252_concat_read"
    audio, _ = decode_file(eval_path("long", "audio", f"{name}.wav"))
    truth = json.loads(eval_path("long", "segments", f"{name}.json").read_text())
    segs = segments_of(audio[0], silero)
    assert len(segs) == len(truth)
    # Reference times are those of the source recordings, leading/trailing silence included: each
    # detected utterance must lie inside its recording (± the 200 ms pad) and cover most of it.
    for seg, ref in zip(segs, truth, strict=True):
        ref_start, ref_end = ref["start"] * 1000, ref["end"] * 1000
        assert ref_start - 250 <= seg.start_ms and seg.end_ms <= ref_end + 250
        assert seg.end_ms - seg.start_ms >= 0.5 * (ref_end - ref_start)


@pytest.mark.parametrize(
    "name",
    [
        "speechbrain_noise1.wav",
        "esc50_thunderstorm_3-103051-C-19.wav",
        "moh_manolo_camp-morning_coffee.wav",
        "speechcommands_doing_the_dishes.wav",
        "speechcommands_exercise_bike.wav",
    ],
)
def test_noise_and_hold_music_are_not_speech(silero: SileroModel, name: str) -> None:
    audio, _ = decode_file(eval_path("noise", "audio", name))
    assert segments_of(audio[0], silero) == []


class OneWindowAtATime:
    """Silero run one window per call, as the VAD did before runs of windows went through in one call."""

    def __init__(self, model: SileroModel) -> None:
        self.model = model

    def new_state(self) -> object:
        return self.model.new_state()

    def probs(self, windows: np.ndarray, state: object) -> np.ndarray:
        return np.array([self.model.prob(w, state) for w in windows], np.float32)  # type: ignore[arg-type]


def test_runs_of_windows_give_the_same_probabilities_and_segments_as_one_window_per_call(
    silero: SileroModel,
) -> None:
    audio, _ = decode_file(fixture_clip("asterisk_agent-newlocation").path)
    mono = np.concatenate([np.zeros(8000, np.float32), audio[0], np.zeros(16000, np.float32), audio[0]])
    n = mono.size // WINDOW
    windows = mono[: n * WINDOW].reshape(n, WINDOW)
    one = OneWindowAtATime(silero).probs(windows, silero.new_state())
    run = silero.probs(windows, silero.new_state())
    assert np.abs(one - run).max() < 1e-4 and one.max() > 0.5  # speech is heard, the same way
    # The live setting: the WebRTC gate on, 100 ms frames (three windows and a bit each).
    streams = [VadStream(m, Settings().vad(), "customer") for m in (silero, OneWindowAtATime(silero))]  # type: ignore[arg-type]
    results = []
    for stream in streams:
        events = [e for i in range(0, mono.size, 1600) for e in stream.feed(mono[i : i + 1600])] + stream.flush()
        results.append([(e.segment.start_ms, e.segment.end_ms) for e in events if isinstance(e, SpeechEnded)])
    assert results[0] == results[1] and len(results[0]) >= 2
