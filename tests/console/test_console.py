"""The supervisor console: what the server serves (fast, no browser).

The browser tests (Debian's Chromium driven by Selenium through the system chromedriver, helpers in
``tests/support/browser.py``; nothing is downloaded) are ``test_console_ui.py`` (fast tier: a fake engine,
scripted texts) and ``test_console_live.py`` (model tier: real audio through the real models). They skip,
saying why, when no Chromium is installed; ``make install`` installs it as root on Debian.
``SPEECHSVC_SCREENSHOTS=docs/screenshots`` makes them write the README's screenshots there (by default they go to a
temporary folder).
"""

from __future__ import annotations

import re
import tomllib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from speechsvc.console.routes import CSP, assets
from speechsvc.console.routes import router as console_router
from tests.support.datasets import REPO

STATIC = REPO / "speechsvc" / "console" / "static"


# -- what the server serves ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(console_router)
    return TestClient(app)


def test_page_and_assets_are_served_with_their_types_and_a_same_origin_policy(client: TestClient) -> None:
    page = client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP and "http" not in CSP
    assert client.get("/console/").text == page.text
    types = {"app.js": "text/javascript", "console.css": "text/css", "icon.svg": "image/svg+xml"}
    for name, media_type in types.items():
        r = client.get(f"/console/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media_type), name
        assert r.headers["x-content-type-options"] == "nosniff"
        again = client.get(f"/console/assets/{name}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
    for bad in ("nope.js", "..%2Froutes.py", "__init__.py", "routes.py"):
        assert client.get(f"/console/assets/{bad}").status_code == 404


def test_every_asset_the_page_loads_exists_and_nothing_comes_from_another_origin() -> None:
    names = set(assets())
    assert names == {p.name for p in STATIC.iterdir()}
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, path.name
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, path.name  # DOM from text only
    imports = {line.split('"./')[1].split('"')[0] for p in STATIC.glob("*.js")
               for line in p.read_text(encoding="utf-8").splitlines() if 'from "./' in line}
    assert imports <= names


def test_the_api_key_is_kept_in_session_storage_only() -> None:
    api = (STATIC / "api.js").read_text(encoding="utf-8")
    assert "sessionStorage.setItem(KEY" in api and "localStorage." not in api
    assert "Authorization" in api and "access_token" in api


def test_assets_ship_as_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["package-data"]["speechsvc.console"] == ["static/*"]


def test_both_languages_have_every_text() -> None:
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")

    def keys(block: str) -> list[str]:
        body = source.split(f"const {block} = {{", 1)[1].split("\n};", 1)[0]
        return [line.split('"')[1] for line in body.splitlines() if line.strip().startswith('"')]

    zh, en = keys("zh"), keys("en")
    assert zh == en and len(zh) == len(set(zh)) > 100
    call = re.compile(r'(?<![\w.])t\("([\w.]+)"')  # t("key"...) but not sort("..."), x.t("...")
    used = {m for p in STATIC.glob("*.js") for m in call.findall(p.read_text(encoding="utf-8"))}
    used |= set(re.findall(r'data-i18n(?:-label)?="([\w.]+)"', (STATIC / "index.html").read_text(encoding="utf-8")))
    missing = used - set(zh)
    assert not missing, missing


def test_a_failed_qa_rule_on_the_call_index_keeps_its_note_and_evidence() -> None:
    """The console's cards read why a rule failed from GET /v1/calls (a console-driven addition)."""
    from speechsvc.analysis.qa import QaEngine
    from speechsvc.analysis.qa.ops import QaEvidence
    from speechsvc.analysis.qa.rules import QaRules
    from speechsvc.analysis.qa.stage import InspectionStage, Qa
    from speechsvc.runtime.call_index import CallIndex
    from speechsvc.security.principal import ANONYMOUS
    from speechsvc.types import CallEvent, Ready

    pack = """version = 1
[[rule]]
id = "forbidden"
category = "attitude"
severity = "critical"
score = -20
kind = "violation"
description = "a phrase the agent must not say"
when = { op = "keyword", role = "agent", any = ["不归我管"] }
"""
    index = CallIndex([InspectionStage(QaEngine(QaRules.parse(pack)))])
    index(CallEvent("c1", 0, Ready(("customer", "agent"), "pcm16", 16000, "zh", "ws")))
    evidence = (QaEvidence(2, "agent", 1000, 2000, "这个不归我管", "forbidden"),)
    index(CallEvent("c1", 5, Qa("forbidden", "attitude", "critical", False, -20.0, evidence, "live", "said it")))
    (call,) = index.calls(ANONYMOUS)
    (failed,) = call["qa_failed"]
    assert (failed["rule"], failed["note"], failed["text"]) == ("forbidden", "said it", "这个不归我管")
    assert call["risk"] == 2.0  # a critical rule, as the rules pack weighs it
