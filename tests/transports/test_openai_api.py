"""The OpenAI-compatible API driven by the official ``openai`` Python SDK (a client we did not write), against a
real server and real audio: every response format, the model list, and errors in OpenAI's own shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from speechsvc.speech.audio import decode_file, encode_file
from tests.support.datasets import eval_path, fixture_clip
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mandarin clip as MP3 (any container works)."""
    audio, rate = decode_file(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0001.wav"))  # 设定二十九度
    path = tmp_path_factory.mktemp("oa") / "clip.mp3"
    encode_file(path, audio, rate)
    return path


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.http}/v1", api_key=server.key, max_retries=0, timeout=120)


def run(server: LiveServer, mp3: Path, **kw: object) -> object:
    with mp3.open("rb") as f:
        return client(server).audio.transcriptions.create(model="whisper-1", file=f, **kw)  # type: ignore[call-overload]


async def test_every_response_format(server: LiveServer, mp3: Path) -> None:
    loop = asyncio.get_running_loop()
    text_json = await loop.run_in_executor(None, lambda: run(server, mp3))
    assert "设定" in text_json.text  # type: ignore[attr-defined]
    verbose = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="verbose_json",
                                                           language="zh", timestamp_granularities=["segment"]))
    assert verbose.language == "chinese" and 2.0 < verbose.duration < 3.0  # type: ignore[attr-defined]
    (segment,) = verbose.segments  # type: ignore[attr-defined]
    assert "设定" in segment.text and 0 <= segment.start < segment.end <= verbose.duration + 0.1  # type: ignore[attr-defined]
    worded = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="verbose_json", language="zh",
                                                          timestamp_granularities=["word", "segment"]))
    words = worded.words  # type: ignore[attr-defined]
    assert "".join(w.word for w in words) in worded.text and len(words) >= 4  # type: ignore[attr-defined]
    assert all(0 <= w.start <= w.end <= worded.duration + 0.1 for w in words)  # type: ignore[attr-defined]
    assert [w.start for w in words] == sorted(w.start for w in words) and worded.segments  # type: ignore[attr-defined]
    only_words = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="verbose_json",
                                                              timestamp_granularities=["word"]))
    assert only_words.words and not getattr(only_words, "segments", None)  # type: ignore[attr-defined]
    plain = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="text"))
    assert "设定" in str(plain)
    srt = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="srt"))
    assert str(srt).startswith("1\n00:00:0") and " --> " in str(srt)
    vtt = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="vtt"))
    assert str(vtt).startswith("WEBVTT")
    models = await loop.run_in_executor(None, lambda: [m.id for m in client(server).models.list()])
    assert "whisper-1" in models and "whisper-base-ct2" in models


async def test_errors_are_openai_errors(server: LiveServer, mp3: Path, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(openai.BadRequestError, match="language 'fr'"):
        await loop.run_in_executor(None, lambda: run(server, mp3, language="fr"))
    with pytest.raises(openai.BadRequestError, match="model 'gpt-4o"):
        def wrong_model() -> object:
            with mp3.open("rb") as f:
                return client(server).audio.transcriptions.create(model="gpt-4o-transcribe", file=f)
        await loop.run_in_executor(None, wrong_model)
    garbage = tmp_path / "x.wav"
    garbage.write_bytes(b"not audio")
    with pytest.raises(openai.BadRequestError, match="invalid_audio"):
        await loop.run_in_executor(None, lambda: run(server, garbage))


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
async def test_translation_is_whispers_translate_task(server: LiveServer, mp3: Path) -> None:
    """设定二十九度 ("set 29 degrees") through Whisper's translate task: English text, not the Chinese."""
    loop = asyncio.get_running_loop()

    def translate() -> object:
        with mp3.open("rb") as f:
            return client(server).audio.translations.create(model="whisper-1", file=f, response_format="verbose_json")

    result = await loop.run_in_executor(None, translate)
    text = result.text  # type: ignore[attr-defined]
    assert result.language == "english" and text.isascii() and ("29" in text or "twenty" in text.lower()), text  # type: ignore[attr-defined]
    verbose = await loop.run_in_executor(None, lambda: run(server, mp3, response_format="verbose_json"))
    (segment,) = verbose.segments  # type: ignore[attr-defined]
    assert 0 <= segment.no_speech_prob < 0.5 and segment.avg_logprob < 0 and segment.compression_ratio > 0


async def test_no_language_is_detected(server: LiveServer) -> None:
    """An English recording sent without ``language`` (as OpenAI clients do) comes back in English, although the
    server's default language for calls is Mandarin; ``language="en"`` still works."""
    path = fixture_clip("asterisk_queue-periodic-announce").path
    loop = asyncio.get_running_loop()
    detected = await loop.run_in_executor(None, lambda: run(server, path, response_format="verbose_json"))
    assert detected.language == "english", detected.text  # type: ignore[attr-defined]
    assert detected.text.isascii() and "representative" in detected.text.lower(), detected.text  # type: ignore[attr-defined]
    explicit = await loop.run_in_executor(None, lambda: run(server, path, language="en"))
    assert "representative" in explicit.text.lower(), explicit.text  # type: ignore[attr-defined]
