"""Diarization on every surface that takes a recorded file (issue 29), on committed audio (two real, different
voices: Asterisk's Allison and an eSpeak Mandarin voice, in turns, as one mono file): ``speechsvc transcribe
--diarize`` (its function), gRPC ``Transcribe`` and the OpenAI API's ``verbose_json`` (through the official SDK)
say who spoke each segment, and the turns of one voice share one speaker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import openai
import pytest

from speechsvc.batch.speakers import SpeakerSplit
from speechsvc.batch.transcribe import transcribe_file
from speechsvc.cli import build_parser
from speechsvc.config import Settings
from speechsvc.models.speaker import speaker_encoder_path
from speechsvc.speech.audio import decode_file, encode_file
from speechsvc.speech.speaker import SpeakerEncoder
from speechsvc.v1 import speechsvc_pb2 as pb
from speechsvc.v1 import speechsvc_pb2_grpc as pb_grpc
from tests.support.datasets import fixture_clip
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model

SR = 16000
TURNS = ("asterisk_agent-newlocation", "espeak_zh_bill", "asterisk_pls-hold-while-try", "espeak_zh_network")


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, int, int]]]:
    """The mono file and its turns (voice, start_ms, end_ms), 0.7 s apart."""
    parts, turns, at = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for name in TURNS:
        audio = decode_file(fixture_clip(name).path)[0][0]
        audio = audio / max(1e-6, float(np.sqrt(np.mean(audio**2)))) * 0.05
        turns.append((name.split("_")[0], at * 1000 // SR, (at + audio.size) * 1000 // SR))
        parts += [audio.astype(np.float32), np.zeros(SR * 7 // 10, np.float32)]
        at += audio.size + SR * 7 // 10
    path = tmp_path_factory.mktemp("diar") / "mono.wav"
    encode_file(path, np.concatenate(parts)[None, :], SR)
    return path, turns


def _voice_of(turns: list[tuple[str, int, int]], start_ms: int, end_ms: int) -> str:
    return max(turns, key=lambda t: min(end_ms, t[2]) - max(start_ms, t[1]))[0]


def _check(turns: list[tuple[str, int, int]], segments: list[tuple[int, int, str]]) -> None:
    """Every segment has a speaker, one per voice, and the two voices have different ones."""
    assert segments and all(spk for _, _, spk in segments), segments
    by_voice: dict[str, set[str]] = {}
    for start, end, spk in segments:
        by_voice.setdefault(_voice_of(turns, start, end), set()).add(spk)
    assert set(by_voice) == {"asterisk", "espeak"}, segments
    assert all(len(v) == 1 for v in by_voice.values()) and by_voice["asterisk"] != by_voice["espeak"], by_voice


def test_transcribe_cli_diarizes_a_mono_file(recognizer, vad_model, mono) -> None:  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(["transcribe", "--diarize", "--speakers", "2", "x.wav"])
    assert args.diarize and args.speakers == 2
    settings = Settings()
    encoder = SpeakerEncoder.load(speaker_encoder_path(settings.speaker_dir))
    path, turns = mono
    result = transcribe_file(path, recognizer.transcribe, vad_model, settings.vad(), None,
                             speaker_split=SpeakerSplit(encoder))
    _check(turns, [(s.start_ms, s.end_ms, s.speaker or "") for s in result.segments])
    plain = transcribe_file(path, recognizer.transcribe, vad_model, settings.vad(), None)
    assert plain.legs == ("mixed",) and all(s.speaker is None for s in plain.segments)


async def test_grpc_and_openai_segments_say_who(server: LiveServer, mono) -> None:  # type: ignore[no-untyped-def]
    path, turns = mono
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        reply = await pb_grpc.SpeechStub(channel).Transcribe(pb.TranscribeRequest(audio=path.read_bytes(), speakers=2))
    _check(turns, [(int(s.start_ms), int(s.end_ms), s.speaker) for s in reply.segments])

    def verbose() -> object:
        client = openai.OpenAI(base_url=f"{server.http}/v1", api_key=server.key, max_retries=0, timeout=120)
        with path.open("rb") as f:
            return client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                                      extra_body={"diarize": "true", "speakers": "2"})

    body = await asyncio.get_running_loop().run_in_executor(None, verbose)
    segments = [(round(s.start * 1000), round(s.end * 1000), str(getattr(s, "speaker", "") or ""))
                for s in body.segments]  # type: ignore[attr-defined]
    _check(turns, segments)
