"""The VAD worker: one thread runs voice activity detection for every leg of every live call, so the event
loop only moves bytes and events.

A session hands each leg's resampled audio to :meth:`VadWorker.submit` with a callback; the worker thread takes
everything queued, runs each leg's :class:`~speechsvc.speech.vad.VadStream` over its audio (the frames of a leg
that queued up meanwhile in one ``feed``: one Silero run per run of windows, see :mod:`speechsvc.speech.vad`),
and calls the callback on the submitting loop with a :class:`VadUpdate`: the events that audio completed and a
:class:`~speechsvc.speech.vad.VadView` of the stream, which is all the loop reads of it. A leg's items are
processed in the order they were submitted, and its updates arrive in that order; a ``flush`` item (the end of
a turn or of the call) is processed on its own, after the leg's audio before it.

Bounds: the queue holds at most ``max_queue`` items (frames); past that :meth:`submit` refuses with
:class:`~speechsvc.errors.Overloaded`. Sessions also hold their transport back (``CallSession.room``) while a
leg has more than a little audio waiting here, so a client sending faster than real time is slowed, not cut.

Thread-safety: :meth:`submit` is called from an event loop (any: the callback goes back to the caller's); a
stream submitted here is fed on the worker thread only, and its owner reads the views it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from speechsvc.errors import Overloaded, ShuttingDown
from speechsvc.speech.vad import VadEvent, VadStream, VadView
from speechsvc.types import Float32Array
from speechsvc.workers import name_os_thread

log = logging.getLogger(__name__)

# Frames waiting for the VAD thread, all calls together: at 100 ms frames, 40 s of audio for 100 legs.
MAX_QUEUE = 4096
# Items taken off the queue per pass (the frames of all legs that arrived while the last pass ran).
MAX_PASS = 512


@dataclass(frozen=True)
class VadUpdate:
    """What one pass of the worker did for one leg."""

    events: tuple[VadEvent, ...]
    view: VadView
    samples: int  # 16 kHz samples of submitted audio this update accounts for
    error: str | None = None  # the stream failed on this audio (a bug): it is lost, the leg goes on


@dataclass(frozen=True)
class _Item:
    stream: VadStream
    audio: Float32Array
    flush: bool
    done: Callable[[VadUpdate], object]
    loop: asyncio.AbstractEventLoop


class VadWorker:
    """One thread, one bounded queue, every live leg's VAD."""

    def __init__(self, max_queue: int = MAX_QUEUE) -> None:
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False
        self.passes = 0  # worker passes so far (each takes all that is queued)
        self.frames = 0  # items processed

    @property
    def depth(self) -> int:
        """Items waiting for the worker."""
        return self._queue.qsize()

    def submit(self, stream: VadStream, audio: Float32Array, done: Callable[[VadUpdate], object], *,
               flush: bool = False) -> None:
        """Queue ``audio`` for ``stream`` (then, with ``flush``, end its open utterance); ``done`` is called on the
        running loop with the update.

        Raises:
            Overloaded: the queue is full (the VAD is behind real time).
            ShuttingDown: the worker is stopped.
        """
        if self._closing:
            raise ShuttingDown("VAD worker is stopped")
        self._ensure_started()
        try:
            self._queue.put_nowait(_Item(stream, audio, flush, done, asyncio.get_running_loop()))
        except queue.Full:
            raise Overloaded(f"VAD is behind: {self._queue.maxsize} frames wait") from None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread after what is queued (blocking, bounded by ``timeout_s``)."""
        self._closing = True
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        thread.join(timeout_s)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vad", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        name_os_thread("vad")
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            stop = False
            while len(items) < MAX_PASS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                items.append(item)
            self.passes += 1
            self.frames += len(items)
            # One wake-up per loop and pass (not per leg): waking a loop is a syscall.
            out: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[VadUpdate], object], VadUpdate]]] = {}
            for group in _groups(items):
                out.setdefault(group[-1].loop, []).append((group[-1].done, self._process(group)))
            for loop, updates in out.items():
                with contextlib.suppress(RuntimeError):  # the loop is closed: its calls are gone
                    loop.call_soon_threadsafe(_deliver, updates)
            if stop:
                return

    @staticmethod
    def _process(group: list[_Item]) -> VadUpdate:
        last = group[-1]
        stream = last.stream
        audio = group[0].audio if len(group) == 1 else np.concatenate([item.audio for item in group])
        error = None
        events: list[VadEvent] = []
        try:
            events = stream.feed(audio)
            if last.flush:
                events += stream.flush()
        except Exception as e:  # a bug in the VAD loses this audio, not the worker that serves every call (logged)
            log.exception("VAD failed on %d samples of the %s leg", audio.size, stream.leg)
            error = f"{type(e).__name__}: {e}"
        return VadUpdate(tuple(events), stream.view(), audio.size, error)


def _deliver(updates: list[tuple[Callable[[VadUpdate], object], VadUpdate]]) -> None:
    """On the loop: each leg's update, in the order the worker made them."""
    for done, update in updates:
        try:
            done(update)
        except Exception:  # one call's bug must not lose the other calls' updates of this pass (logged)
            log.exception("delivering a VAD update failed")


def _groups(items: list[_Item]) -> list[list[_Item]]:
    """Each stream's items in order, consecutive audio merged into one group; a flush item ends its group (the
    events of the audio before a flush are delivered before the flush's own)."""
    open_groups: dict[int, list[_Item]] = {}
    groups: list[list[_Item]] = []
    for item in items:
        key = id(item.stream)
        group = open_groups.get(key)
        if item.flush or group is None:
            group = [item]
            groups.append(group)
            open_groups[key] = group
        else:
            group.append(item)
        if item.flush:
            del open_groups[key]  # the next item of this stream starts a new group after this one
    return groups
