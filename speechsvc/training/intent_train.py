"""Training a text model (intent and negativity heads) from labelled utterances: the shipped model
(``training/train_text.py``) and an operator's own (``speechsvc train intent``) use this one trainer.

Features: character 1–3-gram TF-IDF of the normalised text plus the sentence embedding of
:func:`speechsvc.analysis.intent.embedder` (computed once per text). Heads: class-balanced logistic
regression; C, the calibration temperature and the ``other`` threshold by stratified 5-fold cross-validation
on the training rows only. The out-of-fold predictions also give the per-intent accuracy printed and written
to the model card. Writes ``model.npz`` and ``model.json`` (which carries the npz's sha256, checked at load)
by rename, so a service reloading the directory never reads a half-written model.

Needs scikit-learn (the ``train`` extra); it is imported when training starts, not with this module.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.analysis.text import char_ngrams, normalize
from speechsvc.config import shipped_heads_dir
from speechsvc.errors import ModelUnavailable
from speechsvc.training.intent_data import Example, check_counts, conflicts

SEED = 0
C_GRID = (3.0, 10.0, 30.0)
FOLDS = 5
SHIPPED_DATA = shipped_heads_dir() / "text" / "intent_train.tsv"  # the rows the shipped text head learnt


@dataclass(frozen=True)
class TrainResult:
    directory: Path
    labels: tuple[str, ...]
    # Examples per intent, and the out-of-fold accuracy (recall) and F1 per intent.
    support: dict[str, int]
    cv_accuracy: dict[str, float]
    cv_f1: dict[str, float]
    # The intent an intent's rows are most often mistaken for (out of fold), and how often, where that is
    # a third of them or more: a sign that two intents overlap (an operator's and a shipped one, say).
    confused_with: dict[str, tuple[str, float]]
    # Out-of-fold accuracy over all rows, and on the operator's own rows (None when there are no others).
    overall: float
    own_rows: float | None
    meta: dict[str, Any]


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ModelUnavailable("training needs scikit-learn: pip install 'speechsvc[train]'") from None
    from sklearn import feature_extraction, linear_model, model_selection

    return feature_extraction.text.TfidfVectorizer, linear_model.LogisticRegression, model_selection.StratifiedKFold


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class Features:
    """TF-IDF (fitted per training split) plus the sentence embedding (computed once per text)."""

    def __init__(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> None:
        self.texts = list(texts)
        self.dense = np.asarray(embed([normalize(t) for t in self.texts]), dtype=np.float64)

    def matrix(self, rows: np.ndarray, vectorizer: Any, fit: bool) -> Any:
        from scipy.sparse import csr_matrix, hstack

        texts = [self.texts[i] for i in rows]
        tfidf = vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts)
        return hstack([tfidf, csr_matrix(self.dense[rows])]).tocsr()


def out_of_fold(features: Features, y: np.ndarray, c: float, n_classes: int) -> np.ndarray:
    """Out-of-fold decision values, so calibration and the reported accuracy never see their training rows."""
    tfidf, logistic, kfold = _sklearn()
    logits = np.zeros((len(y), n_classes))
    folds = kfold(n_splits=min(FOLDS, int(np.bincount(y).min())), shuffle=True, random_state=SEED)
    for train, test in folds.split(np.zeros(len(y)), y):
        vec = tfidf(analyzer=char_ngrams, sublinear_tf=True)
        model = logistic(C=c, max_iter=5000, class_weight="balanced").fit(features.matrix(train, vec, True), y[train])
        scores = model.decision_function(features.matrix(test, vec, False))
        logits[test] = scores if n_classes > 2 else np.stack([-scores / 2, scores / 2], axis=1)
    return logits


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of the out-of-fold predictions."""
    grid = np.exp(np.linspace(np.log(0.2), np.log(5.0), 200))
    nll = [-np.log(softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def pick_c(features: Features, y: np.ndarray, n_classes: int, say: Callable[[str], None]) -> tuple[float, np.ndarray]:
    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        logits = out_of_fold(features, y, c, n_classes)
        accuracy = float((logits.argmax(1) == y).mean())
        say(f"  C={c:g}: cross-validated accuracy {accuracy:.3f}")
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


def per_intent(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    accuracy, f1 = {}, {}
    for i, label in enumerate(labels):
        tp = int(((pred == i) & (y == i)).sum())
        fp, fn = int(((pred == i) & (y != i)).sum()), int(((pred != i) & (y == i)).sum())
        accuracy[label] = round(tp / max(1, tp + fn), 3)
        f1[label] = round(2 * tp / max(1, 2 * tp + fp + fn), 3)
    return accuracy, f1


def confusions(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, tuple[str, float]]:
    out = {}
    for i, label in enumerate(labels):
        wrong = pred[(y == i) & (pred != i)]
        if len(wrong):
            j = int(np.bincount(wrong, minlength=len(labels)).argmax())
            share = float((wrong == j).sum()) / max(1, int((y == i).sum()))
            if share >= 1 / 3:
                out[label] = (labels[j], round(share, 3))
    return out


def train(examples: Sequence[Example], out: Path, *, base: Sequence[Example] = (),
          embed: Callable[[list[str]], np.ndarray] | None = None, source: str = "",
          say: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train on ``examples`` (plus ``base``, the shipped rows, for intent when given) and write the model to
    ``out``. The negativity head learns from every row that has a ``negative`` label, the shipped rows always
    included, so a model trained on intent labels alone still scores negativity.

    Raises:
        IntentDataError: too few examples per intent, fewer than two intents.
        ModelUnavailable: scikit-learn is missing.
    """
    from speechsvc.analysis.intent import EMBEDDING, embedder

    _sklearn()
    embed = embed or embedder().encode
    intent_rows = [*base, *examples]
    support = check_counts(intent_rows, source or "training data")
    for text, labels in conflicts(intent_rows)[:5]:
        say(f"  note: {text!r} is labelled {labels}")
    own_texts = {e.text for e in examples}
    negative_rows = intent_rows if base else [*examples, *(e for e in _shipped_rows() if e.text not in own_texts)]
    negative_rows = [e for e in negative_rows if e.negative is not None]
    if len({e.negative for e in negative_rows}) < 2:
        raise ModelUnavailable("the negativity head needs rows labelled negative 1 and 0")

    texts = sorted({e.text for e in [*intent_rows, *negative_rows]})
    features = Features(texts, embed)
    index = {t: i for i, t in enumerate(texts)}
    labels = sorted(support)
    y = np.array([labels.index(e.intent) for e in intent_rows])
    rows = np.array([index[e.text] for e in intent_rows])
    say(f"{len(intent_rows)} utterances ({len(examples)} yours), {len(labels)} intents")

    say("intent head")
    intent_features = _Subset(features, rows)
    c_intent, logits = pick_c(intent_features, y, len(labels), say)
    temperature = fit_temperature(logits, y)
    probs = softmax(logits / temperature)
    threshold = other_threshold(probs, y, labels.index("other")) if "other" in labels else 0.0
    say(f"  temperature {temperature:.2f}, other-threshold {threshold}")
    accuracy, f1 = per_intent(y, probs.argmax(1), labels)
    confused = confusions(y, probs.argmax(1), labels)
    own = np.arange(len(base), len(intent_rows))
    own_accuracy = float((probs.argmax(1)[own] == y[own]).mean()) if base and len(own) else None

    say("negativity head")
    neg_y = np.array([e.negative for e in negative_rows], dtype=int)
    neg_features = _Subset(features, np.array([index[e.text] for e in negative_rows]))
    c_neg, neg_logits = pick_c(neg_features, neg_y, 2, say)
    neg_temperature = fit_temperature(neg_logits, neg_y)

    tfidf, logistic, _ = _sklearn()
    vectorizer = tfidf(analyzer=char_ngrams, sublinear_tf=True)
    vectorizer.fit(texts)
    x_all = features.matrix(np.arange(len(texts)), vectorizer, False)
    intent_model = logistic(C=c_intent, max_iter=5000, class_weight="balanced").fit(x_all[rows], y)
    neg_model = logistic(C=c_neg, max_iter=5000, class_weight="balanced").fit(
        x_all[neg_features.rows], neg_y)

    weights = {
        "idf": vectorizer.idf_.astype(np.float32),
        "intent_w": intent_model.coef_.T.astype(np.float32),
        "intent_b": intent_model.intercept_.astype(np.float32),
        "negativity_w": neg_model.coef_.T.astype(np.float32).reshape(-1),
        "negativity_b": neg_model.intercept_.astype(np.float32),
    }
    meta: dict[str, Any] = {
        "format": 1,
        "labels": labels,
        "vocabulary": sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get),
        "ngram_range": [1, 3],
        "embedding": EMBEDDING,
        "intent_temperature": round(temperature, 4),
        "negativity_temperature": round(neg_temperature, 4),
        "other_threshold": threshold,
        "trained_on": {"file": source, "rows": len(examples), "base_rows": len(base),
                       "sha256": _rows_digest(examples)},
        "hyperparameters": {"intent_C": c_intent, "negativity_C": c_neg, "class_weight": "balanced", "seed": SEED},
        "cross_validated_accuracy": round(float((probs.argmax(1) == y).mean()), 4),
        "cross_validated_per_intent": accuracy,
        "date": datetime.date.today().isoformat(),
    }
    write_model(out, weights, meta)
    return TrainResult(out, tuple(labels), support, accuracy, f1, confused, meta["cross_validated_accuracy"],
                       round(own_accuracy, 4) if own_accuracy is not None else None, meta)


class _Subset(Features):
    """The rows of a :class:`Features` one head trains on (the embedding is computed once for all)."""

    def __init__(self, features: Features, rows: np.ndarray) -> None:
        self.texts, self.dense, self.rows = features.texts, features.dense, rows

    def matrix(self, rows: np.ndarray, vectorizer: Any, fit: bool) -> Any:
        return super().matrix(self.rows[rows], vectorizer, fit)


def _shipped_rows() -> list[Example]:
    """The shipped rows' negativity labels, used when the operator trains without the shipped intents."""
    from speechsvc.training.intent_data import read_examples

    return read_examples(SHIPPED_DATA) if SHIPPED_DATA.is_file() else []


def _rows_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.text}\t{e.intent}\t{e.negative}\n".encode())
    return digest.hexdigest()


def write_model(out: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """``model.npz`` then ``model.json`` (with the npz's sha256), each written aside and renamed into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".model.npz.tmp"
    with tmp.open("wb") as f:
        np.savez_compressed(f, **weights)  # type: ignore[arg-type]
    meta = {**meta, "weights_sha256": hashlib.sha256(tmp.read_bytes()).hexdigest()}
    os.replace(tmp, out / "model.npz")
    tmp_json = out / ".model.json.tmp"
    tmp_json.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp_json, out / "model.json")


def model_card(result: TrainResult, command: str) -> str:
    """A model card for an operator's model: what it was trained on and how well it cross-validates."""
    meta = result.meta
    lines = [
        f"# Intent model: {len(result.labels)} intents",
        "",
        "| | |",
        "|---|---|",
        f"| trained | {meta['date']} with `{command}` |",
        f"| data | `{meta['trained_on']['file']}`: {meta['trained_on']['rows']} labelled utterances"
        + (f" + {meta['trained_on']['base_rows']} shipped ones" if meta["trained_on"]["base_rows"] else "")
        + f" (sha256 of the rows {meta['trained_on']['sha256'][:16]}…) |",
        f"| features | character 1–3-gram TF-IDF + {meta['embedding']} |",
        "| heads | class-balanced logistic regression; C, temperature, `other` threshold by 5-fold cross-validation |",
        f"| cross-validated accuracy | {result.overall:.3f} over all rows"
        + (f", {result.own_rows:.3f} on your rows" if result.own_rows is not None else "") + " |",
        "",
        "## Per intent (out-of-fold: each row scored by a model that did not see it)",
        "",
        "| intent | examples | accuracy | F1 |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{label}` | {result.support[label]} | {result.cv_accuracy[label]:.3f} | {result.cv_f1[label]:.3f} |"
              for label in result.labels]
    if result.confused_with:
        lines += ["", "Overlapping intents (out of fold, a third or more of its rows predicted as another):", ""]
        lines += [f"- `{label}` → `{other}` ({share:.0%})" for label, (other, share) in result.confused_with.items()]
    lines += [
        "",
        "Cross-validated on the training rows themselves: expect less on live calls whose wording the rows do",
        "not cover. Intents with few examples or low accuracy gain most from more labelled rows",
        "(`speechsvc intents export` picks the utterances the model is least sure of).",
        "",
        "Use it: `SPEECHSVC_INTENT_MODEL=<this folder>`; after retraining into the same folder, `kill -HUP` the",
        "service to reload it without dropping calls (refused, with the reason in the log, if the escalation",
        "rules name an intent this model does not predict).",
        "",
    ]
    return "\n".join(lines)
