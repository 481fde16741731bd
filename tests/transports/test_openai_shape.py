"""The OpenAI-compatible API's shapes, driven by the official ``openai`` SDK (a client we did not write) against
the real app with the fake engine (a tone's transcript is scripted by its pitch), so it runs in the fast tier:
translations, usage, verbose_json segments with measured values only, words without punctuation, granularities
refused where OpenAI refuses them, the model list's ``created``, and OpenAI's error body on every error path
(unknown paths, wrong methods, missing fields) instead of FastAPI's ``{"detail"}``. The same with real Whisper:
tests/transports/test_openai_api.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from speechsvc.security.keys import KeyStore
from tests.support.platforms import FakeServer, quiet, tone, write_wav


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    with FakeServer(texts={440: "设定二十九度。", 660: "Hello, world. Don't go."}, keys_file=keys) as s:
        s.key = KeyStore(keys).create("default", "stream")[0]  # type: ignore[attr-defined]
        yield s


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One utterance a clip (the fake's word timings are even over a request: right for one utterance)."""
    return {hz: write_wav(tmp_path_factory.mktemp("oa") / f"{hz}.wav", [quiet(0.3), tone(hz, 0.8), quiet(0.5)])
            for hz in (440, 660)}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two utterances: a 440 Hz tone (scripted Chinese), a 660 Hz one (scripted English); 3.4 s."""
    return write_wav(tmp_path_factory.mktemp("oa") / "call.wav",
                     [quiet(0.3), tone(440, 0.8), quiet(1.0), tone(660, 0.8), quiet(0.5)])


def client(fake: FakeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{fake.port}/v1", api_key=fake.key,  # type: ignore[attr-defined]
                         max_retries=0, timeout=60)


def test_json_carries_duration_usage(fake: FakeServer, clip: Path) -> None:
    with clip.open("rb") as f:
        result = client(fake).audio.transcriptions.create(model="whisper-1", file=f)
    assert result.text.startswith("设定二十九度。") and "Hello, world." in result.text
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 4  # 3.4 s, up


def test_verbose_json_segments_carry_measured_values_only(fake: FakeServer, clip: Path) -> None:
    with clip.open("rb") as f:
        result = client(fake).audio.transcriptions.create(model="whisper-1", file=f,
                                                            response_format="verbose_json")
    assert result.language == "chinese" and result.usage is not None and result.usage.seconds == 4  # type: ignore[union-attr]
    assert result.segments is not None and len(result.segments) == 2
    for s in result.segments:
        raw = s.model_dump(exclude_unset=True)
        assert "tokens" not in raw  # no token ids from a merged-chunk decode: omitted, not invented as []
        assert raw["no_speech_prob"] == 0.0  # the fake decoder's own value
        assert raw["compression_ratio"] > 0 and raw["avg_logprob"] == pytest.approx(np.log(0.9), abs=1e-3)  # its 0.9
    assert result.segments[0].text == "设定二十九度。" and result.segments[0].start < result.segments[1].start


def test_words_have_no_punctuation(fake: FakeServer, single: dict[int, Path]) -> None:
    raw = []
    fake.engine.recognizer.words = True  # type: ignore[attr-defined]
    for hz in (440, 660):
        with single[hz].open("rb") as f:
            result = client(fake).audio.transcriptions.create(model="whisper-1", file=f,
                                                                response_format="verbose_json",
                                                                timestamp_granularities=["word"])
        assert result.words is not None and result.segments is None
        assert all(0 <= w.start <= w.end <= result.duration for w in result.words)
        raw += [w.model_dump() for w in result.words]
    fake.engine.recognizer.words = False  # type: ignore[attr-defined]
    assert [w["word"] for w in raw] == ["设", "定", "二", "十", "九", "度", "Hello", "world", "Don't", "go"]
    assert raw[5]["punctuated_word"] == "度。" and raw[6]["punctuated_word"] == "Hello,"


def test_timestamp_granularities_need_verbose_json(fake: FakeServer, clip: Path) -> None:
    """OpenAI refuses granularities with any format but verbose_json; they used to be ignored silently."""
    with clip.open("rb") as f, pytest.raises(openai.BadRequestError) as e:
        client(fake).audio.transcriptions.create(model="whisper-1", file=f, response_format="json",
                                                   timestamp_granularities=["word"])
    assert e.value.body["param"] == "timestamp_granularities"  # type: ignore[index]


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
def test_translations(fake: FakeServer, clip: Path) -> None:
    with clip.open("rb") as f:
        result = client(fake).audio.translations.create(model="whisper-1", file=f)
    assert "Hello, world." in result.text
    with clip.open("rb") as f:
        verbose = client(fake).audio.translations.create(model="whisper-1", file=f, response_format="verbose_json")
    assert verbose.language == "english" and verbose.segments and len(verbose.segments) == 2
    with clip.open("rb") as f:
        srt = client(fake).audio.translations.create(model="whisper-1", file=f, response_format="srt")
    assert str(srt).startswith("1\n00:00:0")


def test_models_have_a_real_created(fake: FakeServer) -> None:
    models = list(client(fake).models.list())
    assert {m.id for m in models} >= {"whisper-1", "fake"}
    assert all(time.time() - 86400 * 365 < m.created <= time.time() for m in models)
    assert client(fake).models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        client(fake).models.retrieve("gpt-4o-transcribe")


def test_every_error_is_an_openai_error(fake: FakeServer, clip: Path) -> None:
    base = f"http://127.0.0.1:{fake.port}/v1"
    with clip.open("rb") as f, pytest.raises(openai.BadRequestError) as e:
        client(fake).audio.transcriptions.create(model="whisper-1", file=f, response_format="xml")  # type: ignore[arg-type]
    assert e.value.body["param"] == "response_format"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client(fake).post("/audio/speeches", cast_to=httpx.Response, body={})
    answers = [
        httpx.post(f"{base}/audio/transcriptions", data={"model": "whisper-1"}),  # no file
        httpx.post(f"{base}/audio/transcriptions", content=b"x", headers={"content-type": "application/json"}),
        httpx.get(f"{base}/audio/transcriptions"),
        httpx.post(f"{base}/audio/nothing-here", files={"file": ("a.wav", clip.read_bytes())}),
        httpx.post(f"{base}/audio/translations", files={"file": ("a.wav", b"not audio")}, data={"model": "whisper-1"}),
    ]
    assert [a.status_code for a in answers] == [400, 400, 405, 404, 400]
    for a in answers:
        error = a.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert answers[0].json()["error"]["param"] == "file" and answers[2].headers["allow"] == "POST"


def test_no_language_means_detect(fake: FakeServer, single: dict[int, Path]) -> None:
    """OpenAI clients leave ``language`` out and expect it detected: the decoder gets no language (detect), not the
    server's default for calls; an explicit one is passed on."""
    asr = fake.engine.recognizer
    for language, wanted in ((None, None), ("en", "en"), ("zh", "zh")):
        asr.languages.clear()
        with single[660].open("rb") as f:
            kw = {"language": language} if language else {}
            client(fake).audio.transcriptions.create(model="whisper-1", file=f, **kw)  # type: ignore[call-overload]
        assert asr.languages and set(asr.languages) == {wanted}, (language, asr.languages)
