"""The shipped heads (fast tier, no model loaded): ``models/`` at the top of the repository, found by the one
function that resolves them in a checkout and in an installed wheel (which carries them as package data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechsvc import config
from speechsvc.config import Settings, shipped_heads_dir
from speechsvc.models import check_head
from tests.support.datasets import REPO


def test_a_checkout_reads_the_heads_from_models_at_the_top() -> None:
    assert shipped_heads_dir() == REPO / "models" == Settings().heads_dir
    for head in ("text", "emotion"):
        assert check_head(shipped_heads_dir() / head) == []
        assert (shipped_heads_dir() / head / "MODEL_CARD.md").is_file()
    assert (shipped_heads_dir() / "text" / "intent_train.tsv").is_file()  # `speechsvc train intent --base default`
    assert not list((REPO / "speechsvc" / "models").glob("*/model.json")), "heads are data: models/, not the package"


def test_an_installed_wheel_reads_the_copy_inside_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "speechsvc"
    (package / "models" / "text").mkdir(parents=True)
    monkeypatch.setattr(config, "PACKAGE_DIR", package)
    assert shipped_heads_dir() == tmp_path / "site-packages" / "models"  # no copy inside: the checkout layout
    (package / "models" / "text" / "model.json").write_text("{}", encoding="utf-8")
    assert shipped_heads_dir() == package / "models"
