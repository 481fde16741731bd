"""Voice activity detection and endpointing for one leg of a call.

Two detectors, cheap first:

* ``webrtcvad`` (``VAD_WEBRTC_MODE``, live wide-band legs only: see :func:`live_options`) looks at every 30 ms of
  audio; while the leg is quiet and WebRTC hears no voice, the window is silence and the neural model is not run
  (most of a call leg is the other party talking).
* Silero VAD v6 (the ONNX file inside faster-whisper, run with onnxruntime, no torch) gives a speech
  probability per 32 ms window; it is what cuts segments, and it is robust to noise where WebRTC is not. The
  ONNX graph takes a *sequence* of windows of one stream with one recurrent state (its state has batch 1, so
  streams cannot share a run): every run of consecutive windows that needs the model goes through it in one call
  (a 100 ms frame is three windows; a backlog, many), with the same probabilities as one call per window.

:class:`VadStream` is a four-state machine (quiet → starting → speaking → stopping) in the style of
Silero's ``VADIterator``: ``feed()`` takes 16 kHz audio and returns events; ``flush()`` ends an open
utterance; no I/O. The ONNX session is shared by all streams (onnxruntime sessions are thread-safe);
each stream owns its recurrent state. Live calls run their streams on the VAD worker thread
(:mod:`speechsvc.runtime.vad_worker`), which hands the event loop a :class:`VadView` after each step.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from speechsvc.config import VadOptions
from speechsvc.types import PIPELINE_RATE, Float32Array, Int16Array, Leg, SpeechSegment

log = logging.getLogger(__name__)

WINDOW = 512  # Silero v6 at 16 kHz: 512 samples = 32 ms per probability
CONTEXT = 64  # samples of the previous window the model sees
WINDOW_MS = WINDOW * 1000 // PIPELINE_RATE  # 32
WEBRTC_FRAME = 480  # 30 ms, a frame size webrtcvad accepts at 16 kHz


class SileroModel:
    """The Silero VAD v6 ONNX session, loaded once and shared."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)

    def new_state(self) -> SileroState:
        return SileroState()

    def prob(self, window: Float32Array, state: SileroState) -> float:
        """P(speech) for one 512-sample window, advancing ``state``."""
        return float(self.probs(window[None, :], state)[0])

    def probs(self, windows: Float32Array, state: SileroState) -> Float32Array:
        """P(speech) for consecutive 512-sample windows (shape ``(n, 512)``) of one stream in one run, advancing
        ``state`` past the last: each window sees the last 64 samples of the one before, as in ``n`` calls of
        :meth:`prob`."""
        n = windows.shape[0]
        x = np.empty((n, CONTEXT + WINDOW), np.float32)
        x[0, :CONTEXT] = state.context
        x[1:, :CONTEXT] = windows[:-1, -CONTEXT:]
        x[:, CONTEXT:] = windows
        out, state.h, state.c = self._session.run(None, {"input": x, "h": state.h, "c": state.c})
        state.context = windows[-1, -CONTEXT:].copy()
        return np.asarray(out, np.float32).reshape(-1)


class SileroState:
    def __init__(self) -> None:
        self.h = np.zeros((1, 1, 128), np.float32)
        self.c = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(CONTEXT, np.float32)


class VadState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class SpeechStarted:
    leg: Leg
    index: int
    start_ms: int


@dataclass(frozen=True)
class SpeechEnded:
    segment: SpeechSegment


VadEvent = SpeechStarted | SpeechEnded


@dataclass(frozen=True)
class VadView:
    """A stream as of its latest audio, for readers on another thread (the event loop of a live call): the
    stream itself belongs to the thread that feeds it."""

    state: VadState
    samples: int  # 16 kHz samples consumed (whole windows) since the leg began
    earliest_start_ms: int  # see VadStream.earliest_start_ms
    speech_samples: int  # speech heard on the leg so far (utterances ended)
    index: int  # the utterance in progress (or the next one)
    start_ms: int  # its start
    windows: tuple[Float32Array, ...] = ()  # its audio so far, while speaking or stopping (else empty)

    def current(self) -> tuple[int, int, Float32Array] | None:
        """(utterance index, start ms, audio so far) of the utterance in progress, for partials."""
        if not self.windows:
            return None
        return self.index, self.start_ms, np.concatenate(self.windows)


NARROWBAND_RATE = 8000  # a source at this rate or below carries phone-band speech (up to 4 kHz)


def band_options(options: VadOptions, source_rate: int) -> VadOptions:
    """The thresholds for audio from a source at ``source_rate`` Hz (the one place that decides by it, for live
    legs and recordings): narrowband sources (``NARROWBAND_RATE`` and below) use ``narrowband_threshold`` when it
    is set, the pause threshold the same distance below it."""
    low = options.narrowband_threshold
    if source_rate > NARROWBAND_RATE or low is None or low == options.threshold:
        return options
    return replace(options, threshold=low, neg_threshold=max(0.01, low - (options.threshold - options.neg_threshold)))


def live_options(options: VadOptions, source_rate: int) -> VadOptions:
    """A live leg's endpointing: the thresholds of its band (:func:`band_options`), and the WebRTC gate on
    wide-band legs only. Phone-band audio (a source below 16 kHz) goes to Silero on every window: there the gate
    missed utterances Silero finds (benchmarks/live_vad.py); on 16 kHz legs it keeps the stream benchmark's CER
    (16 calls: 0.094 with the gate, 0.117 without)."""
    options = band_options(options, source_rate)
    if source_rate < PIPELINE_RATE and options.webrtc_mode is not None:
        return replace(options, webrtc_mode=None)
    return options


class VadStream:
    """Endpointing for one leg. Not thread-safe; owned by one session."""

    def __init__(self, model: SileroModel, options: VadOptions, leg: Leg) -> None:
        self._model = model
        self.options = options
        self.leg = leg
        self._webrtc = None
        if options.webrtc_mode is not None:
            import webrtcvad

            self._webrtc = webrtcvad.Vad(options.webrtc_mode)
        self.reset()

    def reset(self) -> None:
        self.state = VadState.QUIET
        self._silero = self._model.new_state()
        self._pending = np.zeros(0, np.float32)
        self._samples = 0  # samples consumed (windows) since the leg began
        pad_windows = max(1, self.options.speech_pad_ms // WINDOW_MS)
        self._preroll: deque[Float32Array] = deque(maxlen=pad_windows)
        self._segment: list[Float32Array] = []
        self._probs: list[float] = []  # P(speech) of each window in _segment (pre-roll counts as 0)
        self._segment_start = 0  # sample index of the first sample in _segment
        self._speech_windows = 0
        self._silence_windows = 0
        self._index = 0
        self.speech_samples = 0  # total speech duration on this leg, for the call summary

    @property
    def audio_ms(self) -> int:
        return (self._samples + self._pending.size) * 1000 // PIPELINE_RATE

    def feed(self, audio: Float32Array) -> list[VadEvent]:
        """Consume 16 kHz float32 audio of any length; return the events it completes."""
        events: list[VadEvent] = []
        data = np.concatenate([self._pending, audio]) if self._pending.size else audio
        n_windows = data.size // WINDOW
        if n_windows:
            windows = np.ascontiguousarray(data[: n_windows * WINDOW], np.float32).reshape(n_windows, WINDOW)
            pcm = (np.clip(windows[:, :WEBRTC_FRAME], -1, 1) * 32767).astype(np.int16) if self._webrtc else None
            ahead: Float32Array | None = None  # model probabilities of windows[i:], computed in one run
            ahead_at = 0
            for i in range(n_windows):
                if self._gated(pcm, i):
                    prob = 0.0  # quiet and WebRTC hears no voice: no model run, and its state starts afresh
                    ahead = None
                    self._silero = self._model.new_state()
                else:
                    if ahead is None or i - ahead_at >= ahead.size:
                        ahead_at = i
                        ahead = self._model.probs(windows[i : self._run_end(pcm, i, n_windows)], self._silero)
                    prob = float(ahead[i - ahead_at])
                events.extend(self._step(windows[i], prob))
        self._pending = data[n_windows * WINDOW :].copy()
        return events

    def _gated(self, pcm: Int16Array | None, i: int) -> bool:
        """Window i is silence by WebRTC's word (only asked while quiet: the cheap detector opens the gate)."""
        return pcm is not None and self.state is VadState.QUIET and not self._voiced(pcm, i)

    def _voiced(self, pcm: Int16Array, i: int) -> bool:
        assert self._webrtc is not None
        return bool(self._webrtc.is_speech(pcm[i].tobytes(), PIPELINE_RATE))

    def _run_end(self, pcm: Int16Array | None, i: int, n: int) -> int:
        """The end of the run of windows from i the model can take in one call: while quiet, up to the next window
        WebRTC calls silence (there the state may be reset); else to the end of the audio (a window after the
        utterance ends that WebRTC calls silence drops the rest of the run, which is then computed again)."""
        if pcm is None or self.state is not VadState.QUIET:
            return n
        end = i + 1
        while end < n and self._voiced(pcm, end):
            end += 1
        return end

    def view(self) -> VadView:
        """This stream as of now, for another thread to read."""
        speaking = self.state in (VadState.SPEAKING, VadState.STOPPING) and bool(self._segment)
        return VadView(self.state, self._samples, self.earliest_start_ms(), self.speech_samples, self._index,
                       self._segment_start * 1000 // PIPELINE_RATE, tuple(self._segment) if speaking else ())

    def flush(self) -> list[VadEvent]:
        """End of stream: close an open utterance (with whatever audio is pending)."""
        events: list[VadEvent] = []
        if self.state in (VadState.SPEAKING, VadState.STOPPING) and self._segment:
            if self._pending.size:
                self._segment.append(self._pending)
                self._samples += self._pending.size
            events.append(self._end(self._samples))
        self._pending = np.zeros(0, np.float32)
        self.state = VadState.QUIET
        return events

    def earliest_start_ms(self) -> int:
        """No utterance this stream ends from now on can start before this media time: the start of the one
        in progress, or, while quiet, the reach of the pre-roll back from the audio already consumed."""
        if self.state is not VadState.QUIET and self._segment:
            return self._segment_start * 1000 // PIPELINE_RATE
        return max(0, (self._samples - WINDOW * (self._preroll.maxlen or 0) - WINDOW) * 1000 // PIPELINE_RATE)

    def current(self) -> tuple[int, int, Float32Array] | None:
        """(utterance index, start ms, audio so far) of the utterance in progress, for partials."""
        if self.state not in (VadState.SPEAKING, VadState.STOPPING) or not self._segment:
            return None
        return self._index, self._segment_start * 1000 // PIPELINE_RATE, np.concatenate(self._segment)

    def _step(self, window: Float32Array, prob: float) -> list[VadEvent]:
        opts = self.options
        start = self._samples
        self._samples += WINDOW
        events: list[VadEvent] = []
        if self.state is VadState.QUIET:
            if prob >= opts.threshold:
                self.state = VadState.STARTING
                self._segment = [*self._preroll, window]
                self._probs = [0.0] * len(self._preroll) + [prob]
                self._segment_start = start - WINDOW * len(self._preroll)
                self._speech_windows = 1
            else:
                self._preroll.append(window)
            return events
        self._segment.append(window)
        self._probs.append(prob)
        if self.state is VadState.STARTING:
            if prob >= opts.threshold:
                self._speech_windows += 1
                if self._speech_windows * WINDOW_MS >= opts.min_speech_ms:
                    self.state = VadState.SPEAKING
                    events.append(SpeechStarted(self.leg, self._index, self._segment_start * 1000 // PIPELINE_RATE))
            elif prob < opts.neg_threshold:
                self.state = VadState.QUIET
                self._preroll.extend(self._segment[-self._preroll.maxlen :] if self._preroll.maxlen else [])
                self._segment, self._probs = [], []
            return events
        if prob >= opts.threshold:
            self.state = VadState.SPEAKING
            self._silence_windows = 0
        elif prob < opts.neg_threshold or self.state is VadState.STOPPING:
            self.state = VadState.STOPPING
            self._silence_windows += 1
            if self._silence_windows * WINDOW_MS >= opts.min_silence_ms:
                # Keep speech_pad_ms of the pause; the rest of it is not part of the utterance.
                keep = max(0, self._silence_windows - max(1, opts.speech_pad_ms // WINDOW_MS))
                events.append(self._end(self._samples - keep * WINDOW, drop_windows=keep))
                return events
        if (self._samples - self._segment_start) >= opts.max_segment_s * PIPELINE_RATE:
            events.extend(self._cut())
        return events

    def _cut(self) -> list[VadEvent]:
        """Cut an utterance that reached max_segment_s after its least speech-like window among the last
        cut_search_ms (the latest one on a tie), never in its first half. The windows after the cut start
        the next utterance: the speaker goes on, and no audio is lost."""
        n = len(self._segment)
        search = min(n // 2, self.options.cut_search_ms // WINDOW_MS)
        keep = n
        if search > 0:
            recent = np.asarray(self._probs[n - search :])
            keep = n - int(np.argmin(recent[::-1]))
        rest, rest_probs = self._segment[keep:], self._probs[keep:]
        cut_sample = self._samples - WINDOW * len(rest)
        self._segment = self._segment[:keep]
        ended = self._end(cut_sample, forced=True)
        self.state = VadState.SPEAKING
        self._segment, self._probs = rest, rest_probs
        self._segment_start = cut_sample
        return [ended, SpeechStarted(self.leg, self._index, cut_sample * 1000 // PIPELINE_RATE)]

    def _end(self, end_sample: int, *, drop_windows: int = 0, forced: bool = False) -> SpeechEnded:
        windows = self._segment[: len(self._segment) - drop_windows] if drop_windows else self._segment
        audio = np.concatenate(windows) if windows else np.zeros(0, np.float32)
        segment = SpeechSegment(
            leg=self.leg,
            index=self._index,
            start_ms=self._segment_start * 1000 // PIPELINE_RATE,
            end_ms=end_sample * 1000 // PIPELINE_RATE,
            audio=audio,
            forced=forced,
        )
        self.speech_samples += audio.size
        self._index += 1
        self._segment, self._probs = [], []
        self._speech_windows = 0
        self._silence_windows = 0
        self.state = VadState.QUIET
        self._preroll.clear()
        return SpeechEnded(segment)
