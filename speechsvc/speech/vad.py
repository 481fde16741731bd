"""Voice activity detection and endpointing for one leg of a call.

Two detectors, cheap first:

* ``webrtcvad`` looks at every 30 ms of audio; while the leg is quiet and WebRTC hears no voice, the
  window is silence and the neural model is not run (most of a call leg is the other party talking).
* Silero VAD v6 (the ONNX file inside faster-whisper, run with onnxruntime, no torch) gives a speech
  probability per 32 ms window; it is what cuts segments, and it is robust to noise where WebRTC is not.

:class:`VadStream` is a four-state machine (quiet → starting → speaking → stopping) in the style of
Silero's ``VADIterator``: ``feed()`` takes 16 kHz audio and returns events; ``flush()`` ends an open
utterance; no I/O. The ONNX session is shared by all streams (onnxruntime sessions are thread-safe);
each stream owns its recurrent state.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsvc.config import VadOptions
from speechsvc.types import PIPELINE_RATE, Float32Array, Leg, SpeechSegment

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
        x = np.concatenate([state.context, window])[None, :].astype(np.float32)
        out, state.h, state.c = self._session.run(None, {"input": x, "h": state.h, "c": state.c})
        state.context = window[-CONTEXT:].copy()
        return float(np.asarray(out).reshape(-1)[0])


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
        for i in range(n_windows):
            events.extend(self._step(data[i * WINDOW : (i + 1) * WINDOW]))
        self._pending = data[n_windows * WINDOW :].copy()
        return events

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

    def _speech_prob(self, window: Float32Array) -> float:
        if self._webrtc is not None and self.state is VadState.QUIET:
            frame = (np.clip(window[:WEBRTC_FRAME], -1, 1) * 32767).astype(np.int16).tobytes()
            if not self._webrtc.is_speech(frame, PIPELINE_RATE):
                self._silero = self._model.new_state()
                return 0.0
        return self._model.prob(window, self._silero)

    def _step(self, window: Float32Array) -> list[VadEvent]:
        opts = self.options
        prob = self._speech_prob(window)
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
