"""Outputs of batch jobs: a folder or any fsspec URL, written atomically; per-call reports and transcripts,
and the job summary. A finished JSON report means a finished call (what resume looks for). On the local file
system the folder is made 0700 and every file 0600: reports hold what customers said."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from speechsvc.analysis import stage_classes
from speechsvc.batch.report import CallReport
from speechsvc.batch.writers import WRITERS


def output_name(item: str) -> str:
    """A file-system-safe name for an input's outputs, unique per input: the readable tail of the path plus a
    digest of the whole of it (``x y.wav`` and ``x_y.wav`` would otherwise share a name). Never a hidden file:
    ``.`` and ``..`` components are dropped and the name never starts with a dot (``../x/y.wav`` → ``x_y.wav-…``)."""
    parts = [part for part in item.split("://")[-1].split("/") if part not in ("", ".", "..")]
    stem = re.sub(r"[^\w.\-]+", "_", "_".join(parts)).lstrip(".-_") or "input"
    digest = hashlib.sha256(item.encode("utf-8")).hexdigest()[:10]
    return f"{stem[-120:]}-{digest}"


class OutputDir:
    """Where a job's outputs go: a local folder or any fsspec URL (``s3://``, ``gs://``, ``file://``, ...).
    Writes are atomic (temporary name, then move), so a finished file is always complete."""

    def __init__(self, location: str | Path) -> None:
        import fsspec

        self.location = str(location)
        self.fs, self.root = fsspec.core.url_to_fs(self.location)
        self.local = "file" in self.fs.protocol if isinstance(self.fs.protocol, tuple) else self.fs.protocol == "file"
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.root, 0o700)
        else:
            self.fs.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.path(name)
        if self.local:
            fd = os.open(target + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(target + ".tmp", target)
            return
        self.fs.pipe_file(target + ".tmp", data)
        self.fs.mv(target + ".tmp", target)

    def read_text(self, name: str) -> str | None:
        try:
            return bytes(self.fs.cat_file(self.path(name))).decode("utf-8")
        except FileNotFoundError:
            return None

    def append_line(self, name: str, line: str) -> None:
        self.write_text(name, (self.read_text(name) or "") + line + "\n")


def write_outputs(out: OutputDir, item: str, report: CallReport, formats: Iterable[str],
                  redacted_audio: bytes | None = None) -> str:
    """Write the report (JSON, always), the requested transcript formats and the redacted audio
    (``<name>.redacted.wav``); JSON last, so a finished JSON means a finished call (what resume looks for)."""
    name = output_name(item)
    if redacted_audio is not None:
        out.write_bytes(f"{name}.redacted.wav", redacted_audio)
    for fmt in formats:
        if fmt != "json":
            out.write_text(f"{name}.{fmt}", WRITERS[fmt](report.transcript()))
    out.write_text(f"{name}.json", report.to_json())
    return out.path(f"{name}.json")


def read_report(out: OutputDir, item: str) -> dict[str, Any] | None:
    text = out.read_text(f"{output_name(item)}.json")
    if text is None:
        return None
    try:
        report = json.loads(text)
    except json.JSONDecodeError:
        return None
    return report if isinstance(report, dict) and "summary" in report else None


def is_done(out: OutputDir, item: str) -> bool:
    return read_report(out, item) is not None


def write_job_summary(out: OutputDir, items: list[str], errors: dict[str, str]) -> dict[str, int]:
    """summary.jsonl and summary.csv: one row per input (done or failed), from the per-call outputs, with each
    analysis stage's columns (``Stage.columns`` of its section); and ``<stage>_summary.json`` for each stage with
    a job-level summary (``Stage.aggregate``: e.g. ``qa_summary.json``, the QA score distribution, the rules
    failing most and per-agent means when calls carry an ``agent_id``)."""
    stages = stage_classes()
    rows = []
    reports = []
    for item in items:
        row: dict[str, Any] = {"input": item, "output": f"{output_name(item)}.json"}
        report = None if item in errors else read_report(out, item)
        if item in errors:
            row.update(status="failed", error=errors[item])
        elif report is not None:
            s = report["summary"]
            row.update(
                status="done", duration_s=s["duration_s"], segments=len(report["segments"]),
                silence_s=s["silence_s"], overtalk_s=s["overtalk_s"],
                **{f"talk_s_{leg['leg']}": leg["talk_s"] for leg in s["legs"]},
            )
            if report.get("agent_id"):
                row["agent_id"] = report["agent_id"]
            for stage in stages:
                if stage.name in report:
                    row.update(stage.columns(report[stage.name]))
            reports.append(report)
        else:
            row.update(status="pending")
        rows.append(row)
    out.write_text("summary.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    out.write_text("summary.csv", buffer.getvalue())
    for stage in stages:
        aggregate = stage.aggregate([r for r in reports if stage.name in r])
        if aggregate is not None:
            out.write_text(f"{stage.name}_summary.json", json.dumps(aggregate, ensure_ascii=False, indent=2))
    return dict(Counter(r["status"] for r in rows))
