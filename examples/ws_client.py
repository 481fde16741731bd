"""Minimal speechsvc WebSocket client: stream a 16-bit PCM WAV file at real time and print events.

    python examples/ws_client.py call.wav [ws://127.0.0.1:8080/v1/stream] [zh|en|auto]

Needs only `websockets`. Stereo WAVs are sent as two legs (customer = left, agent = right).
"""

import asyncio
import json
import sys
import wave

import websockets


async def main(path: str, url: str, language: str) -> None:
    with wave.open(path, "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        assert width == 2, "this example sends 16-bit PCM; use `speechsvc stream` for other files"
        pcm = wav.readframes(wav.getnframes())
    frame_bytes = rate // 10 * 2 * channels  # 100 ms frames
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "encoding": "pcm16", "sample_rate": rate,
                                  "channels": channels, "language": language}))

        async def receive() -> None:
            async for message in ws:
                event = json.loads(message)
                print(json.dumps(event, ensure_ascii=False), flush=True)
                if event["type"] == "ended":
                    return

        receiver = asyncio.create_task(receive())
        for i in range(0, len(pcm), frame_bytes):
            await ws.send(pcm[i : i + frame_bytes])
            await asyncio.sleep(0.1)  # real time
        await ws.send(json.dumps({"type": "stop"}))
        await receiver


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1] if len(args) > 1 else "ws://127.0.0.1:8080/v1/stream",
                     args[2] if len(args) > 2 else "zh"))
