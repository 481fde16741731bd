"""The console in a real headless Chromium against the real server and models (model tier): a call streamed from
real recordings (CASIA clips of one speaker, calm then angry, on the customer leg; read sentences on the agent leg)
appears on the wall, its transcript grows, the angry voice turns its card red with the reason, the call view's
emotion timeline marks the escalation; a recording uploaded through the console becomes a finished job whose report
renders. Writes the README's screenshots when SPEECHSVC_SCREENSHOTS=docs/screenshots.

The audio is read from ../shared/eval at test time (evaluation data: never copied into the repository)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechsvc.clients.ws import to_pcm16
from speechsvc.speech.audio import decode_file, encode_file
from tests.support.browser import (
    chromium,
    in_background,
    joined,
    js_errors,
    q,
    save_page,
    screenshot_dir,
    stream_call,
    wait_css,
    wait_for,
)
from tests.support.datasets import EVAL, eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model

GAP_S = 0.75
# The text colour of a partial line and of a final one, read in one go (a partial lasts under a second).
COLOURS = """
  if (document.querySelector('[data-state="ended"]')) return "ended";
  const partial = document.querySelector(".utt.partial .utt-text");
  const final = document.querySelector(".utt.final .utt-text");
  return partial && final ? [getComputedStyle(partial).color, getComputedStyle(final).color] : null;
"""


def casia(speaker: str, emotion: str, n: int, skip: int = 0) -> list[np.ndarray]:
    rows = [r for r in csv.DictReader(eval_path("emotion", "labels.csv").open())
            if r["speaker"] == speaker and r["emotion"] == emotion][skip : skip + n]
    return [decode_file(EVAL / "emotion" / r["path"])[0][0] for r in rows]


def read_sentences(n: int, skip: int = 0) -> list[np.ndarray]:
    rows = [r for r in csv.DictReader(eval_path("asr_zh", "manifest.csv").open())
            if r["id"].startswith("aishellsample")][skip : skip + n]
    return [decode_file(EVAL / "asr_zh" / r["file"])[0][0] for r in rows]


def dialogue(customer: list[np.ndarray], agent: list[np.ndarray]) -> np.ndarray:
    """Turns in alternation, customer first: a (2, samples) float32 stereo call at 16 kHz."""
    gap = np.zeros(int(16000 * GAP_S), np.float32)
    left, right = [], []
    for c, a in zip(customer, agent, strict=True):
        left += [c, gap, np.zeros(len(a), np.float32), gap]
        right += [np.zeros(len(c), np.float32), gap, a, gap]
    return np.stack([np.concatenate(left), np.concatenate(right)])


def as_pcm(stereo: np.ndarray) -> bytes:
    return to_pcm16(stereo.T).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer(partial_interval_ms=600) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)




@pytest.fixture(scope="module")
def job_id(browser: Any, live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A short recorded call submitted through the console's upload form (after the live calls: while a job
    runs, its queued segments make live partials wait past PARTIAL_STALE_MS and be skipped)."""
    recording = tmp_path_factory.mktemp("upload") / "complaint-0417.wav"
    encode_file(recording, dialogue(casia("casia_wangzhe", "neutral", 2) + casia("casia_wangzhe", "angry", 3),
                                    read_sentences(5, skip=20)), 16000)
    browser.get(f"{live.http}/console#/jobs")
    wait_css(browser, "#job-files", "the upload form")
    browser.find_element("css selector", "#job-files").send_keys(str(recording))
    for box in q(browser, ".upload input[name=formats]"):
        if not box.is_selected():
            box.click()  # every format: JSON, SRT, VTT, TXT
    browser.find_element("css selector", ".upload button[type=submit]").click()
    row = wait_css(browser, "table.jobs-table tbody tr[data-job-id]", "the job")[0]
    return str(row.get_attribute("data-job-id"))


def test_live_wall_and_call_view(browser: Any, live: LiveServer, shots: Path) -> None:
    angry = dialogue(casia("casia_liuchanhg", "neutral", 4) + casia("casia_liuchanhg", "angry", 6),
                     read_sentences(10))
    calm = dialogue(casia("casia_zhaoquanyin", "neutral", 6, skip=10), read_sentences(6, skip=10))
    browser.get(f"{live.http}/console#/")
    wait_css(browser, "#conn[data-state=live]", "the wall to connect")
    url = live.url
    calls = [
        in_background(stream_call(url, as_pcm(angry), call_id="CA-7f3e21", channels=2, legs=["customer", "agent"],
                                  metadata={"callSid": "CA-7f3e21", "agentId": "a-1024", "queue": "credit-card"},
                                  speed=2.0)),
        in_background(stream_call(url, as_pcm(calm), call_id="CA-51b0c9", channels=2, legs=["customer", "agent"],
                                  metadata={"callSid": "CA-51b0c9", "agentId": "a-2048", "queue": "billing"},
                                  speed=1.0)),
    ]
    card = '.card[data-call-id="CA-7f3e21"]'
    wait_css(browser, card, "the call's card")
    assert "agentId a-1024" in q(browser, f"{card} .ids")[0].text
    first = wait_for(browser, lambda: q(browser, f"{card} .last-said") and q(browser, f"{card} .last-said")[0].text,
                     what="a first transcript line")
    wait_for(browser, lambda: q(browser, f"{card} .last-said")[0].text != first, what="the transcript to move on")
    red = wait_css(browser, f'{card}[data-level="red"]', timeout=90, what="the angry caller's card to turn red")[0]
    assert "客户愤怒" in red.find_element("css selector", ".alert.red").text
    assert "angry voice" in red.find_element("css selector", ".alert.red .alert-detail").text
    assert red.find_element("css selector", ".alert.red time").text  # when it fired
    cards = [c.get_attribute("data-call-id") for c in q(browser, ".cards:not(.ended-cards) .card")]
    assert cards[0] == "CA-7f3e21" and "CA-51b0c9" in cards  # riskiest first
    save_page(browser, shots / "wall.png")

    browser.find_element("css selector", f"{card} h3 a").click()
    wait_css(browser, 'svg.timeline .esc-mark[data-kind="angry_caller"]', "the escalation on the emotion timeline")
    assert len(q(browser, "svg.timeline circle.dot")) >= 4
    seen = len(q(browser, ".utt.final"))
    wait_for(browser, lambda: len(q(browser, ".utt.final")) > seen, what="the call view's transcript to grow")
    assert q(browser, '.inline.alert.red[data-kind="angry_caller"]')
    colours = wait_for(browser, lambda: browser.execute_script(COLOURS), what="a partial line")
    assert colours != "ended", "the call ended before a partial was seen"
    assert colours == ["rgb(138, 148, 159)", "rgb(17, 24, 32)"], colours  # partials grey, finals black
    save_page(browser, shots / "call.png")  # mid-call: the latest lines, a partial in grey
    wait_css(browser, '.state-chip[data-state="ended"]', timeout=120, what="the call to end")
    summary = wait_css(browser, ".panel.summary", "the call summary")[0]
    assert summary.find_element("css selector", ".score-big").text.replace(".", "").isdigit()
    finals = q(browser, ".utt.final")
    assert {f.get_attribute("data-leg") for f in finals} == {"customer", "agent"} and len(finals) >= 16
    for thread, box in calls:
        events = joined(thread, box)
        assert events[-1]["type"] == "ended"
    assert not js_errors(browser)


def test_recorded_call_report(browser: Any, live: LiveServer, job_id: str, shots: Path) -> None:
    browser.get(f"{live.http}/console#/jobs")
    wait_css(browser, f'tr[data-job-id="{job_id}"] .chip[data-state="done"]', "the uploaded job to finish", 180)
    save_page(browser, shots / "jobs.png")
    browser.find_element("css selector", f'tr[data-job-id="{job_id}"] a').click()
    wait_css(browser, 'table.calls-table tr[data-status="done"] a', "the job's call")[0].click()
    wait_css(browser, "table.qa-table tbody tr", "the report's QA outcomes")
    assert [a.get_attribute("data-format") for a in q(browser, ".downloads a")] == ["json", "srt", "txt", "vtt"]
    assert q(browser, "svg.bars rect.bar.leg-customer") and q(browser, "svg.strip rect.speech.leg-agent")
    assert len(q(browser, "svg.timeline circle.dot")) == 5  # P(angry) of each customer utterance
    assert len(q(browser, ".report .transcript .utt")) >= 8
    statuses = {r.get_attribute("data-status") for r in q(browser, "table.qa-table tbody tr")}
    assert statuses <= {"pass", "fail", "not_applicable"} and "fail" in statuses
    save_page(browser, shots / "report.png", full_height=1500)
    assert not js_errors(browser)


def test_call_view_after_the_call_in_english(browser: Any, live: LiveServer, shots: Path) -> None:
    """The ended call still opens (the server keeps recent calls), with its summary; the UI in English."""
    browser.get(f"{live.http}/console#/calls/CA-7f3e21")
    wait_css(browser, ".panel.summary", "the ended call's summary")
    browser.find_element("css selector", "#lang-toggle").click()
    wait_for(browser, lambda: "Call summary" in browser.find_element("css selector", ".panel.summary").text,
             what="the English summary")
    assert "Angry caller" in browser.find_element("css selector", ".call-side").text
    browser.execute_script("document.querySelector('.transcript').scrollTop = 0")
    save_page(browser, shots / "call-ended-en.png")
    browser.find_element("css selector", "#lang-toggle").click()
    wait_for(browser, lambda: "通话小结" in browser.find_element("css selector", ".panel.summary").text)
