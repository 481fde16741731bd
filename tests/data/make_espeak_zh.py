"""Regenerate the synthetic Mandarin fixtures (``audio/espeak_zh_*.wav``) with Debian's espeak-ng.

    apt-get install espeak-ng && python tests/data/make_espeak_zh.py

Robotic formant speech (Whisper base scores about 0.5 CER on it, see ../shared/ASR_NOTES.md): for plumbing
tests only, never for accuracy claims. Another espeak-ng or FFmpeg build can change the bytes: after
regenerating, update the checksums in ``README.md`` (``test_fixture_checksums`` says which differ).
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from speechsvc.speech.audio import decode_file

HERE = Path(__file__).resolve().parent
VOICE = "cmn-latn-pinyin"  # reads Chinese characters as Mandarin ("cmn" reads them with English rules)
SPEED = 130  # words per minute; slower than the default 175 is easier to recognise
CLIPS = {
    "espeak_zh_network": "我的网络一直连不上，请帮我看一下。",
    "espeak_zh_bill": "我想查询一下这个月的话费账单。",
}


def main() -> None:
    for name, text in CLIPS.items():
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "out.wav"
            subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(SPEED), "-w", str(raw), text], check=True)
            audio, rate = decode_file(raw)  # 22.05 kHz from espeak-ng, resampled to 16 kHz mono
        pcm = (np.clip(audio[0], -1.0, 1.0) * 32767).astype("<i2")
        with wave.open(str(HERE / "audio" / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    main()
