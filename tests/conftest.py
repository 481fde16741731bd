"""Shared fixtures: the eval data (skipped with a reason when ../shared is absent), the committed fixture audio
(tests/data, always present), models loaded once per test session, and a real server on a free port.

Tiers: a test that uses a fixture loading a real model (:data:`MODEL_FIXTURES`) is marked ``model`` here, and
so is every test of a module with ``pytestmark = pytest.mark.model``. ``pytest -m "not model"`` (``make
test-fast``) runs the rest, and in that tier any attempt to load a model fails the test: the fast tier is
guaranteed to load none."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
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


MODEL_FIXTURES = {"server", "recognizer", "vad_model", "silero"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


def _refuse(*_: object, **__: object) -> None:
    raise AssertionError("a fast-tier test loaded a model; mark it `model` or use a fake")


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_loads_no_model(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.config.getoption("-m").replace(" ", "") != "notmodel":
        yield
        return
    from speechsvc.analysis import emotion, intent
    from speechsvc.speech import asr, speaker, vad

    with pytest.MonkeyPatch.context() as patch:
        for cls in (asr.WhisperRecognizer, vad.SileroModel, intent.TextModel, emotion.EmotionHead,
                    speaker.SpeakerEncoder):
            patch.setattr(cls, "__init__", _refuse)
        patch.setattr(intent, "embedder", _refuse)
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def recognizer():  # type: ignore[no-untyped-def]
    from speechsvc.config import Settings
    from speechsvc.models import whisper_dir
    from speechsvc.speech.asr import WhisperRecognizer

    settings = Settings()
    return WhisperRecognizer(settings.asr(), whisper_dir(settings))


@pytest.fixture(scope="session")
def vad_model():  # type: ignore[no-untyped-def]
    from speechsvc.models import silero_vad_path
    from speechsvc.speech.vad import SileroModel

    return SileroModel(silero_vad_path())


class LiveServer:
    """The real app (uvicorn) on a free port, in a thread with its own event loop."""

    def __init__(self, grpc: bool = False, **settings: object) -> None:
        import uvicorn

        from speechsvc.app import create_app
        from speechsvc.config import Settings

        self.port = free_port()
        settings.setdefault("jobs_dir", Path(tempfile.mkdtemp(prefix="speechsvc-jobs-")))  # no job leaks between runs
        settings.setdefault("audit_log", str(Path(tempfile.mkdtemp(prefix="speechsvc-audit-")) / "audit.log"))
        settings.setdefault("keys_file", Path(tempfile.mkdtemp(prefix="speechsvc-keys-")) / "keys.json")
        self.settings = Settings(port=self.port, grpc_port=-1, audiosocket_port=-1, **settings)  # type: ignore[arg-type]
        from speechsvc.security.keys import KeyStore

        # A key of the default tenant for clients that must send one (the openai SDK always does, and a credential
        # that is not a key is refused even where anonymous clients are served).
        self.key = KeyStore(self.settings.keys_path).create("default", "stream,subscribe,jobs")[0]
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                ws_max_size=self.settings.max_message_bytes + 1024)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)
        self.with_grpc = grpc
        self.grpc = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.app.state.engine

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 120
        while not (self.server.started and getattr(self.app.state, "engine", None) and self.engine.ready):
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        if self.with_grpc:
            from speechsvc.transports.grpc_server import start_grpc_server

            grpc_settings = self.settings.model_copy(update={"grpc_port": 0})
            self.grpc = asyncio.run_coroutine_threadsafe(start_grpc_server(self.engine, grpc_settings),
                                                         self.loop).result(30)
            from speechsvc.transports.audiosocket import AudioSocketServer

            self.audiosocket = AudioSocketServer(self.engine, "customer", "zh")
            asyncio.run_coroutine_threadsafe(self.audiosocket.start("127.0.0.1", 0), self.loop).result(30)
        return self

    @property
    def grpc_target(self) -> str:
        assert self.grpc is not None
        return f"127.0.0.1:{self.grpc.port}"

    def __exit__(self, *exc: object) -> None:
        if self.grpc is not None:
            asyncio.run_coroutine_threadsafe(self.grpc.stop(1.0), self.loop).result(30)
            asyncio.run_coroutine_threadsafe(self.audiosocket.stop(), self.loop).result(30)
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with LiveServer(grpc=True, partial_interval_ms=600) as s:
        yield s
