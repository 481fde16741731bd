"""Who spoke when in a mono recording: speaker embeddings over the VAD's segments, clustered into N speakers.

Each VAD segment is covered by windows of ``window_s`` every ``hop_s`` (a segment shorter than a window is one
window of its own length) and each window gets a GE2E embedding (:mod:`speechsvc.speech.speaker`). The windows are
clustered into ``speakers`` groups by spectral clustering of their cosine affinities (each row keeps its closest
``prune`` share, as in Wang et al., "Speaker diarization with LSTM", 2018), refined by spherical k-means; two
centroids closer than ``same_speaker`` are one voice (a recording with one speaker stays one speaker). Every
``STEP_MS`` of a segment then takes the speaker whose centroid is closest on average over the windows covering
it (with ``fine_window_s``, also over shorter windows that are scored but not clustered); a run shorter than
``min_turn_s`` joins its neighbours, and a segment is split where the speaker changes. When voices were merged,
the parts still follow the split before the merge and carry it (``Diarization.unmerged``), so that the roles
can keep apart two voices that sound alike when their text shows an agent and a customer
(:func:`speechsvc.batch.speakers.label_roles`). Overlapped speech goes to the speaker who dominates it. With
``overlap_presence`` set (off by default: not reliable on the tune split), overlap at a change is looked for in
the short windows' scores (:mod:`speechsvc.speech.overlap`): its audio stays with the part it was cut into, and
the two parts' times (``Diarization.spans``) overlap over it, as two stereo legs do.

Pure functions over arrays; the encoder is passed in (thread safety: see the encoder's module).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from speechsvc.speech.overlap import find_overlaps, levels, step_means, widen
from speechsvc.speech.speaker import SAMPLE_RATE, SpeakerEncoder
from speechsvc.types import Float32Array, SpeechSegment

log = logging.getLogger(__name__)

STEP_MS = 100  # resolution of speaker changes inside a segment
MAX_CLUSTERED = 1500  # windows clustered at once (spectral clustering is cubic); the rest are assigned to centroids


@dataclass(frozen=True)
class DiarizeOptions:
    """How a mono recording is split by speaker (defaults chosen on the tune split, benchmarks/diarization.py)."""

    # Number of speakers (2: an agent and a customer).
    speakers: int = 2
    # Embedding window and hop (the encoder was trained on 1.6 s windows).
    window_s: float = 1.5
    hop_s: float = 0.5
    # Share of each window's neighbours kept in the affinity matrix.
    prune: float = 0.15
    # Centroids with a cosine above this are the same voice. 0.95 on the tune split by the whole metric set
    # (attribution, roles, QA agreement; 16 kHz and both 8 kHz copies): as much speech on the right speaker as
    # 0.85 on wideband and more on telephone audio, where voices sound alike and 0.85 merged two callers into one.
    same_speaker: float = 0.95
    # A speaker change inside a segment must hold this long (0.5 with the fine windows below, on the tune split;
    # 1.5 without them).
    min_turn_s: float = 0.5
    # A voice heard in fewer windows than this is not a speaker of its own (a cough, a short clip of one voice).
    min_speaker_windows: int = 3
    # Short windows (0: none) scored against the clusters' centroids as well, so a short turn inside a segment
    # (no pause before it) has windows of its own; they are not clustered. 0.75 s every 0.25 s with 0.5 s
    # changes was the best pair on tune by the whole metric set plus short turns (fine_windows_tune in
    # benchmarks/results/diarization.json); it roughly doubles the embedding work.
    fine_window_s: float = 0.75
    fine_hop_s: float = 0.25
    # Overlapped speech at a speaker change (:mod:`speechsvc.speech.overlap`, needs the fine windows; 0: off): a
    # speaker is still (or already) heard in the other's turn where its short windows score at least
    # ``overlap_presence`` of the way from its level in the other's speech to its level in its own;
    # ``overlap_trim_s`` comes off each end of the span (a window's smear over a clean change) and a span
    # shorter than ``overlap_min_s`` is not overlap. Off: on the tune split no setting found the scripted
    # overlaps reliably (by duration, precision <= 0.10 and recall <= 0.12 at 16 kHz; at 8 kHz every second
    # found was false, and the interruption rule fired on mono calls where stereo did not; ``overlap_tune`` in
    # benchmarks/results/diarization.json), so the parts' times stay end to end, as before.
    overlap_presence: float = 0.0
    overlap_trim_s: float = 0.25
    overlap_min_s: float = 0.75

    def __post_init__(self) -> None:
        if not 1 <= self.speakers <= 8:
            raise ValueError(f"speakers must be 1..8, got {self.speakers}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError("hop_s must be in (0, window_s]")
        if self.fine_window_s < 0 or (self.fine_window_s and not 0 < self.fine_hop_s <= self.fine_window_s):
            raise ValueError("fine_window_s must be 0 (off) or above 0 with fine_hop_s in (0, fine_window_s]")
        if not 0 <= self.overlap_presence <= 1 or self.overlap_trim_s < 0 or self.overlap_min_s < 0:
            raise ValueError("overlap_presence must be in [0, 1] (0: off), overlap_trim_s and overlap_min_s >= 0")


@dataclass(frozen=True)
class SpeakerSegment:
    """A part of a VAD segment spoken by one speaker (0-based, in order of first appearance)."""

    segment: SpeechSegment
    speaker: int


@dataclass(frozen=True)
class Diarization:
    segments: tuple[SpeakerSegment, ...]
    # Speakers found (may be fewer than asked when the voices are the same).
    speakers: int
    # When voices that sound alike were merged (``same_speaker``): each part's speaker before the merge
    # (numbered by first appearance), so that text evidence of two roles can keep them apart
    # (:func:`speechsvc.batch.speakers.label_roles`); the parts are cut where either split changes speaker.
    unmerged: tuple[int, ...] | None = None
    unmerged_count: int = 0
    # Each part's (start_ms, end_ms) with the overlapped speech around it: where both spoke at once at a change,
    # the part before runs on to the overlap's end and the part after starts at its beginning, so the two
    # speakers' times overlap as two stereo legs do (the parts' audio does not: it stays cut at the change).
    # Empty when overlap detection is off.
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class _Window:
    segment: int
    start: int  # samples into the segment's audio
    end: int


def _windows(segments: Sequence[SpeechSegment], options: DiarizeOptions, fine: bool = False) -> list[_Window]:
    size, hop = int(options.window_s * SAMPLE_RATE), int(options.hop_s * SAMPLE_RATE)
    if fine:
        size, hop = int(options.fine_window_s * SAMPLE_RATE), int(options.fine_hop_s * SAMPLE_RATE)
    out = []
    for k, seg in enumerate(segments):
        n = seg.audio.size
        if n <= size:
            out.append(_Window(k, 0, n))
            continue
        starts = list(range(0, n - size + 1, hop))
        if starts[-1] + size < n:
            starts.append(n - size)
        out += [_Window(k, s, s + size) for s in starts]
    return out


def spectral_labels(embeddings: Float32Array, k: int, prune: float) -> np.ndarray:
    """Cluster unit vectors into ``k`` groups (spectral clustering of pruned cosine affinities)."""
    n = embeddings.shape[0]
    if n <= k:
        return np.arange(n)
    affinity = np.clip(embeddings @ embeddings.T, 0.0, None)
    keep = max(2, round(prune * n))
    threshold = np.sort(affinity, axis=1)[:, -keep][:, None]
    affinity = np.where(affinity >= threshold, affinity, 0.0)
    affinity = np.maximum(affinity, affinity.T)
    degree = affinity.sum(axis=1)
    inv = 1.0 / np.sqrt(np.maximum(degree, 1e-9))
    laplacian = np.eye(n) - inv[:, None] * affinity * inv[None, :]
    _, vectors = np.linalg.eigh(laplacian)
    spectral = vectors[:, :k]
    spectral = spectral / np.maximum(np.linalg.norm(spectral, axis=1, keepdims=True), 1e-9)
    return kmeans(spectral, k)


def kmeans(x: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Deterministic k-means (farthest-point initialisation) of the rows of ``x``."""
    centers = [x[0]]
    for _ in range(1, k):
        dist = np.min([np.sum((x - c) ** 2, axis=1) for c in centers], axis=0)
        centers.append(x[int(np.argmax(dist))])
    c = np.stack(centers)
    labels = np.zeros(x.shape[0], int)
    for _ in range(iterations):
        new = np.argmin(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        c = np.stack([x[labels == j].mean(axis=0) if np.any(labels == j) else c[j] for j in range(k)])
    return labels


def _centroids(embeddings: Float32Array, labels: np.ndarray, k: int) -> Float32Array:
    c = np.stack([embeddings[labels == j].mean(axis=0) if np.any(labels == j) else np.zeros(embeddings.shape[1])
                  for j in range(k)])
    return np.asarray(c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9), np.float32)


def cluster(embeddings: Float32Array, options: DiarizeOptions) -> Float32Array:
    """Speaker centroids (unit vectors) of window embeddings: spectral clustering, then spherical k-means;
    centroids closer than ``same_speaker`` are merged."""
    return cluster_split(embeddings, options)[1]


def cluster_split(embeddings: Float32Array, options: DiarizeOptions) -> tuple[Float32Array, Float32Array]:
    """The centroids of :func:`cluster` before and after the merge of voices that sound the same (closer than
    ``same_speaker``). A cluster heard in fewer than ``min_speaker_windows`` windows is not a voice and is in
    neither (a short one-voice file stays whole, not cut mid-word between two "voices")."""
    k = options.speakers
    n = embeddings.shape[0]
    if n == 0:
        empty = np.zeros((0, embeddings.shape[1]), np.float32)
        return empty, empty
    if k == 1 or n < 2:
        one = _centroids(embeddings, np.zeros(n, int), 1)
        return one, one
    # Long recordings: cluster an even subsample, assign the rest to its centroids.
    sample = embeddings[np.linspace(0, n - 1, min(n, MAX_CLUSTERED)).astype(int)]
    centroids = _centroids(sample, spectral_labels(sample, k, options.prune), k)
    for _ in range(10):
        labels = np.argmax(embeddings @ centroids.T, axis=1)
        new = _centroids(embeddings, labels, k)
        if np.allclose(new, centroids):
            break
        centroids = new
    counts = np.bincount(labels, minlength=k)
    kept = [j for j in range(k) if counts[j] >= options.min_speaker_windows] or [int(np.argmax(counts))]
    full = centroids[kept]
    centroids = _centroids(embeddings, np.argmax(embeddings @ full.T, axis=1), len(kept))
    return full, _merge_close(centroids, embeddings, options.same_speaker)


def _merge_close(centroids: Float32Array, embeddings: Float32Array, same: float) -> Float32Array:
    while centroids.shape[0] > 1:
        sim = centroids @ centroids.T
        np.fill_diagonal(sim, -1.0)
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[i, j] < same:
            break
        labels = np.argmax(embeddings @ centroids.T, axis=1)
        labels[labels == j] = i
        keep = [m for m in range(centroids.shape[0]) if m != j]
        remap = {old: new for new, old in enumerate(keep)}
        centroids = _centroids(embeddings, np.array([remap[v] for v in labels]), len(keep))
    return centroids


def _smooth(labels: list[int], min_run: int) -> list[int]:
    """Runs shorter than ``min_run`` steps take the label of the longer neighbouring run (repeatedly)."""
    while True:
        runs: list[list[int]] = []  # [label, start, length]
        for t, lab in enumerate(labels):
            if runs and runs[-1][0] == lab:
                runs[-1][2] += 1
            else:
                runs.append([lab, t, 1])
        short = [r for r in runs if r[2] < min_run]
        if len(runs) == 1 or not short:
            return labels
        shortest = min(short, key=lambda r: r[2])
        at = runs.index(shortest)
        neighbours = [runs[m] for m in (at - 1, at + 1) if 0 <= m < len(runs)]
        target = max(neighbours, key=lambda r: r[2])[0]
        labels[shortest[1] : shortest[1] + shortest[2]] = [target] * shortest[2]


def diarize(segments: Sequence[SpeechSegment], encoder: SpeakerEncoder,
            options: DiarizeOptions = DiarizeOptions()) -> Diarization:
    """Split a mono recording's VAD segments by speaker (see the module docstring). Speakers are numbered in
    order of first appearance; a segment's parts keep its leg, and indexes are renumbered in time order."""
    ordered = sorted(segments, key=lambda s: s.start_ms)
    windows = _windows(ordered, options)
    if not windows:
        return Diarization((), 0)
    embeddings = encoder.embed([ordered[w.segment].audio[w.start : w.end] for w in windows])
    full, merged = cluster_split(embeddings, options)
    was_merged = full.shape[0] > merged.shape[0]
    # Parts follow the split before the merge; each takes the merged voice its cluster joined.
    centroids = full if was_merged else merged
    to_merged = np.argmax(full @ merged.T, axis=1) if was_merged else np.arange(merged.shape[0])
    scores = embeddings @ centroids.T  # (windows, speakers)
    coarse = len(windows)
    if options.fine_window_s > 0:
        fine = _windows(ordered, options, fine=True)
        fine_embeddings = encoder.embed([ordered[w.segment].audio[w.start : w.end] for w in fine])
        windows, scores = windows + fine, np.vstack([scores, fine_embeddings @ centroids.T])
    parts: list[tuple[SpeechSegment, int]] = []
    step = STEP_MS * SAMPLE_RATE // 1000
    min_run = max(1, int(options.min_turn_s * 1000 / STEP_MS))
    detect = options.fine_window_s > 0 and options.overlap_presence > 0
    cuts: list[tuple[SpeechSegment, np.ndarray, list[int], list[tuple[int, int]]]] = []
    by_segment: dict[int, list[int]] = {}
    for w, window in enumerate(windows):
        by_segment.setdefault(window.segment, []).append(w)
    for k, seg in enumerate(ordered):
        mine = by_segment[k]
        steps = max(1, -(-seg.audio.size // step))
        total = np.zeros((steps, centroids.shape[0]))
        count = np.zeros(steps)
        fine_total, fine_count = np.zeros_like(total), np.zeros_like(count)
        for w in mine:
            a, b = windows[w].start // step, max(windows[w].start // step + 1, -(-windows[w].end // step))
            total[a:b] += scores[w]
            count[a:b] += 1
            if w >= coarse:
                fine_total[a:b] += scores[w]
                fine_count[a:b] += 1
        covered = count > 0
        total[~covered] = scores[mine].mean(axis=0)
        labels = _smooth([int(v) for v in np.argmax(total, axis=1)], min_run)
        bounds: list[tuple[int, int]] = []
        start = 0
        for t in range(1, steps + 1):
            if t == steps or labels[t] != labels[start]:
                a, b = start * step, min(seg.audio.size, t * step)
                part = replace(seg, start_ms=seg.start_ms + a * 1000 // SAMPLE_RATE,
                               end_ms=seg.start_ms + b * 1000 // SAMPLE_RATE if t < steps else seg.end_ms,
                               audio=seg.audio[a:b])
                parts.append((part, labels[start]))
                bounds.append((start, t))
                start = t
        cuts.append((seg, step_means(fine_total, fine_count), labels, bounds))
    spans = _heard(cuts, centroids.shape[0], options) if detect else []
    merged_labels = [int(to_merged[lab]) for _, lab in parts]
    first_seen = _first_seen(merged_labels)
    out = tuple(SpeakerSegment(replace(seg, index=i), first_seen[lab])
                for i, ((seg, _), lab) in enumerate(zip(parts, merged_labels, strict=True)))
    unmerged, unmerged_count = None, 0
    before = _first_seen([lab for _, lab in parts])
    if len(before) > len(first_seen):
        unmerged, unmerged_count = tuple(before[lab] for _, lab in parts), len(before)
    log.debug("diarized %d segments into %d parts, %d speakers (%d before merging)", len(ordered), len(out),
              len(first_seen), unmerged_count or len(first_seen))
    return Diarization(out, len(first_seen), unmerged, unmerged_count, tuple(spans) if detect else ())


def _heard(cuts: Sequence[tuple[SpeechSegment, np.ndarray, list[int], list[tuple[int, int]]]], speakers: int,
           options: DiarizeOptions) -> list[tuple[int, int]]:
    """Each part's (start_ms, end_ms) widened over the overlapped speech at its changes (in the order of the
    parts): ``cuts`` holds each segment, its steps' short-window scores, its steps' speakers and its runs."""
    level = levels([c[1] for c in cuts], [c[2] for c in cuts], speakers)
    trim = round(options.overlap_trim_s * 1000 / STEP_MS)
    shortest = round(options.overlap_min_s * 1000 / STEP_MS)
    out = []
    for seg, scores, labels, bounds in cuts:
        found = find_overlaps(scores, labels, level, options.overlap_presence, trim, shortest)
        out += [(seg.start_ms + a * STEP_MS, seg.start_ms + b * STEP_MS if b < len(labels) else seg.end_ms)
                for a, b in widen(bounds, found)]
    return out


def _first_seen(labels: Sequence[int]) -> dict[int, int]:
    """Cluster number → speaker number in order of first appearance."""
    seen: dict[int, int] = {}
    for lab in labels:
        seen.setdefault(lab, len(seen))
    return seen
