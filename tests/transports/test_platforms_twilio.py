"""Twilio Media Streams conformance, driven by third-party implementations: the ``streamdouble`` simulator (PyPI)
places the calls and judges every frame the server sends back against Twilio's protocol, and the ``twilio`` SDK
(PyPI) signs the upgrade. The fake engine makes these protocol checks (a tone's transcript says its pitch and
length); calls run in real time, so the clips are short."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import pytest
import websockets
from streamdouble.audio import wav_to_ulaw_frames
from streamdouble.chaos import Impairments
from streamdouble.protocol import StreamIdentity
from streamdouble.scenario import Dtmf, Say, Scenario
from streamdouble.session import Session, SessionConfig
from twilio.request_validator import RequestValidator

from speechsvc.speech.audio import mulaw_encode
from speechsvc.transports.twilio import TrackClock
from tests.support.platforms import FakeServer, finals, quiet, subscribe, tone, until_ended, write_wav

AUTH_TOKEN = "test-auth-token-not-a-secret"
PUBLIC_URL = "wss://speech.example.com/v1/twilio"


def sid(prefix: str, n: int) -> StreamIdentity:
    return StreamIdentity(call_sid=f"CA{prefix}{n:030d}"[:34])


@pytest.fixture(scope="module")
def fake() -> FakeServer:
    with FakeServer(pii_dtmf="clear") as s:
        yield s


@pytest.fixture(scope="module")
def signed_server() -> FakeServer:
    with FakeServer(twilio_auth_token=AUTH_TOKEN, twilio_public_url=PUBLIC_URL) as s:
        yield s


async def received(ws: websockets.ClientConnection) -> list[str]:
    """Whatever the server sends until it closes."""
    texts: list[str] = []
    try:
        async for m in ws:
            texts.append(str(m))
    except websockets.ConnectionClosed:
        pass
    return texts


def fork_config(agent_wav: Path, **kw: object) -> SessionConfig:
    return SessionConfig(fork=True, strict_fork=True, tracks=["inbound", "outbound"],
                         agent_frames=wav_to_ulaw_frames(agent_wav), response_timeout_s=1, quiet_period_s=0.3,
                         max_drain_s=1, **kw)  # type: ignore[arg-type]


async def test_fork_with_packet_loss_sends_nothing_back_and_keeps_both_legs_on_one_clock(
    fake: FakeServer, tmp_path: Path
) -> None:
    """<Start><Stream track="both_tracks"> with 10 % of the caller's frames lost: zero protocol violations in
    strict fork mode (speechsvc used to send its events on the socket), and the two legs, which speak at the same
    instants, get the same utterance times within one 20 ms frame (lost frames used to pull the caller's times
    early: frames were appended in arrival order, ignoring media.timestamp)."""
    customer = write_wav(tmp_path / "c.wav", [quiet(1.2), tone(440, 0.8), quiet(0.6), tone(440, 0.5), quiet(0.7)])
    agent = write_wav(tmp_path / "a.wav", [quiet(1.2), tone(660, 0.8), quiet(0.6), tone(660, 0.5), quiet(0.7)])
    identity = sid("loss", 1)
    cfg = fork_config(agent, impairments=Impairments(loss=0.10), chaos_seed=3,
                      custom_parameters={"language": "en", "agentId": "a-7"})
    events_ws = await subscribe(fake, identity.call_sid)
    result = await Session(fake.ws("/v1/twilio"), wav_to_ulaw_frames(customer), config=cfg, identity=identity).run()
    events = await until_ended(events_ws)
    assert result.violation_count == 0, [str(v) for v in result.violations]
    assert result.frames_dropped > 0 and result.media_frames_received == 0
    legs = {leg: [e for e in finals(events) if e["leg"] == leg] for leg in ("customer", "agent")}
    assert len(legs["customer"]) == len(legs["agent"]) == 2
    for c, a in zip(legs["customer"], legs["agent"], strict=True):
        assert abs(c["start_ms"] - a["start_ms"]) <= 20 and abs(c["end_ms"] - a["end_ms"]) <= 20, (c, a)
    ended = {leg["leg"]: leg["audio_ms"] for leg in events[-1]["legs"]}
    assert abs(ended["customer"] - ended["agent"]) <= 20
    assert events[0]["language"] == "en" and events[0]["metadata"]["agentId"] == "a-7"
    assert events[0]["metadata"]["streamSid"] == result.identity.stream_sid


async def test_bidirectional_stream_gets_nothing_back_and_dtmf_is_published(fake: FakeServer, tmp_path: Path) -> None:
    """<Connect><Stream> (bidirectional, inbound track only): still nothing but Twilio's own messages may come
    back, so nothing at all does; the keypad digits Twilio sends become ``dtmf`` events on the subscription."""
    caller = wav_to_ulaw_frames(write_wav(tmp_path / "c.wav", [tone(500, 0.6), quiet(0.6)]))
    scenario = Scenario(name="ivr", steps=[Say(Path("-"), caller), Dtmf("1#"), Say(Path("-"), caller)])
    cfg = SessionConfig(response_timeout_s=0.5, quiet_period_s=0.3, max_drain_s=1)
    identity = sid("bidi", 2)
    events_ws = await subscribe(fake, identity.call_sid)
    result = await Session(fake.ws("/v1/twilio"), scenario=scenario, config=cfg, identity=identity).run()
    events = await until_ended(events_ws)
    assert result.violation_count == 0, [str(v) for v in result.violations]
    assert result.unknown_events == [] and result.media_frames_received == 0
    dtmf = [e for e in events if e["type"] == "dtmf"]
    assert [(d["digit"], d["leg"]) for d in dtmf] == [("1", "customer"), ("#", "customer")]
    assert 1150 <= dtmf[0]["at_ms"] <= 1250  # after 1.2 s of caller audio, on the leg's clock
    assert len(finals(events)) == 2 and events[0]["legs"] == ["customer"]


async def test_signature_is_checked_with_the_twilio_sdk(signed_server: FakeServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With an auth token configured, an upgrade without a valid X-Twilio-Signature is refused with HTTP 403; one
    signed by the twilio SDK over the public wss:// URL (what Twilio signs) is served."""
    frames = wav_to_ulaw_frames(write_wav(tmp_path / "c.wav", [tone(500, 0.4), quiet(0.4)]))
    cfg = SessionConfig(fork=True, strict_fork=True, tracks=["inbound"], response_timeout_s=0.5,
                        quiet_period_s=0.2, max_drain_s=1)
    url = signed_server.ws("/v1/twilio")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await Session(url, frames, config=cfg).run()
    assert refused.value.response.status_code == 403
    wrong = RequestValidator("another-token").compute_signature(PUBLIC_URL, {})
    connect = websockets.connect
    monkeypatch.setattr(websockets, "connect", functools.partial(connect, additional_headers={
        "X-Twilio-Signature": wrong}))
    with pytest.raises(websockets.InvalidStatus):
        await Session(url, frames, config=cfg).run()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL, {})
    monkeypatch.setattr(websockets, "connect", functools.partial(connect, additional_headers={
        "X-Twilio-Signature": signature}))
    identity = sid("sig", 3)
    events_ws = await subscribe(signed_server, identity.call_sid)
    result = await Session(url, frames, config=cfg, identity=identity).run()
    events = await until_ended(events_ws)
    assert result.violation_count == 0 and len(finals(events)) == 1


async def test_options_come_from_custom_parameters_never_the_query_string(fake: FakeServer, tmp_path: Path) -> None:
    """Twilio drops query strings from <Stream url> (error 31920), so they must not matter: a bogus
    ``?language=`` used to refuse the call; ``<Parameter name="language">`` is what sets it."""
    frames = wav_to_ulaw_frames(write_wav(tmp_path / "c.wav", [tone(500, 0.4), quiet(0.4)]))
    identity = sid("query", 4)
    events_ws = await subscribe(fake, identity.call_sid)
    cfg = SessionConfig(fork=True, strict_fork=True, tracks=["inbound"], custom_parameters={"language": "en"},
                        response_timeout_s=0.5, quiet_period_s=0.2, max_drain_s=1)
    result = await Session(fake.ws("/v1/twilio?language=klingon&events=socket"), frames, config=cfg,
                           identity=identity).run()
    events = await until_ended(events_ws)
    assert result.violation_count == 0 and events[0]["language"] == "en"


async def test_bad_streams_are_closed_with_a_code_only_and_bad_frames_do_not_end_the_call(fake: FakeServer) -> None:
    """A stream speechsvc cannot serve is closed with the close code and no text frame; bad frames mid-call are
    non-fatal errors on the subscription, and the call's audio is all still heard."""
    async def refused(messages: list[str]) -> tuple[int | None, list[str]]:
        async with websockets.connect(fake.ws("/v1/twilio")) as ws:
            for m in messages:
                await ws.send(m)
            texts = await received(ws)
        return ws.close_code, texts

    start = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
             "start": {"streamSid": "MZ1", "callSid": "CAbad", "tracks": ["inbound"],
                       "mediaFormat": {"encoding": "audio/l16", "sampleRate": 8000, "channels": 1}}}
    assert await refused([json.dumps(start)]) == (1003, [])
    assert await refused([json.dumps({"event": "media", "media": {"payload": ""}})]) == (1008, [])
    assert await refused(["{oops"]) == (1008, [])

    call_sid = "CAmixed"
    start["start"].update(callSid=call_sid, mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                         "channels": 1})
    events_ws = await subscribe(fake, call_sid)
    audio = mulaw_encode(tone(440, 1.0).reshape(-1)) + mulaw_encode(quiet(0.8))
    async with websockets.connect(fake.ws("/v1/twilio")) as ws:
        await ws.send(json.dumps(start))
        await ws.send("not json")
        await ws.send(json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": "0",
                                                              "payload": "%%%"}}))
        await ws.send(json.dumps({"event": "dance"}))
        for i in range(0, len(audio), 160):
            media = {"track": "inbound", "timestamp": str(i // 8), "chunk": str(i // 160 + 1),
                     "payload": base64.b64encode(audio[i : i + 160]).decode()}
            await ws.send(json.dumps({"event": "media", "media": media}))
            if i == 1600:  # a duplicate frame, as a retransmitting proxy might produce
                await ws.send(json.dumps({"event": "media", "media": media}))
        await ws.send(json.dumps({"event": "stop"}))
        replies = await received(ws)
    events = await until_ended(events_ws)
    assert replies == [] and ws.close_code == 1000
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["protocol_error", "invalid_audio", "protocol_error"]
    assert not any(e["fatal"] for e in errors)
    assert events[-1]["legs"][0]["audio_ms"] == 1800  # the duplicate added nothing
    assert [f["text"][:5] for f in finals(events)] == ["440hz"]


def test_track_clock_fills_gaps_drops_duplicates_and_trims_overlaps() -> None:
    clock = TrackClock(max_gap=800)
    assert clock.place(0, 160) is not None and clock.position == 160
    gap = clock.place(320, 160)  # one frame lost
    assert gap is not None and (gap.silence, gap.skip) == (160, 0) and clock.position == 480
    assert clock.place(320, 160) is None  # duplicate
    overlap = clock.place(400, 160)  # starts 80 samples before the track's position
    assert overlap is not None and (overlap.silence, overlap.skip) == (0, 80) and clock.position == 560
    late_start = TrackClock(max_gap=800).place(400, 160)  # a track that starts late is padded from 0
    assert late_start is not None and late_start.silence == 400
    jump = clock.place(560 + 2000, 160)  # beyond the gap limit: filled up to it, the rest reported
    assert jump is not None and (jump.silence, jump.gap_over) == (800, 1200)
    assert clock.place(None, 160) is not None and clock.position == 560 + 800 + 160 + 160


@pytest.mark.model
async def test_real_telephone_audio_through_a_lossy_fork(server: object, tmp_path: Path) -> None:
    """Real 8 kHz speech (eval set), real models, streamdouble in strict fork mode with 5 % of the caller's frames
    lost: zero violations, and each leg's words on the subscription."""
    from tests.support.liveserver import LiveServer
    from tests.support.platforms import AGENT_EN, CUSTOMER_ZH, pcm8k

    assert isinstance(server, LiveServer)
    customer = write_wav(tmp_path / "c.wav", pcm8k(*CUSTOMER_ZH))
    agent = write_wav(tmp_path / "a.wav", pcm8k(*AGENT_EN))
    identity = sid("real", 5)
    cfg = fork_config(agent, impairments=Impairments(loss=0.05), chaos_seed=11,
                      custom_parameters={"language": "auto"})
    url = f"ws://127.0.0.1:{server.port}"
    events_ws = await websockets.connect(f"{url}/v1/calls/{identity.call_sid}/events")
    result = await Session(f"{url}/v1/twilio", wav_to_ulaw_frames(customer), config=cfg, identity=identity).run()
    events = await until_ended(events_ws, timeout=60)
    assert result.violation_count == 0, [str(v) for v in result.violations]
    got = {f["leg"]: f["text"] for f in finals(events)}
    assert "设定" in got["customer"] and "extension" in got["agent"].lower()
