"""The speaker encoder's weights: Resemblyzer's GE2E voice encoder, shipped inside its PyPI wheel.

``resemblyzer==0.1.4`` (Apache-2.0, Resemble AI; wheel 15.7 MB) carries ``resemblyzer/pretrained.pt``: a 3-layer
LSTM (40 mel bands → 256) and a 256-d projection trained with the GE2E loss on LibriSpeech, VoxCeleb 1 and 2.
The package itself imports torch and librosa, so it is installed without its dependencies
(``pip install --no-deps resemblyzer==0.1.4``) and never imported: :func:`install_speaker_encoder` reads the
checkpoint (PyTorch's legacy pickle format) with the standard library, checks its sha256 and writes the arrays
the encoder needs as ``encoder.npz`` under the speechsvc home. :mod:`speechsvc.speech.speaker` runs it with
numpy. Idempotent, like the Whisper assembly.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import json
import logging
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from speechsvc.errors import ModelUnavailable

log = logging.getLogger(__name__)

SPEAKER_PACKAGE = "resemblyzer"
SPEAKER_CHECKPOINT = "resemblyzer/pretrained.pt"
SPEAKER_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
SPEAKER_INSTALL_HINT = "pip install --no-deps resemblyzer==0.1.4"
ENCODER_FILE = "encoder.npz"
# The arrays of the checkpoint's model_state that the encoder runs (the GE2E similarity scale is training-only).
ENCODER_KEYS = tuple(
    [f"lstm.{kind}_l{layer}" for layer in range(3) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["linear.weight", "linear.bias"]
)

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64,
           "IntStorage": np.int32, "HalfStorage": np.float16}


def read_legacy_checkpoint(f: BinaryIO) -> dict[str, Any]:
    """A checkpoint written by ``torch.save`` before PyTorch 1.6 (not a zip file), without torch.

    The format: three small pickles (magic number, protocol version, system info), the object's pickle whose
    tensors refer to storages by key (``persistent_load``), the list of storage keys, then each storage's raw
    little-endian data prefixed by its element count. Tensors come back as numpy arrays.

    Raises:
        ModelUnavailable: the file is not such a checkpoint or holds something other than tensors and dicts.
    """
    try:
        pickle.load(f)  # magic number
        if pickle.load(f) != 1001:
            raise ModelUnavailable("unsupported checkpoint protocol")
        if not pickle.load(f).get("little_endian", False):
            raise ModelUnavailable("big-endian checkpoint")
        storages: dict[str, tuple[str, int]] = {}
        tensors: list[tuple[dict[str, Any], str, int, tuple[int, ...], tuple[int, ...]]] = []

        def rebuild(storage: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: object) -> dict[str, Any]:
            holder: dict[str, Any] = {}
            tensors.append((holder, storage, offset, tuple(size), tuple(stride)))
            return holder

        allowed: dict[tuple[str, str], Callable[..., Any] | str] = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): rebuild,
            **{("torch", name): name for name in _DTYPES},
        }

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                try:
                    return allowed[(module, name)]
                except KeyError:
                    raise pickle.UnpicklingError(f"unexpected {module}.{name} in checkpoint") from None

            def persistent_load(self, pid: Any) -> str:
                _, kind, key, _location, size, _view = pid
                storages.setdefault(key, (kind, size))
                return str(key)

        obj = Unpickler(f).load()
        data: dict[str, np.ndarray] = {}
        for key in pickle.load(f):
            kind, size = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(_DTYPES[kind]).newbyteorder("<")
            raw = f.read(count * dtype.itemsize)
            if count != size or len(raw) != count * dtype.itemsize:
                raise ModelUnavailable(f"storage {key} is truncated")
            data[str(key)] = np.frombuffer(raw, dtype=dtype)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"not a readable legacy PyTorch checkpoint: {e}") from e
    for holder, storage, offset, shape, stride in tensors:
        flat = data[storage]
        itemsize = flat.dtype.itemsize
        holder["array"] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape, strides=[s * itemsize for s in stride]).copy()
    unwrapped: dict[str, Any] = _unwrap(obj)
    return unwrapped


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, dict) and set(obj) == {"array"}:
        return obj["array"]
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_unwrap(v) for v in obj)
    return obj


def checkpoint_path() -> Path:
    """Where the installed resemblyzer wheel put its weights (the package is not imported: it needs torch).

    Raises:
        ModelUnavailable: the package is not installed.
    """
    try:
        path = Path(str(importlib.metadata.distribution(SPEAKER_PACKAGE).locate_file(SPEAKER_CHECKPOINT)))
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(f"the speaker encoder's package is not installed; run: {SPEAKER_INSTALL_HINT}") from None
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing; reinstall: {SPEAKER_INSTALL_HINT}")
    return path


def install_speaker_encoder(target: Path) -> Path:
    """Convert the wheel's checkpoint into ``target/encoder.npz``; return the file. Idempotent.

    Raises:
        ModelUnavailable: the package is missing, or its checkpoint has the wrong digest or content.
    """
    out = target / ENCODER_FILE
    stamp = target / ".verified"
    if out.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == SPEAKER_SHA256:
        return out
    source = checkpoint_path()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SPEAKER_SHA256:
        raise ModelUnavailable(f"{source} has sha256 {digest}, expected {SPEAKER_SHA256}; "
                               f"reinstall: {SPEAKER_INSTALL_HINT}")
    with source.open("rb") as f:
        state = read_legacy_checkpoint(f).get("model_state", {})
    missing = [k for k in ENCODER_KEYS if k not in state]
    if missing:
        raise ModelUnavailable(f"{source} lacks {missing}")
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "encoder.tmp.npz"
    arrays: dict[str, Any] = {k: np.asarray(state[k], np.float32) for k in ENCODER_KEYS}
    np.savez(tmp, **arrays)
    tmp.replace(out)
    stamp.write_text(json.dumps({"sha256": SPEAKER_SHA256, "source": f"{SPEAKER_PACKAGE}==0.1.4"}))
    log.info("installed the speaker encoder into %s", target)
    return out


def check_speaker_encoder(target: Path) -> list[str]:
    """Problems with an installed encoder directory; empty when it is usable."""
    path = target / ENCODER_FILE
    try:
        with np.load(path) as npz:
            missing = [k for k in ENCODER_KEYS if k not in npz.files]
    except (OSError, ValueError) as e:
        return [f"{path} is missing or unreadable: {e}"]
    return [f"{path} lacks {missing}"] if missing else []


def speaker_encoder_path(target: Path) -> Path:
    """The encoder file, converted from the installed wheel on first use.

    Raises:
        ModelUnavailable: with what to install.
    """
    if check_speaker_encoder(target):
        install_speaker_encoder(target)
    problems = check_speaker_encoder(target)
    if problems:
        raise ModelUnavailable("speaker encoder is not usable: " + "; ".join(problems)
                               + f". Run `speechsvc models install` (needs: {SPEAKER_INSTALL_HINT}).")
    return target / ENCODER_FILE
