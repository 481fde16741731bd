"""The CLI as a user runs it (subprocess: stdout carries only the result) and the model registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import opencc
import pytest

from speechsvc.config import Settings
from speechsvc.errors import ModelUnavailable
from speechsvc.evaluation.scoring import error_rate
from speechsvc.models import check_head, check_whisper_dir, install_whisper_base, resolve_whisper_dir
from speechsvc.speech.audio import decode_file, encode_file
from tests.support.datasets import eval_path, fixture_clip


def speechsvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speechsvc.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.model
def test_transcribe_mandarin_prints_simplified_text_only_on_stdout() -> None:
    path = eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0001.wav")
    result = speechsvc("transcribe", str(path), "--format", "txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "设定29度" or "设定" in result.stdout
    assert opencc.OpenCC("t2s").convert(result.stdout) == result.stdout
    assert "loaded whisper" in result.stderr  # logs go to stderr


@pytest.mark.model
def test_transcribe_formats_and_bad_file(tmp_path: Path) -> None:
    prompt = fixture_clip("asterisk_queue-periodic-announce")  # committed: runs in a bare clone
    audio, rate = decode_file(prompt.path)
    clip = tmp_path / "clip.mp3"  # any container/codec FFmpeg reads
    encode_file(clip, audio, rate)
    js = json.loads(speechsvc("transcribe", str(clip), "--format", "json", "--language", "en", "-q").stdout)
    assert js["legs"] == ["mixed"] and js["segments"] and abs(js["duration_s"] - prompt.seconds) < 0.2
    assert error_rate(prompt.text, " ".join(s["text"] for s in js["segments"]), "en") < 0.15
    srt = speechsvc("transcribe", str(clip), "--format", "srt", "--language", "en", "-q").stdout
    assert srt.startswith("1\n00:00:") and " --> " in srt
    vtt = speechsvc("transcribe", str(clip), "--format", "vtt", "--language", "en", "-q").stdout
    assert vtt.startswith("WEBVTT")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    failed = speechsvc("transcribe", str(bad), "-q")
    assert failed.returncode == 1 and failed.stdout == "" and "cannot decode" in failed.stderr


def test_models_list_and_path() -> None:
    listed = speechsvc("models", "list")
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and [r[0] for r in rows] == ["asr", "speaker", "text", "emotion"]
    assert all(r[2] == "ok" for r in rows), listed.stdout
    assert speechsvc("models", "path").stdout.strip() == str(Settings().whisper_dir)


def test_heads_are_checked_not_assumed(tmp_path: Path) -> None:
    settings = Settings()
    assert check_head(settings.heads_dir / "text") == [] and check_head(settings.heads_dir / "emotion") == []
    broken = tmp_path / "text"
    broken.mkdir()
    (broken / "model.json").write_text('{"labels": ["a"]}')
    assert "model.npz" in check_head(broken)[0]
    (broken / "model.npz").write_bytes(b"not a zip")
    problems = check_head(broken)
    assert problems and "unreadable" in problems[0]


def test_install_is_idempotent_and_verified(tmp_path: Path) -> None:
    target = tmp_path / "whisper"
    assert install_whisper_base(target) == target
    stamp = (target / ".verified").read_text()
    mtime = (target / "model.bin").stat().st_mtime_ns
    install_whisper_base(target)
    assert (target / "model.bin").stat().st_mtime_ns == mtime and (target / ".verified").read_text() == stamp
    assert check_whisper_dir(target, deep=True) == []
    with (target / "model.bin").open("r+b") as f:  # flip one byte
        f.seek(1000)
        f.write(b"\xff")
    assert "sha256" in check_whisper_dir(target, deep=True)[0]


def test_missing_model_dir_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="speechsvc models install"):
        resolve_whisper_dir(tmp_path / "nowhere", assemble=False)
    result = speechsvc("transcribe", "x.wav", "--model-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "does not exist" in result.stderr
