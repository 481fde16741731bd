"""An operator teaches the text model their own intents: `speechsvc train intent`, loading the result with
SPEECHSVC_INTENT_MODEL, and reloading it in a running intent stage without dropping work, refused when the
escalation rules would break. Trains real (small) models with the real sentence encoder."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from speechsvc.analysis import load_stages, reload_stages, started
from speechsvc.analysis.base import Mode
from speechsvc.analysis.escalation import EscalationRules, EscalationStage
from speechsvc.analysis.intent import IntentStage, TextModel
from speechsvc.cli import main
from speechsvc.config import Settings
from speechsvc.errors import ModelUnavailable
from speechsvc.server import reload_on_sighup

pytestmark = pytest.mark.model

# A call center's own intents (names of its choosing), six examples each.
OWN = {
    "查快递": ["我的快递到哪了", "包裹怎么还没到", "物流一直不更新", "快递显示已签收但我没收到", "帮我查一下单号",
            "什么时候能送到"],
    "开发票": ["我要开发票", "发票抬头写错了能改吗", "怎么开增值税专用发票", "电子发票在哪里下载", "发票还没寄给我",
            "能不能补开一张发票"],
    "会员续费": ["会员怎么续费", "自动续费在哪里关", "年卡会员多少钱", "续费有没有优惠", "会员到期了怎么办",
             "我想升级成年度会员"],
}


def write_tsv(path: Path, intents: dict[str, list[str]]) -> Path:
    rows = [f"{text}\t{intent}" for intent, texts in intents.items() for text in texts]
    path.write_text("text\tintent\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("own")
    out = tmp / "model"
    assert main(["train", "intent", str(write_tsv(tmp / "own.tsv", OWN)), "--base", "none", "--out", str(out)]) == 0
    return out


def test_operator_model_predicts_their_intents_and_has_a_card(own_model: Path) -> None:
    model = TextModel(own_model)
    assert model.labels == sorted(OWN)
    results = model.predict(["我的包裹到哪里了", "发票开错了", "会员续费怎么弄"])
    assert [r.intent for r in results] == ["查快递", "开发票", "会员续费"]
    assert all(r.embedding is not None and abs(float(np.linalg.norm(r.embedding)) - 1) < 1e-4 for r in results)
    assert 0 <= results[0].negativity <= 1  # the negativity head learnt from the shipped rows
    card = (own_model / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| `查快递` | 6 |" in card and "SPEECHSVC_INTENT_MODEL" in card


def test_the_setting_loads_it_and_the_escalation_rules_are_checked_against_it(own_model: Path) -> None:
    settings = Settings(intent_model=own_model, qa=False, assist=False, pii_redaction=False)
    with pytest.raises(ValueError, match="intents the text model does not predict"):
        load_stages(settings, only=("intent", "escalation"))  # the packaged rules weigh human_agent etc.
    (stage,) = load_stages(settings, only=("intent",))
    assert isinstance(stage, IntentStage) and stage.model.directory == own_model


def test_sighup_reloads_the_model_without_dropping_work(own_model: Path, tmp_path: Path) -> None:
    live = tmp_path / "live"
    shutil.copytree(own_model, live)
    settings = Settings(intent_model=live)
    (stage,) = load_stages(settings, only=("intent",))
    assert isinstance(stage, IntentStage)
    more = {**OWN, "转人工": ["转人工", "我要人工客服", "给我找个真人", "人工服务", "叫你们经理来", "我不要机器人"]}

    async def run() -> tuple[list[str], list[str]]:
        async with started([stage]):
            before = asyncio.gather(*(stage.infer_on(t, Mode.LIVE) for t in ["我的快递到哪了"] * 20))
            assert main(["train", "intent", str(write_tsv(tmp_path / "more.tsv", more)), "--base", "none",
                         "--out", str(live)]) == 0
            reload_on_sighup([stage])  # as the service does
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(600):
                if "转人工" in stage.model.labels:
                    break
                await asyncio.sleep(0.05)
            after = await stage.infer_on("我要人工客服", Mode.LIVE)
            return [r.intent for r in await before], [after.intent]

    before, after = asyncio.run(run())
    assert before == ["查快递"] * 20 and after == ["转人工"]
    assert stage.model.labels == sorted(more)


def test_reload_is_refused_when_escalation_rules_would_break(own_model: Path, tmp_path: Path) -> None:
    live = tmp_path / "live"
    shutil.copytree(own_model, live)
    rules = tmp_path / "rules.toml"
    rules.write_text('[cues]\nasks_human = ["转人工"]\n[kinds.human_requested]\ncues = { asks_human = 1.0 }\n'
                     'intents = { "转人工" = 0.9 }\n', encoding="utf-8")
    more = {**OWN, "转人工": ["转人工", "我要人工客服", "给我找个真人", "人工服务", "叫你们经理来", "我不要机器人"]}
    assert main(["train", "intent", str(write_tsv(tmp_path / "more.tsv", more)), "--base", "none",
                 "--out", str(live)]) == 0
    stages = load_stages(Settings(intent_model=live, escalation_rules=rules), only=("intent", "escalation"))
    intent = next(s for s in stages if isinstance(s, IntentStage))
    assert any(isinstance(s, EscalationStage) for s in stages)
    shutil.rmtree(live)
    shutil.copytree(own_model, live)  # a retraining that lost the intent the rules weigh
    assert asyncio.run(reload_stages(stages)) == {"intent": False}
    assert "转人工" in intent.model.labels  # the running model stays

    with pytest.raises(ValueError, match=r"weigh intents \['转人工'\]"):
        asyncio.run(intent.reload_model([EscalationRules.load(rules)]))


def test_mismatched_files_are_refused(own_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(own_model, broken)
    (broken / "model.npz").write_bytes((broken / "model.npz").read_bytes()[:-10])
    with pytest.raises(ModelUnavailable, match="sha256"):
        TextModel(broken)


def test_training_data_errors_exit_2_without_writing(tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "few.tsv", {"a": ["一", "二", "三"], "b": ["四", "五", "六", "七", "八"]})
    assert main(["train", "intent", str(data), "--base", "none", "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
