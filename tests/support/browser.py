"""The console's browser tests' helpers: Debian's Chromium driven by Selenium through the system chromedriver
(nothing is downloaded; a test skips, saying why, when there is none), DOM polling, screenshots, a uvicorn server in
a thread for an app a test builds, and a call streamed to ``/v1/stream`` from a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

VIEWPORT = (1366, 768)  # the smallest screen the console is made for


# -- the browser ------------------------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a CI box with no network, no sandbox (root in a container) and no GPU.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--lang=zh-CN")


def find_chromium() -> tuple[str, str] | None:
    """(browser, driver) from $SPEECHSVC_CHROMIUM / $SPEECHSVC_CHROMEDRIVER or the PATH (Debian: chromium and
    chromium-driver's chromedriver), or None."""
    browser = os.environ.get("SPEECHSVC_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = os.environ.get("SPEECHSVC_CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile and a 1366×768 viewport; skips the test when there is none."""
    pytest.importorskip("selenium", reason="selenium is not installed (it is in the dev extra: make install)")
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium + chromedriver on this machine: `apt-get install chromium chromium-driver` "
                    "(make install does it as root on Debian), or set SPEECHSVC_CHROMIUM / SPEECHSVC_CHROMEDRIVER")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="speechsvc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    try:
        driver.set_window_size(*VIEWPORT)
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if inner != list(VIEWPORT):  # the window has chrome around the page in some versions: grow to fit
            driver.set_window_size(2 * VIEWPORT[0] - inner[0], 2 * VIEWPORT[1] - inner[1])
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``condition`` (a DOM query) until it returns something truthy; fail with ``what`` and the page's
    console log otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # a node replaced while being read: read it again
            value = condition()
            if value:
                return value
        if time.monotonic() > deadline:
            logs = driver.get_log("browser")
            pytest.fail(f"timed out waiting for {what or condition}; browser log: {logs}")
        time.sleep(0.1)


def q(driver: Any, css: str) -> list[Any]:
    """Every element matching ``css`` (possibly none)."""
    return list(driver.find_elements("css selector", css))


def wait_css(driver: Any, css: str, what: str = "", timeout: float = 30.0) -> list[Any]:
    """The elements matching ``css`` once there is at least one."""
    return list(wait_for(driver, lambda: q(driver, css), timeout, what or css))


def js_errors(driver: Any) -> list[dict[str, Any]]:
    """Severe entries of the browser log (script errors, CSP violations), except the refused-key probes a test
    provokes on purpose."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and " 401 " not in e["message"] and "WebSocket connection" not in e["message"]]


def screenshot_dir(tmp_factory: pytest.TempPathFactory) -> Path:
    """$SPEECHSVC_SCREENSHOTS (e.g. docs/screenshots, for the README), else a temporary folder."""
    folder = os.environ.get("SPEECHSVC_SCREENSHOTS")
    path = Path(folder) if folder else tmp_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_page(driver: Any, path: Path, full_height: int | None = None) -> None:
    """The viewport as PNG; ``full_height`` (px) captures that much of a long page instead."""
    if full_height is None:
        driver.save_screenshot(str(path))
        return
    height = min(full_height, driver.execute_script("return document.documentElement.scrollHeight"))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                  "clip": {"x": 0, "y": 0, "width": VIEWPORT[0], "height": height, "scale": 1}})
    import base64

    path.write_bytes(base64.b64decode(shot["data"]))


# -- a server in a thread, for an app built here (the fake engine, an auth gate) -----------------------------------

class ThreadServer:
    """``app`` served by uvicorn on ``port`` in a thread with its own loop; ``before`` and ``after`` run on that
    loop around it (starting and stopping a fake engine)."""

    def __init__(self, app: Any, port: int, before: Callable[[], Any] | None = None,
                 after: Callable[[], Any] | None = None) -> None:
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.loop = asyncio.new_event_loop()
        self.before, self.after = before, after
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),), daemon=True)

    async def _run(self) -> None:
        if self.before is not None:
            await self.before()
        try:
            await self.server.serve()
        finally:
            if self.after is not None:
                await self.after()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def stream_call(url: str, pcm: bytes, *, call_id: str, channels: int, legs: list[str],
                      metadata: dict[str, str], frame_ms: int = 100, speed: float = 1.0,
                      partials: bool = True) -> list[dict[str, Any]]:
    """Stream PCM16 at 16 kHz to /v1/stream as a call platform would (legs, platform ids); every event back."""
    import websockets

    start = {"type": "start", "call_id": call_id, "encoding": "pcm16", "sample_rate": 16000, "channels": channels,
             "legs": legs, "language": "zh", "partials": partials, "metadata": metadata}
    step = 16000 * 2 * channels * frame_ms // 1000
    events: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps(start))

        async def receive() -> None:
            async for raw in ws:
                events.append(json.loads(raw))
                if events[-1]["type"] == "ended":
                    return

        receiver = asyncio.ensure_future(receive())
        t0 = time.perf_counter()
        for i, offset in enumerate(range(0, len(pcm), step)):
            await ws.send(pcm[offset : offset + step])
            delay = t0 + (i + 1) * frame_ms / 1000 / speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(receiver, 120)
    return events


def in_background(coro: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run a coroutine in its own thread (the browser is driven from this one); the result lands in the dict."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - handed to the test, which re-raises it
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def joined(thread: threading.Thread, box: dict[str, Any], timeout: float = 180) -> Any:
    thread.join(timeout)
    assert not thread.is_alive(), "the streaming call did not finish"
    if "error" in box:
        raise box["error"]
    return box["result"]
