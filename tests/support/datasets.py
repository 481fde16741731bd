"""Where test data lives: the repository root, the evaluation sets in ../shared/eval (a test that needs them
skips, saying why, when they are absent) and the licensed clips committed in tests/data (always present; their
table is tests/data/README.md)."""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL = Path(os.environ.get("SPEECHSVC_EVAL_DIR", REPO.parent / "shared" / "eval"))


def eval_path(*parts: str) -> Path:
    """A path under ../shared/eval; skips the test (with the reason) when it is absent."""
    path = EVAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"eval data absent: {path} (internal data set, see ../shared/eval/README.md)")
    return path


def manifest(folder: str) -> list[dict[str, str]]:
    return list(csv.DictReader(eval_path(folder, "manifest.csv").open()))


DATA = REPO / "tests" / "data"
NODE_DIR = REPO / "tests" / "node"  # third-party node clients (npm ci --prefix tests/node)


@dataclass(frozen=True)
class FixtureClip:
    """One row of tests/data/README.md: licensed audio committed with the repository."""

    path: Path
    seconds: float
    rate: int
    language: str
    source: str
    licence: str
    sha256: str
    text: str

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


# | `audio/NAME.wav` | seconds | rate | language | source | licence | `sha256` | reference text |
_ROW = re.compile(r"^\| `(audio/[^`]+)` \| ([0-9.]+) \| ([0-9]+) \| (\w+) \| ([^|]+) \| ([^|]+) \| "
                  r"`([0-9a-f]{64})` \| (.+) \|$")


def fixture_clips() -> dict[str, FixtureClip]:
    """The committed clips by name (file name without ``.wav``), as tests/data/README.md lists them."""
    clips = {}
    for line in (DATA / "README.md").read_text(encoding="utf-8").splitlines():
        if m := _ROW.match(line):
            path = DATA / m[1]
            clips[path.stem] = FixtureClip(path, float(m[2]), int(m[3]), m[4], m[5].strip(), m[6].strip(), m[7],
                                           m[8].strip())
    return clips


def fixture_clip(name: str) -> FixtureClip:
    """A committed clip (tests/data/audio/NAME.wav): present in every clone, unlike :func:`eval_path`."""
    return fixture_clips()[name]


def eval_or_fixture(parts: tuple[str, ...], name: str) -> Path:
    """The eval file when ../shared/eval is there, else the committed clip ``name`` (for tests that need some
    real speech, not the eval set's statistics)."""
    path = EVAL.joinpath(*parts)
    return path if path.exists() else fixture_clip(name).path
