"""Train and evaluate the voice-emotion head (4 classes: angry, happy, neutral, sad), deterministically.

    .venv/bin/python training/emotion_features.py     # once: features cache (var/emotion_features.npz)
    .venv/bin/python training/train_emotion.py        # evaluate (leave one speaker out) + write models/emotion

Protocol: leave-one-speaker-out over CASIA (3 speakers) and EmoDB (10 speakers), training on clean *and*
telephone-simulated copies of the other speakers, testing on the held-out speaker's clean and telephone
copies separately. Features are z-normalised per speaker (per call at run time); the figures are also
given with global normalisation only (what a call's first segment gets). Metrics: 4-class unweighted
average recall (UAR), angry-vs-rest ROC AUC and UAR. The feature set and C are chosen by this protocol.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from speechsvc.analysis.emotion import EMOTIONS

ROOT = Path(__file__).resolve().parent.parent
C_GRID = (0.01, 0.05, 0.2)
PRIOR_SEGMENTS = 4.0
SMOOTHING = 0.5


def per_speaker_z(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for s in np.unique(speakers):
        m = speakers == s
        mu, sd = x[m].mean(0), x[m].std(0)
        out[m] = (x[m] - mu) / np.where(sd > 1e-6, sd, 1.0)
    return out


def global_z(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = ref.std(0)
    return (x - ref.mean(0)) / np.where(sd > 1e-6, sd, 1.0)


def uar(y: np.ndarray, pred: np.ndarray, classes: int) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in range(classes) if np.any(y == c)]))


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(1)
    angry = EMOTIONS.index("angry")
    return {
        **{f"recall_{e}": round(float(np.mean(pred[y == i] == i)), 4) for i, e in enumerate(EMOTIONS)},
        "uar4": round(uar(y, pred, len(EMOTIONS)), 4),
        "angry_auc": round(auc(probs[:, angry], y == angry), 4),
        "angry_uar": round(uar((y == angry).astype(int), (pred == angry).astype(int), 2), 4),
    }


def features(cache: Any, kind: str, condition: str) -> np.ndarray:
    enc = cache[f"encoder_{condition}"]
    ege = cache[f"egemaps_{condition}"]
    return {"encoder": enc, "egemaps": ege, "encoder+egemaps": np.hstack([ege, enc])}[kind]


def loso(cache: Any, kind: str, c: float, corpus: str) -> dict[str, Any]:
    """Pooled predictions over folds; test speaker held out of training in both conditions."""
    y, spk = cache["label"], cache["speaker"]
    keep = cache["corpus"] == corpus
    clean, tel = features(cache, kind, "clean"), features(cache, kind, "tel")
    z_clean, z_tel = per_speaker_z(clean, spk), per_speaker_z(tel, spk)
    out: dict[str, list[np.ndarray]] = {"clean": [], "tel": [], "clean_global": [], "tel_global": [], "y": []}
    for s in np.unique(spk[keep]):
        train = keep & (spk != s)
        test = spk == s
        model = LogisticRegression(C=c, max_iter=3000).fit(
            np.vstack([z_clean[train], z_tel[train]]), np.concatenate([y[train], y[train]])
        )
        out["clean"].append(model.predict_proba(z_clean[test]))
        out["tel"].append(model.predict_proba(z_tel[test]))
        ref = np.vstack([clean[train], tel[train]])
        out["clean_global"].append(model.predict_proba(global_z(clean[test], ref)))
        out["tel_global"].append(model.predict_proba(global_z(tel[test], ref)))
        out["y"].append(y[test])
    yy = np.concatenate(out["y"])
    return {k: scores(yy, np.vstack(v)) for k, v in out.items() if k != "y"}


def train_final(cache: Any, kind: str, c: float, out: Path, report: dict[str, Any]) -> None:
    y, spk = cache["label"], cache["speaker"]
    clean, tel = features(cache, kind, "clean"), features(cache, kind, "tel")
    z = np.vstack([per_speaker_z(clean, spk), per_speaker_z(tel, spk)])
    model = LogisticRegression(C=c, max_iter=5000).fit(z, np.concatenate([y, y]))
    raw = np.vstack([clean, tel])
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "model.npz",
        global_mean=raw.mean(0).astype(np.float32),
        global_std=np.where(raw.std(0) > 1e-6, raw.std(0), 1.0).astype(np.float32),
        weights=model.coef_.T.astype(np.float32),
        bias=model.intercept_.astype(np.float32),
    )
    meta = {
        "format": 1,
        "labels": list(EMOTIONS),
        "features": kind,
        "egemaps": "egemaps" in kind,
        "encoder": "Whisper base encoder output, mean+std over the segment's real frames (2 x 512)",
        "C": c,
        "prior_segments": PRIOR_SEGMENTS,
        "smoothing": SMOOTHING,
        "trained_on": "CASIA 4-class subset (3 speakers, 600 clips) + EmoDB 4-class subset (10 speakers, 339 "
                      "clips), each clean and telephone-simulated",
        "evaluation": report,
        "date": datetime.date.today().isoformat(),
    }
    (out / "model.json").write_text(json.dumps(meta, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "emotion_features.npz")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "emotion")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "emotion.json")
    args = parser.parse_args()
    cache = np.load(args.cache)
    results: dict[str, Any] = {}
    best = None
    for kind in ("encoder", "egemaps", "encoder+egemaps"):
        for c in C_GRID:
            casia = loso(cache, kind, c, "casia")
            emodb = loso(cache, kind, c, "emodb")
            results[f"{kind} C={c}"] = {"casia": casia, "emodb": emodb}
            # Select on telephone audio, the deployment condition: mean 4-class UAR over both corpora.
            key = (casia["tel"]["uar4"] + emodb["tel"]["uar4"]) / 2
            print(f"{kind:16s} C={c:<5} CASIA clean {casia['clean']} tel {casia['tel']} | "
                  f"EmoDB clean {emodb['clean']} tel {emodb['tel']}", flush=True)
            if best is None or key > best[0]:
                best = (key, kind, c)
    assert best is not None
    _, kind, c = best
    chosen = results[f"{kind} C={c}"]
    print(f"chosen: {kind}, C={c}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"chosen": {"features": kind, "C": c}, "loso": results}, indent=1))
    train_final(cache, kind, c, args.out, chosen)
    print(f"wrote {args.out} and {args.results}")


if __name__ == "__main__":
    main()
