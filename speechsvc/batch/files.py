"""Inputs of batch jobs: files, directories, manifests and fsspec URLs, and decoding them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from speechsvc.speech.audio import decode_file
from speechsvc.types import Float32Array

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".amr", ".mp4", ".webm", ".gsm"}


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, directories (recursive, audio suffixes) and manifests (.csv with a path/file column, .jsonl with
    a "path" key; relative paths are relative to the manifest), in a stable order without duplicates."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if "://" in item:
            out.append(item)
        elif path.is_dir():
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    value = row.get("path") or row.get("file") or row.get("audio")
                    if value:
                        out.append(value if "://" in value else str(path.parent / value))
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    value = json.loads(line).get("path")
                    if value:
                        out.append(value if "://" in value else str(path.parent / value))
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def load_audio(item: str) -> tuple[Float32Array, int]:
    """Decode a local path or any fsspec URL."""
    if "://" in item and not item.startswith("file://"):
        import fsspec

        with fsspec.open(item, "rb") as f:
            return decode_file(f)
    return decode_file(item.removeprefix("file://"))
