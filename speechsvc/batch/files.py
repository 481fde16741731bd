"""Inputs of batch jobs: files, directories, manifests and fsspec URLs; the policy that decides which of them
a REST job may read; and decoding them with a bound on the decoded length.

:class:`InputPolicy` is checked *before anything is read*: a path is resolved (symlinks included) and must lie
under an allowed root before it is opened, listed or tested for existence; a manifest's entries and a
directory's files are checked the same way once their (allowed) container is read; URL schemes are allowlisted
(``file://`` is a local path and meets the roots). The command line (an operator's own shell) uses no policy.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speechsvc.errors import Forbidden
from speechsvc.speech.audio import decode_with_source_rate
from speechsvc.types import Float32Array

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".amr", ".mp4", ".webm", ".gsm"}
MANIFEST_SUFFIXES = {".csv", ".jsonl", ".ndjson"}


class TooManyInputs(ValueError):
    """A job's inputs expand to more files than ``max_job_inputs``."""


@dataclass(frozen=True)
class InputPolicy:
    """Which server-side inputs a REST job may name."""

    # Resolved folders; nothing else on the server may be read.
    roots: tuple[Path, ...]
    # URL schemes (lower case) that may be read through fsspec, e.g. {"s3"}.
    schemes: frozenset[str]
    # Files one job may expand to.
    max_inputs: int

    @classmethod
    def of(cls, roots: Iterable[str], schemes: Iterable[str], max_inputs: int) -> InputPolicy:
        return cls(tuple(Path(r).resolve() for r in roots), frozenset(s.lower() for s in schemes), max_inputs)

    def check_path(self, item: str) -> Path:
        """The resolved path of a local input, under an allowed root. Reads nothing but the path's symlinks.

        Raises:
            Forbidden: outside every root (the message names only what the client sent).
        """
        resolved = Path(item).resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise Forbidden(f"{item} is outside the allowed roots (SPEECHSVC_BATCH_ROOTS)")
        return resolved

    def check_url(self, item: str) -> str:
        """Raises:
        Forbidden: a URL scheme not in SPEECHSVC_BATCH_URL_SCHEMES.
        """
        scheme = item.split("://", 1)[0].lower()
        if scheme not in self.schemes:
            raise Forbidden(f"URL scheme {scheme[:20]!r} is not allowed (SPEECHSVC_BATCH_URL_SCHEMES)")
        return item


def _is_url(item: str) -> bool:
    return "://" in item


def _manifest_entries(path: Path) -> list[tuple[str, str | None]]:
    """``(input, agent id or None)`` per row of a manifest."""
    out: list[tuple[str, str | None]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                value = row.get("path") or row.get("file") or row.get("audio")
                if value:
                    out.append((value, row.get("agent_id") or None))
    else:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                value = row.get("path") if isinstance(row, dict) else None
                if isinstance(value, str) and value:
                    agent = row.get("agent_id")
                    out.append((value, str(agent) if agent not in (None, "") else None))
    return [(value if _is_url(value) else str(path.parent / value), agent) for value, agent in out]


def expand_inputs(
    inputs: Iterable[str], policy: InputPolicy | None = None, agents: dict[str, str] | None = None
) -> list[str]:
    """Files, directories (recursive, audio suffixes) and manifests (.csv with a path/file column, .jsonl with
    a "path" key; relative paths are relative to the manifest), in a stable order without duplicates. A
    manifest row's ``agent_id`` is put in ``agents`` (input -> agent id) when given.

    With a ``policy`` (REST jobs) every path is checked before it is read, manifest entries and directory
    files included, and the result must exist and stay within ``max_inputs``. Blocking: run it in a thread.

    Raises:
        Forbidden: a path outside the roots or a URL scheme not allowed (policy only).
        TooManyInputs: more than ``policy.max_inputs`` files.
        FileNotFoundError: a path that does not exist (policy only).
        ValueError: a manifest that cannot be parsed.
    """
    out: list[str] = []
    limit = policy.max_inputs if policy else None

    def add(item: str) -> None:
        out.append(item)
        if limit is not None and len(out) > limit:
            raise TooManyInputs(f"the inputs expand to more than {limit} files (SPEECHSVC_MAX_JOB_INPUTS)")

    def one(item: str, from_manifest: bool, agent: str | None = None) -> None:
        if item.lower().startswith("file://"):
            item = item[len("file://"):]
        if _is_url(item):
            add(policy.check_url(item) if policy else item)
            if agent and agents is not None:
                agents[out[-1]] = agent
            return
        path = policy.check_path(item) if policy else Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix.lower() in AUDIO_SUFFIXES and child.is_file():
                    add(str(policy.check_path(str(child)) if policy else child))
        elif path.suffix.lower() in MANIFEST_SUFFIXES and not from_manifest:
            for entry, entry_agent in _manifest_entries(path):
                one(entry, True, entry_agent)
        elif policy is not None and not path.is_file():
            raise FileNotFoundError(f"{item} does not exist on the server")
        else:
            add(str(path) if policy else item)
            if agent and agents is not None:
                agents[out[-1]] = agent

    for item in inputs:
        one(item, False)
    return list(dict.fromkeys(out))


def load_audio(item: str, max_seconds: float = 4 * 3600.0) -> tuple[Float32Array, int]:
    """Decode a local path or any fsspec URL, at most ``max_seconds`` of it (a decompression bomb stops there):
    16 kHz float32 (channels, n), and the rate the file was recorded at."""
    if _is_url(item) and not item.lower().startswith("file://"):
        import fsspec

        with fsspec.open(item, "rb") as f:
            return decode_with_source_rate(f, max_seconds)
    return decode_with_source_rate(item[len("file://"):] if item.lower().startswith("file://") else item,
                                   max_seconds)
