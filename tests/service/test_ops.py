"""Operations: ``speechsvc --version``, build info and process metrics in ``/metrics``, JSON logs."""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys

import httpx
import pytest

from speechsvc import __version__
from speechsvc import log as logsetup
from speechsvc.security import logguard
from tests.support.fakeserver import FakeServer


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "speechsvc.cli", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == f"speechsvc {__version__}"


def test_metrics_carry_build_info_and_process_metrics() -> None:
    with FakeServer() as s:
        text = httpx.get(f"{s.http_url}/metrics").text
    assert f'speechsvc_build_info{{python="{platform.python_version()}",version="{__version__}"}} 1.0' in text
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    assert "python_info" in text


def test_json_logs_are_one_object_per_line_with_the_call_id(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        logsetup.setup("INFO", "json")
        logguard.install()
        token = logsetup.call_id_var.set("CA1")
        try:
            logging.getLogger("speechsvc.test").warning("forged\nline %s", "x")
        finally:
            logsetup.call_id_var.reset(token)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("speechsvc.test").exception("failed")
    finally:
        root.handlers[:], root.level = saved, level
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "speechsvc.test" and first["call_id"] == "CA1"
    assert first["message"] == "forged\\nline x"  # the log guard's escaping holds in JSON too
    assert first["time"].endswith("+00:00")
    assert second["call_id"] == "-" and "ValueError: boom" in second["exception"]


def test_the_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSVC_LOG_FORMAT", "json")
    assert logsetup.default_format() == "json"
    monkeypatch.setenv("SPEECHSVC_LOG_FORMAT", "yaml")
    assert logsetup.default_format() == "text"
