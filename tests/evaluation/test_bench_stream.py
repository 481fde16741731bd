"""`bench stream`'s scoring of one call's events (no server): finals matched to the reference, and how long each
utterance's analysis came after its final."""

from __future__ import annotations

from typing import Any

from speechsvc.evaluation.bench_stream import Utterance, score_call


def event(kind: str, at: float, utterance: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "received_at": at, "leg": "customer", "utterance": utterance, **extra}


def test_finals_latency_and_the_analysis_lag_behind_each_final() -> None:
    utterances = [Utterance(0, 1.0, 2.0, "设定二十九度"), Utterance(1, 4.0, 5.0, "打开空调")]
    events = [
        event("transcript.final", 100.6, 0, start_ms=900, end_ms=2100, text="设定29度"),
        event("emotion", 100.9, 0), event("intent", 100.7, 0),
        event("transcript.final", 103.8, 1, start_ms=3900, end_ms=5100, text="打开空调"),
        event("intent", 104.0, 1),  # no emotion for this one: skipped under load
    ]
    result = score_call(0, events, utterances, t0=98.0)
    assert [round(x, 3) for x in result.final_latency_s] == [0.6, 0.8]
    assert [e for e, _ in result.edits_chars] == [0, 0]
    assert {k: [round(x, 3) for x in v] for k, v in result.analysis_lag_s.items()} == {
        "intent": [0.1, 0.2], "emotion": [0.3]}
    assert result.analysis_missing == {"emotion": 1}


def test_a_stage_that_is_off_is_not_counted_missing() -> None:
    events = [event("transcript.final", 10.5, 0, start_ms=0, end_ms=1000, text="好")]
    result = score_call(0, events, [Utterance(0, 0.0, 1.0, "好")], t0=9.0)
    assert result.analysis_lag_s == {} and result.analysis_missing == {}
