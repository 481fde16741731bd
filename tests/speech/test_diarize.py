"""Diarization logic without a model: clustering of embeddings, splitting segments at speaker changes (with an
encoder stand-in that reads the speaker from the audio's pitch), and roles from text."""

from __future__ import annotations

import numpy as np
import pytest

from speechsvc.analysis.roles import SpeakerText, assign_roles, cues_for, two_sides
from speechsvc.batch.speakers import Split, label_roles
from speechsvc.speech.diarize import DiarizeOptions, cluster, diarize, kmeans, spectral_labels
from speechsvc.types import Float32Array, SpeechSegment
from tests.support.fakes import TwoToneVoices

SR = 16000


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), np.float32)


def _two_voices(n: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = _unit(rng.normal(size=64)), _unit(rng.normal(size=64))
    labels = rng.integers(0, 2, n)
    x = np.where(labels[:, None] == 0, a, b) + spread * rng.normal(size=(n, 64))
    return _unit(x), labels


def _agree(found: np.ndarray, truth: np.ndarray) -> float:
    same = float(np.mean(found == truth))
    return max(same, 1 - same)


def test_spectral_clustering_separates_two_noisy_voices() -> None:
    x, truth = _two_voices(200, spread=0.12)
    assert _agree(spectral_labels(x, 2, 0.25), truth) > 0.97
    assert set(kmeans(x, 2)) == {0, 1}


def test_one_voice_stays_one_speaker_and_empty_input_is_fine() -> None:
    rng = np.random.default_rng(1)
    x = _unit(_unit(rng.normal(size=64)) + 0.03 * rng.normal(size=(80, 64)))
    assert cluster(x, DiarizeOptions(speakers=2, same_speaker=0.9)).shape[0] == 1
    assert cluster(np.zeros((0, 64), np.float32), DiarizeOptions()).shape[0] == 0


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        DiarizeOptions(speakers=0)
    with pytest.raises(ValueError):
        DiarizeOptions(hop_s=2.0, window_s=1.5)
    with pytest.raises(ValueError):
        DiarizeOptions(fine_window_s=0.5, fine_hop_s=0.75)


def pitch_encoder() -> TwoToneVoices:
    """Two voices (a 200 Hz and a 500 Hz tone) at a cosine of about 0.2."""
    return TwoToneVoices(np.eye(8)[:2] + 0.1)


def _tone(freq: float, seconds: float) -> Float32Array:
    t = np.arange(int(seconds * SR)) / SR
    return np.asarray(0.3 * np.sin(2 * np.pi * freq * t), np.float32)


def _segment(index: int, start_s: float, audio: Float32Array) -> SpeechSegment:
    start = int(start_s * 1000)
    return SpeechSegment("mixed", index, start, start + audio.size * 1000 // SR, audio)


def test_segments_are_split_where_the_speaker_changes() -> None:
    # Speaker A alone, then a segment where A talks 3 s and B answers 3 s with no pause, then B alone.
    segments = [
        _segment(0, 0.0, _tone(200, 2.5)),
        _segment(1, 3.0, np.concatenate([_tone(200, 3.0), _tone(500, 3.0)])),
        _segment(2, 10.0, _tone(500, 2.0)),
        _segment(3, 13.0, _tone(200, 0.4)),  # a short turn, shorter than a window
    ]
    result = diarize(segments, pitch_encoder(), DiarizeOptions(speakers=2))  # type: ignore[arg-type]
    assert result.speakers == 2
    parts = [(p.segment.start_ms, p.segment.end_ms, p.speaker) for p in result.segments]
    assert parts[0] == (0, 2500, 0)
    # The mixed segment becomes two parts, cut within 0.3 s of the change at 6 s, on different speakers.
    assert len(parts) == 5 and parts[1][2] == 0 and parts[2][2] == 1
    assert abs(parts[1][1] - 6000) <= 300 and parts[2][0] == parts[1][1] and parts[2][1] == 9000
    assert parts[3][2] == 1 and parts[4][2] == 0
    # Parts carry their own audio and are renumbered in time order.
    assert [p.segment.index for p in result.segments] == [0, 1, 2, 3, 4]
    assert all(p.segment.audio.size == pytest.approx((p.segment.end_ms - p.segment.start_ms) * 16, abs=16)
               for p in result.segments)


def test_a_brief_flicker_inside_a_turn_is_smoothed_away() -> None:
    audio = np.concatenate([_tone(200, 3.0), _tone(500, 0.3), _tone(200, 3.0)])
    result = diarize([_segment(0, 0.0, audio), _segment(1, 7.0, _tone(500, 3.0))], pitch_encoder(),  # type: ignore[arg-type]
                     DiarizeOptions(speakers=2, min_turn_s=1.0))
    assert [(p.segment.start_ms, p.speaker) for p in result.segments] == [(0, 0), (7000, 1)]


def test_roles_from_a_service_call() -> None:
    said = [
        SpeakerText(1, 0, "您好，工号三零一七，很高兴为您服务，请问有什么可以帮您？"),
        SpeakerText(0, 5000, "喂你好，我那个信用卡好像丢了"),
        SpeakerText(1, 9000, "您别着急，我这边先帮您办理临时挂失"),
        SpeakerText(0, 15000, "好的谢谢"),
        SpeakerText(1, 18000, "请问还有什么可以帮您？感谢您的来电"),
    ]
    roles = assign_roles(said, 2)
    assert roles.roles == ("customer", "agent") and roles.confidence > 0.9
    assert roles.label(1) == "agent" and roles.leg(0) == "customer"


def test_weak_evidence_keeps_speaker_numbers() -> None:
    roles = assign_roles([SpeakerText(0, 0, "今天天气不错"), SpeakerText(1, 2000, "是啊")], 2)
    assert roles.roles == (None, None) and not roles.known
    assert roles.label(0) == "speaker_0" and roles.leg(1) == "mixed"
    assert assign_roles([SpeakerText(0, 0, "您好")], 1).roles == (None,)


def test_english_roles_and_the_qa_pack_cues() -> None:
    roles = assign_roles([SpeakerText(0, 0, "Hi, I want to change my order, it never arrived."),
                          SpeakerText(1, 3000, "Thank you for calling, let me check that for you."),
                          SpeakerText(0, 6000, "Why is it so late?")], 2)
    assert roles.roles == ("customer", "agent")
    cues = cues_for()
    assert any(cue == "欢迎来电" for cue, _ in cues.agent)  # from the pack's greeting matcher
    assert cues.agent_patterns  # the pack's regexes (the job-number pattern)


def test_labelled_segments_move_onto_role_legs_renumbered() -> None:
    segs = [_segment(i, float(i * 3), _tone(200, 1.0)) for i in range(4)]
    split = Split(segs, [1, 0, 1, 0], 2)
    texts = ["您好，工号八零六三，请问有什么可以帮您", "我想查一下我的账单", "好的，请您稍等，我这边帮您查询", ""]
    labelled = label_roles(split, texts)
    assert labelled.legs == ("customer", "agent")
    assert [(s.leg, s.index) for s in labelled.segments] == [
        ("agent", 0), ("customer", 0), ("agent", 1), ("customer", 1)]
    assert labelled.speakers == ["speaker_1", "speaker_0", "speaker_1", "speaker_0"]
    assert labelled.summary()["roles"] == {"speaker_0": "customer", "speaker_1": "agent"}


def test_a_voice_heard_in_too_few_windows_is_not_a_speaker() -> None:
    rng = np.random.default_rng(2)
    a, b = _unit(rng.normal(size=64)), _unit(rng.normal(size=64))
    x = _unit(np.vstack([a + 0.05 * rng.normal(size=(40, 64)), b + 0.05 * rng.normal(size=(2, 64))]))
    assert cluster(x, DiarizeOptions(speakers=2, min_speaker_windows=3)).shape[0] == 1
    assert cluster(x, DiarizeOptions(speakers=2, min_speaker_windows=2)).shape[0] == 2


def test_voices_merged_for_sounding_alike_keep_their_split() -> None:
    # Two "voices" whose centroids are closer than same_speaker: one speaker, but the parts are still cut where
    # the split before the merge changes speaker, and that split is kept for the roles to decide.
    segments = [_segment(0, 0.0, _tone(200, 3.0)), _segment(1, 4.0, np.concatenate([_tone(500, 3.0),
                                                                                   _tone(200, 3.0)]))]
    result = diarize(segments, pitch_encoder(), DiarizeOptions(speakers=2, same_speaker=0.1))  # type: ignore[arg-type]
    assert result.speakers == 1 and {p.speaker for p in result.segments} == {0}
    assert result.unmerged == (0, 1, 0) and result.unmerged_count == 2
    assert abs(result.segments[1].segment.end_ms - 7000) <= 300
    kept = diarize(segments, pitch_encoder(), DiarizeOptions(speakers=2))  # type: ignore[arg-type]
    assert kept.speakers == 2 and kept.unmerged is None


def test_roles_keep_merged_voices_apart_only_when_the_text_shows_both_sides() -> None:
    segs = [_segment(i, float(i * 3), _tone(200, 1.0)) for i in range(4)]
    split = Split(segs, [0, 0, 0, 0], 1, unmerged=[0, 1, 0, 1], unmerged_count=2)
    both = ["您好，工号八零六三，请问有什么可以帮您", "我想查一下我的账单，你们怎么回事",
            "好的，请您稍等，我这边帮您查询", "为什么又扣我的钱"]
    labelled = label_roles(split, both)
    assert labelled.legs == ("customer", "agent") and labelled.speakers == ["speaker_0", "speaker_1"] * 2
    assert [s.leg for s in labelled.segments] == ["agent", "customer", "agent", "customer"]
    one_side = ["您好，工号八零六三，请问有什么可以帮您", "请您稍等", "好的，我这边帮您查询", "感谢您的来电"]
    alone = label_roles(split, one_side)
    assert alone.legs == ("mixed",) and set(alone.speakers) == {"speaker_0"}
    roles = assign_roles([SpeakerText(0, 0, both[0]), SpeakerText(1, 1, both[1])], 2)
    assert two_sides(roles) and not two_sides(assign_roles([SpeakerText(0, 0, "今天天气不错")], 2))
