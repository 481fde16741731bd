"""Train the shipped text heads (intent, negativity) from the project's own data, deterministically.

    .venv/bin/python training/train_text.py [--data models/text/intent_train.tsv]
        [--out models/text]

The trainer is the one operators run (`speechsvc train intent`, speechsvc.training.intent_train): character
1–3-gram TF-IDF of the normalised text plus the multilingual Universal Sentence Encoder embedding; class-balanced
logistic regression heads; C, temperature and the `other` threshold by 5-fold cross-validation on the training
data only: ../shared/eval/intent_dev.tsv is evaluation-only and is never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechsvc.training.intent_data import read_examples
from speechsvc.training.intent_train import SHIPPED_DATA, train

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHIPPED_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "text")
    args = parser.parse_args()
    source = str(args.data.relative_to(ROOT)) if args.data.resolve().is_relative_to(ROOT) else str(args.data)
    result = train(read_examples(args.data), args.out, source=source, say=print)
    print(f"cross-validated accuracy {result.overall:.3f}; wrote {args.out / 'model.npz'} and model.json")


if __name__ == "__main__":
    main()
