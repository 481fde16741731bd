"""The console in a real headless Chromium against a real server with the fake engine (fast tier: scripted texts,
no model): the wall's card, PII tags, escalation and QA alerts, the call view, the language switch, reconnection
after a server restart, the API-key prompt, and a recorded-call job from upload to report and download."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechsvc.analysis.escalation import EscalationStage
from speechsvc.analysis.pii.stage import RedactionStage
from speechsvc.analysis.qa.stage import InspectionStage
from speechsvc.app import create_app
from speechsvc.config import Settings
from speechsvc.security.keys import KeyStore
from speechsvc.speech.audio import encode_file
from tests.support.browser import (
    ThreadServer,
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
from tests.support.fakes import fake_engine, fast_settings, pcm16, silence, tone
from tests.support.net import free_port

RULES = """
version = 1
base_score = 100

[[rule]]
id = "forbidden"
category = "attitude"
severity = "critical"
score = -20
kind = "violation"
description = "no forbidden phrases"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["不归我管"] } }

[[rule]]
id = "closing"
category = "script"
severity = "minor"
score = -5
kind = "requirement"
description = "agent offers more help before closing"
when = { op = "utterance", match = { op = "keyword", role = "agent", any = ["还有什么可以帮您"] }, within_last_s = 5 }
"""
PHONE = "13800138000"
# The fake recognizer's text per tone: customer 300 and 700 Hz (left), agent 500 and 600 Hz (right).
TEXTS = {300: f"你好我的手机号是{PHONE}", 500: "您好工号三五七很高兴为您服务", 700: "我要转人工再不处理我就打12315",
         600: "这个不归我管"}
KEY = "console-test-key"


def stereo_call() -> np.ndarray:
    """customer: 0-1 s, 4-5 s; agent: 1.5-2.5 s, 6-7 s; 8 s in all (interleaved PCM16 frames)."""
    left = np.concatenate([tone(300, 1.0), silence(3.0), tone(700, 1.0), silence(3.0)])
    right = np.concatenate([silence(1.5), tone(500, 1.0), silence(3.5), tone(600, 1.0), silence(1.0)])
    return np.stack([left, right], axis=1)


def fake_app(tmp: Path, **overrides: object) -> tuple[Any, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    rules = tmp / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    settings = Settings(qa_rules=rules, text_analysis=False, pii_names_addresses=False)
    stages = [RedactionStage.load(settings), EscalationStage.load(settings), InspectionStage.load(settings)]
    engine = fake_engine(fast_settings(partial_interval_ms=600, jobs_dir=tmp / "jobs", qa_rules=rules,
                                       pii_names_addresses=False, **overrides), stages=stages, texts=TEXTS)
    return create_app(engine.settings, engine), engine


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    app, engine = fake_app(tmp_path_factory.mktemp("console-ui"))
    with ThreadServer(app, free_port(), before=engine.start, after=engine.stop) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver




def open_console(driver: Any, server: ThreadServer, route: str = "#/") -> None:
    driver.get(f"{server.http}/console{route}")
    wait_for(driver, lambda: q(driver, "#conn[data-state=live]") or q(driver, "table.data, .panel.upload"),
             what="the console to connect")


def start_call(server: ThreadServer, call_id: str, speed: float = 1.5) -> tuple[Any, dict[str, Any]]:
    pcm = pcm16(stereo_call().reshape(-1))
    ids = {"callSid": f"CA-{call_id}", "agentId": "a-7"}
    return in_background(stream_call(f"ws://127.0.0.1:{server.port}/v1/stream", pcm, call_id=call_id, channels=2,
                                     legs=["customer", "agent"], metadata=ids, speed=speed))


def test_wall_and_call_view_show_the_call_with_pii_tags_escalations_and_qa(
    browser: Any, served: ThreadServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = served
    open_console(browser, server)
    assert browser.find_element("css selector", "nav a[data-nav=live]").text == "实时通话"  # Chinese by default
    wait_css(browser, "p.empty", "the empty wall")
    call = start_call(server, "ui-1")
    card = wait_css(browser, '.card[data-call-id="ui-1"]', "the call's card")[0]
    assert "callSid CA-ui-1" in card.find_element("css selector", ".ids").text
    wait_css(browser, '.card[data-call-id="ui-1"] .pii[data-type=PHONE]', "a PII tag")
    red = wait_css(browser, '.card[data-call-id="ui-1"][data-level=red]', "the card to turn red")
    text = red[0].text
    assert "要求转人工" in text or "扬言向监管投诉" in text, text
    assert "12315" in text  # the evidence
    screenshots = screenshot_dir(tmp_path_factory)
    save_page(browser, screenshots / "ui-wall.png")

    browser.find_element("css selector", '.card[data-call-id="ui-1"] h3 a').click()
    wait_for(browser, lambda: q(browser, ".col-head.leg-customer") and q(browser, ".col-head.leg-agent"),
             what="the two legs side by side")
    wait_css(browser, '.inline.alert.red[data-kind="human_requested"]', "the escalation inline")
    wait_css(browser, '.inline.alert.amber[data-rule="forbidden"]', "the QA failure inline")
    wait_css(browser, '.state-chip[data-state="ended"]', "the call to end")
    summary = wait_css(browser, ".panel.summary", "the call summary")[0].text
    assert "75" in summary  # 100 - 20 (forbidden) - 5 (closing)
    assert q(browser, 'svg.timeline .esc-mark[data-kind="human_requested"]')
    finals = q(browser, ".utt.final")
    assert {f.get_attribute("data-leg") for f in finals} == {"customer", "agent"} and len(finals) == 4
    assert q(browser, ".utt.final .pii[data-type=PHONE]")[0].text == "[PHONE]"
    assert PHONE not in browser.page_source
    save_page(browser, screenshots / "ui-call.png")
    events = joined(*call)
    assert PHONE not in json.dumps(events, ensure_ascii=False)
    assert not js_errors(browser)


def test_language_switch(browser: Any, served: ThreadServer) -> None:
    server = served
    open_console(browser, server)
    browser.find_element("css selector", "#lang-toggle").click()
    wait_for(browser, lambda: browser.find_element("css selector", "nav a[data-nav=live]").text == "Live calls")
    assert browser.execute_script("return document.documentElement.lang") == "en"
    assert "Recently ended" in browser.find_element("css selector", "main").text  # the call of the test above
    browser.find_element("css selector", "#lang-toggle").click()
    wait_for(browser, lambda: browser.find_element("css selector", "nav a[data-nav=live]").text == "实时通话")


def test_a_recorded_call_from_upload_to_report_and_download(
    browser: Any, served: ThreadServer, tmp_path: Path
) -> None:
    server = served
    recording = tmp_path / "录音-1.wav"
    encode_file(recording, stereo_call().T.astype(np.float32), 16000)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_console(browser, server, "#/jobs")
    browser.find_element("css selector", "#job-files").send_keys(str(recording))
    browser.find_element("css selector", ".upload button[type=submit]").click()
    row = wait_css(browser, "table.jobs-table tbody tr", "the job in the list")[0]
    job_id = row.get_attribute("data-job-id")
    wait_css(browser, f'tr[data-job-id="{job_id}"] .chip[data-state=done]', "the job to finish")
    browser.find_element("css selector", f'tr[data-job-id="{job_id}"] a').click()
    wait_css(browser, 'table.calls-table tr[data-status="done"] a', "the job's call")[0].click()
    wait_css(browser, "table.qa-table", "the report")
    rows = q(browser, "table.qa-table tbody tr")
    outcomes = {r.get_attribute("data-rule"): r.get_attribute("data-status") for r in rows}
    assert outcomes == {"forbidden": "fail", "closing": "fail"}
    assert browser.find_element("css selector", ".score-big").text == "75"
    assert q(browser, "svg.bars") and q(browser, "svg.strip rect.speech.leg-agent")
    assert q(browser, '.report .alert.red[data-kind="human_requested"]')
    assert q(browser, ".transcript .pii[data-type=PHONE]") and PHONE not in browser.page_source
    formats = [a.get_attribute("data-format") for a in q(browser, ".downloads a")]
    assert formats == ["json", "srt", "txt"]  # what the form asked for by default, and the report
    q(browser, '.downloads a[data-format="srt"]')[0].click()
    srt = wait_for(browser, lambda: [p for p in downloads.glob("*.srt")], what="the SRT download")[0]
    assert srt.name == "录音-1.srt" and "[PHONE]" in srt.read_text(encoding="utf-8")  # the name as uploaded
    assert not js_errors(browser)


def test_asks_for_an_api_key_and_keeps_it_in_the_tab_only(browser: Any, tmp_path: Path) -> None:
    """Against the real authentication (required, a key made with the key store): a wrong key prompts again,
    the right one opens REST and the WebSocket subscription, and lives in the tab's sessionStorage only."""
    keys = tmp_path / "keys.json"
    key, _ = KeyStore(keys).create("acme", "stream,subscribe,jobs")
    app, engine = fake_app(tmp_path / "app", auth="required", keys_file=keys)
    with ThreadServer(app, free_port(), before=engine.start, after=engine.stop) as server:
        browser.get(f"{server.http}/console#/")
        browser.execute_script("sessionStorage.clear()")
        browser.get(f"{server.http}/console#/jobs")
        dialog = wait_css(browser, "#auth-dialog[open]", "the key prompt")[0]
        dialog.find_element("css selector", "input").send_keys("ssk_wrong_key")
        dialog.find_element("css selector", "button[value=ok]").click()
        time.sleep(0.3)
        wait_css(browser, "#auth-dialog[open]", "the prompt again after a wrong key")
        field = browser.find_element("css selector", "#auth-dialog input")
        field.send_keys(key)
        browser.find_element("css selector", "#auth-dialog button[value=ok]").click()
        wait_css(browser, "p.empty, table.jobs-table", "the (empty) job list behind the key")
        browser.find_element("css selector", "nav a[data-nav=live]").click()
        wait_css(browser, "#conn[data-state=live]", "the subscription with the key")
        assert browser.execute_script("return sessionStorage.getItem('speechsvc.apiKey')") == key
        stored = browser.execute_script("return JSON.stringify(Object.assign({}, localStorage))")
        assert key not in stored and key not in browser.current_url
        browser.execute_script("sessionStorage.clear()")


def test_reconnects_after_a_server_restart(browser: Any, tmp_path: Path) -> None:
    port = free_port()
    app, engine = fake_app(tmp_path / "a")
    with ThreadServer(app, port, before=engine.start, after=engine.stop) as first:
        open_console(browser, first)
    wait_css(browser, "#conn[data-state=reconnecting]", "the console to notice")
    app, engine = fake_app(tmp_path / "b")
    with ThreadServer(app, port, before=engine.start, after=engine.stop) as second:
        wait_css(browser, "#conn[data-state=live]", timeout=40, what="the console to reconnect")
        call = start_call(second, "after-restart", speed=3.0)
        wait_css(browser, '.card[data-call-id="after-restart"]', "a call on the new server")
        joined(*call)
