"""Learning curve: dev-set accuracy against k operator examples per intent (k = 5, 10, 20, 50).

    .venv/bin/python training/learning_curve.py [--dense use|e5:DIR] [--out FILE.json]

Protocol (the number an operator asks before labelling): ../shared/eval/intent_dev.tsv is split into 5
stratified folds (seed 0). For each fold, up to k rows per intent are drawn (seeded; k = 5 ⊂ 10 ⊂ 20 ⊂ 50)
from the other four folds as the "operator's labelled examples", a model is trained on them — alone
(``--base none``) and with the shipped training rows (``--base default``) — and scored on the held-out fold.
Accuracy is pooled over the five held-out folds (each dev row scored once per k). Intents with fewer than k
rows in the training folds contribute what they have; the mean examples per intent is reported. Models trained
here are measurements only: none is written, none ships.

The classifier is the shipped approach (character 1–3-gram TF-IDF + sentence embedding, class-balanced
logistic regression, C = 30 as cross-validated for the shipped model, argmax; k = 0 with the shipped rows is
the shipped model, a check of this script); ``--dense`` picks the sentence
embedding: the shipped USE, or a fine-tuned e5 encoder directory (training/finetune_e5.py --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from speechsvc.analysis.text import char_ngrams, normalize
from speechsvc.training.intent_train import SHIPPED_DATA

ROOT = Path(__file__).resolve().parent.parent
KS = (5, 10, 20, 50)
SEED = 0
C = 30.0


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))


def encoder(spec: str) -> Callable[[list[str]], np.ndarray]:
    if spec == "use":
        from speechsvc.analysis.intent import embedder

        return embedder().encode  # type: ignore[no-any-return]
    from e5_torch import load_encoder  # training/, for a fine-tuned e5 directory

    return load_encoder(Path(spec.split(":", 1)[1]))


def draw(train_idx: np.ndarray, gold: list[str], k: int, seed: int) -> list[int]:
    """Up to k rows per intent from ``train_idx``; the draws for smaller k are prefixes of those for larger."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i in train_idx:
        by_intent[gold[i]].append(int(i))
    rng = np.random.default_rng(seed)
    out = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        out += [group[j] for j in rng.permutation(len(group))[:k]]
    return out


def fit_predict(texts: list[str], dense: np.ndarray, y: list[str], test_texts: list[str],
                test_dense: np.ndarray, weight: np.ndarray | None = None) -> list[str]:
    vec = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True)
    x = hstack([vec.fit_transform(texts), csr_matrix(dense)]).tocsr()
    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(x, y, sample_weight=weight)
    return list(model.predict(hstack([vec.transform(test_texts), csr_matrix(test_dense)]).tocsr()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "intent_dev.tsv")
    parser.add_argument("--dense", default="use")
    parser.add_argument("--own-weight", default="1",
                        help="weight of an operator row next to a shipped one: a number, or 'balanced' "
                             "(the operator's rows weigh as much in total as the shipped ones)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    dev, base = rows(args.dev), rows(SHIPPED_DATA)
    embed = encoder(args.dense)
    t0 = time.time()
    dev_texts, base_texts = [r["text"] for r in dev], [r["text"] for r in base]
    dev_dense = np.asarray(embed([normalize(t) for t in dev_texts]), np.float64)
    base_dense = np.asarray(embed([normalize(t) for t in base_texts]), np.float64)
    print(f"embedded {len(dev) + len(base)} texts in {time.time() - t0:.0f} s", flush=True)
    gold, base_gold = [r["intent"] for r in dev], [r["intent"] for r in base]
    high = np.array([r["confidence"] == "high" for r in dev])
    folds = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(np.zeros(len(dev)), gold))
    results: dict[str, dict[str, object]] = {}
    for variant in ("none", "default"):
        for k in KS if variant == "none" else (0, *KS):  # default, k = 0: the shipped rows alone
            pred = [""] * len(dev)
            per_intent: list[float] = []
            for f, (train_idx, test_idx) in enumerate(folds):
                chosen = draw(train_idx, gold, k, SEED + f)
                per_intent.append(len(chosen) / max(1, len({gold[i] for i in chosen})))
                texts = [dev_texts[i] for i in chosen]
                dense = dev_dense[chosen]
                y = [gold[i] for i in chosen]
                weight = None
                if variant == "default":
                    own = (len(base) / max(1, len(chosen)) if args.own_weight == "balanced"
                           else float(args.own_weight))
                    weight = np.array([1.0] * len(base) + [own] * len(chosen))
                    texts, dense, y = base_texts + texts, np.vstack([base_dense, dense]), base_gold + y
                out = fit_predict(texts, dense, y, [dev_texts[i] for i in test_idx], dev_dense[test_idx], weight)
                for i, p in zip(test_idx, out, strict=True):
                    pred[i] = p
            correct = np.array([p == g for p, g in zip(pred, gold, strict=True)])
            results[f"{variant}/k={k}"] = {
                "base": variant, "k": k, "mean_examples_per_intent": round(float(np.mean(per_intent)), 1),
                "accuracy": round(float(correct.mean()), 4), "high": round(float(correct[high].mean()), 4),
            }
            print(json.dumps(results[f"{variant}/k={k}"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"dense": args.dense, "own_weight": args.own_weight, "dev": str(args.dev),
                                        "results": results}, indent=1))


if __name__ == "__main__":
    main()
