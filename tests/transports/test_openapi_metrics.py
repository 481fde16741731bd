"""The HTTP API judged by tools we did not write, on the real app with the fake engine (fast tier):

- schemathesis (``st run /openapi.json``, every phase: examples, coverage, fuzzing, stateful) with 0 failures:
  request bodies declared, every answered status and content type documented, ``Allow`` right;
- ``/metrics`` as Prometheus and OpenMetrics scrapers ask for it, parsed by prometheus_client's own OpenMetrics
  parser: content negotiation, no ``_created`` series, the GC collector, the real-time factor with its unit,
  ``HEAD``.

Every path is covered, the jobs API (``/v1/jobs*``) included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.support.platforms import FakeServer

# Positive tests of the audio endpoints send schema-valid bytes that are no audio (a schema cannot say "a decodable
# recording"): their 400 is the right answer there. Everything else runs with schemathesis's defaults.
CONFIG = """
[[operations]]
include-path-regex = "^/v1/audio/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]

# A schema-valid job names inputs the server cannot have (paths outside BATCH_ROOTS, files that are not audio):
# its 403 or 422 is the right answer, as is 404 for a job id that does not exist.
[[operations]]
include-path-regex = "^/v1/jobs"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "413", "422", "429", "503"]
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer(rate_burst=100_000, auth_fail_burst=100_000) as s:  # thousands of requests in seconds
        yield s


def test_schemathesis_finds_nothing(fake: FakeServer, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install -e .[dev])")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [st, "--config-file", str(config), "run", f"http://127.0.0.1:{fake.port}/openapi.json", "--max-examples",
         "10", "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout or "0 failures" in done.stdout or "passed" in done.stdout.lower()


def test_metrics_negotiate_openmetrics(fake: FakeServer) -> None:
    url = f"http://127.0.0.1:{fake.port}/metrics"
    text = httpx.get(url)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    om = httpx.get(url, headers={"accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(om.text)}  # raises on anything not OpenMetrics
    assert om.text.rstrip().endswith("# EOF")
    rtf = families["speechsvc_asr_real_time_factor_ratio"]
    assert rtf.type == "histogram" and rtf.unit == "ratio"
    assert "python_gc_collections" in families
    assert not any(s.name.endswith("_created") for f in families.values() for s in f.samples)
    assert "_created" not in text.text
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/plain")
