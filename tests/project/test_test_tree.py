"""The test tree mirrors the package (fast tier, reads files only): every test module sits in tests/<layer>/ where
<layer> is a sub-package of speechsvc (or one of the folders for what no single layer owns), every folder says in
its ``__init__.py`` what it holds, and shared helpers come from :mod:`tests.support` only: no test module imports
another test module or the conftest, and none counts parents of its own ``__file__``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from tests.support.datasets import REPO

TESTS = REPO / "tests"
# Folders for what no single sub-package owns (each __init__.py says which).
NOT_A_LAYER = {"service", "system", "project"}
# Folders that hold no Python tests: the committed audio and the third-party node clients.
NOT_PYTHON = {"data", "node", "__pycache__", ".pytest_cache"}
LAYERS = {p.parent.name for p in (REPO / "speechsvc").glob("*/__init__.py")} - {"v1"}


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if not NOT_PYTHON & set(p.relative_to(TESTS).parts))


def _imported(path: Path) -> set[str]:
    """The modules ``path`` imports (absolute names; a relative import keeps its leading dots)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_every_test_module_lives_in_a_layer_folder() -> None:
    folders = {p.relative_to(TESTS).parts[0] for p in _test_modules()}
    assert not [p for p in _test_modules() if p.parent == TESTS], "a test module at tests/: move it to tests/<layer>/"
    assert folders <= LAYERS | NOT_A_LAYER, f"test folders that mirror no layer: {folders - LAYERS - NOT_A_LAYER}"


def test_every_folder_says_what_it_holds() -> None:
    for folder in sorted(p for p in TESTS.iterdir() if p.is_dir() and p.name not in NOT_PYTHON):
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder.relative_to(REPO)} has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init.relative_to(REPO)}: no docstring"


def test_test_modules_import_helpers_from_support_only() -> None:
    """A test module imports no other test module and not the conftest (fixtures come by name); helpers are in
    tests/support, which imports no test module either."""
    offenders = []
    for path in [*_test_modules(), *(TESTS / "support").glob("*.py")]:
        for name in _imported(path):
            last = name.rsplit(".", 1)[-1]
            if name.startswith(".") or last.startswith("test_") or last == "conftest" or (
                    name.startswith("tests.") and not name.startswith("tests.support")):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "import helpers from tests.support instead:\n" + "\n".join(offenders)


def test_test_modules_take_paths_from_support() -> None:
    """Paths come from :mod:`tests.support.datasets` (``REPO``, ``DATA``, ``EVAL``, ``NODE_DIR``), not from a test
    module's ``__file__``: counted parents break silently when a module moves to another folder."""
    offenders = [str(p.relative_to(REPO)) for p in _test_modules()
                 if any(isinstance(node, ast.Name) and node.id == "__file__"
                        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert not offenders, f"use tests.support.datasets for paths: {offenders}"


def test_every_helper_a_test_imports_exists() -> None:
    """Imports inside test functions included (they run only when their test does)."""
    missing = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.support"):
                module = importlib.import_module(node.module or "")
                missing += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name)]
    assert not missing, f"helpers not in tests/support: {missing}"
