"""The docs stay true (fast tier): the README is the entry (≤ 15 KB), every relative link in it and in docs/
resolves, every setting of ``Settings`` is in docs/configuration.md, and every event type the service sends is in
docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speechsvc.config import Settings
from tests.support.datasets import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_is_an_entry_not_a_manual() -> None:
    assert (REPO / "README.md").stat().st_size <= 15 * 1024


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_every_setting_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8").lower()
    missing = [name for name in Settings.model_fields if name not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def _event_types() -> set[str]:
    from speechsvc.analysis import stage_classes
    from speechsvc.types import Event

    for _ in stage_classes():  # imports every stage module, so their events are defined
        pass
    found: set[str] = set()
    pending = list(Event.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        kind = cls.__dict__.get("TYPE")
        if isinstance(kind, str) and cls.__module__.startswith("speechsvc."):
            found.add(kind)
    return found


def test_every_event_type_is_documented() -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    missing = sorted(t for t in _event_types() if f"`{t}`" not in text)
    assert not missing, f"event types missing from docs/api.md: {missing}"
