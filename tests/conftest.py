"""Shared fixtures: models loaded once per test session and a real server on a free port, and the two tiers.
Helpers a test imports (data paths, fakes, servers, clients) live in :mod:`tests.support`; test modules import
nothing from here or from each other (tests/project/test_test_tree.py checks).

Tiers: a test that uses a fixture loading a real model (:data:`MODEL_FIXTURES`) is marked ``model`` here, and
so is every test of a module with ``pytestmark = pytest.mark.model``. ``pytest -m "not model"`` (``make
test-fast``) runs the rest, and in that tier any attempt to load a model fails the test: the fast tier is
guaranteed to load none."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.liveserver import LiveServer

os.environ.setdefault("OMP_NUM_THREADS", "2")

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


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with LiveServer(grpc=True, partial_interval_ms=600) as s:
        yield s
