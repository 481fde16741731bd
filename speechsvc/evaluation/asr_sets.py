"""The ASR dev sets as items, split by source into tune and holdout, at 16 kHz and through telephone chains.

**Split rule** (deterministic, decided before any figure was looked at): items are grouped into source
*families* (``read``: AISHELL read commands, one source per speaker; ``prompt``: single read or TTS sentences,
one source per origin repository; ``spontaneous``: podcast, live-stream and dialogue speech, likewise;
English ``en``). Within a family, sources are sorted by the SHA-1 of their name and alternate tune, holdout,
tune, ... . Choices are made on tune; holdout is what is reported. That gives, for Mandarin:

=============  ===================================  ===========================
family         tune                                 holdout
=============  ===================================  ===========================
read           AISHELL speaker S0150 (90 utts)      AISHELL speaker S0252 (40)
prompt         fireredasr2s, kimiaudio, funasr      cosyvoice, speechrecognition
spontaneous    fireredtts2, soulxpodcast            mossttsd (3 turns, one 16 s)
long_turn      -                                    magicdata talk, 15-28 s turns
read_turn      S0150's utterances joined, 15-28 s   S0252's, likewise
=============  ===================================  ===========================

``long_turn`` (bronze references: machine-made) is held out whole and reported on its own, never in the
headline CER. The AISHELL utterances inside ``eval/long``'s 290 s recording are cut out by its exact
segment times (``S0150`` joins the tune part, ``S0252`` is the only holdout read speaker). ``read_turn`` joins each
speaker's consecutive utterances of that recording (0.6 s apart) into turns of 15-28 s: several sentences in one
decoded chunk, where Whisper may stop after the first; it repeats the ``read`` audio, so it is reported on its own
and never in the headline CER (as ``long_turn``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from speechsvc.evaluation.telephone import CHAINS, Chain, build
from speechsvc.speech.audio import decode_file, encode_file
from speechsvc.types import Float32Array

TUNE, HOLDOUT = "tune", "holdout"
APART = ("long_turn", "read_turn")  # families reported on their own, never in the headline ("all") figure
LONG_TURN_S = (15.0, 28.0)  # a long turn: consecutive slices of the talk joined to at least 15 s, at most 28 s


@dataclass(frozen=True)
class Item:
    key: str  # unique, file-name safe
    language: str
    family: str
    source: str
    quality: str  # gold | silver | bronze
    reference: str
    audio: Path  # the 16 kHz original
    start_s: float = 0.0  # a slice of ``audio`` (end 0: the whole file)
    end_s: float = 0.0
    tel_file: Path | None = None  # the shared simulated-telephone copy, when there is one

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def split_of(family: str, source: str, sources: list[str]) -> str:
    if family == "long_turn":
        return HOLDOUT
    if family == "read_turn":  # the speakers' split of the ``read`` family
        family, sources = "read", [s for s in sources if s.startswith("aishell-")]
    order = sorted(set(sources), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return TUNE if order.index(source) % 2 == 0 else HOLDOUT


def _family(row: dict[str, str]) -> str:
    if row["id"].startswith("aishellsample"):
        return "read"
    return "spontaneous" if "spontaneous" in row.get("speech_style", "") else "prompt"


def _source(row: dict[str, str]) -> str:
    head = row["id"].split("_")[0]
    return "aishell-S0150" if head == "aishellsample" else head


def zh_items(eval_dir: Path) -> list[Item]:
    """Mandarin items (gold and silver; bronze only as ``long_turn``)."""
    folder = eval_dir / "asr_zh"
    items = []
    for row in csv.DictReader((folder / "manifest.csv").open()):
        if row.get("transcript_quality") not in ("gold", "silver") or not row.get("reference_text"):
            continue
        items.append(Item(row["id"], "zh", _family(row), _source(row), row["transcript_quality"],
                          row["reference_text"], folder / row["file"], 0.0, float(row["duration_s"]),
                          folder / row["tel_file"] if row.get("tel_file") else None))
    long = eval_dir / "long"
    concat = long / "audio" / "aishellsample_S0150_S0252_concat_read.wav"
    segments = long / "segments" / "aishellsample_S0150_S0252_concat_read.json"
    if segments.is_file():
        read = json.loads(segments.read_text())
        for seg in read:
            speaker = seg["source_id"][6:11]  # BAC009S0252W0051 -> S0252
            items.append(Item(f"aishellsample_{seg['source_id']}", "zh", "read", f"aishell-{speaker}", "gold",
                              seg["text"], concat, float(seg["start"]), float(seg["end"])))
        for speaker in dict.fromkeys(str(seg["source_id"])[6:11] for seg in read):
            turns = _long_turns([seg for seg in read if seg["source_id"][6:11] == speaker], concat)
            items += [replace(t, key=f"aishell-{speaker}_{t.key.split('_')[-1]}", family="read_turn",
                              source=f"aishell-{speaker}", quality="gold") for t in turns]
    talk = long / "segments" / "magicdata_viewer_guava_talk_monologue.json"
    if talk.is_file():
        items += _long_turns(json.loads(talk.read_text()), long / "audio" / "magicdata_viewer_guava_talk_monologue.wav")
    return items


def _long_turns(slices: list[dict[str, object]], audio: Path) -> list[Item]:
    """Consecutive slices joined into turns of LONG_TURN_S seconds (the talk is one speaker's monologue)."""
    low, high = LONG_TURN_S
    turns: list[list[dict[str, object]]] = [[]]
    for s in slices:
        turn = turns[-1]
        if turn and float(str(s["end"])) - float(str(turn[0]["start"])) > high:
            turns.append([])
        turns[-1].append(s)
    out = []
    for k, turn in enumerate(turns):
        start, end = float(str(turn[0]["start"])), float(str(turn[-1]["end"]))
        if end - start >= low:
            out.append(Item(f"magicdata_turn{k:02d}", "zh", "long_turn", "magicdata", "bronze",
                            "".join(str(s["text"]) for s in turn), audio, start, end))
    return out


def en_items(eval_dir: Path) -> list[Item]:
    folder = eval_dir / "asr_en"
    items = []
    for row in csv.DictReader((folder / "manifest.csv").open()):
        if row.get("transcript_quality") not in ("gold", "silver", "approx") or not row.get("reference_text"):
            continue
        items.append(Item(row["id"], "en", "en", row["id"].split("_")[0], row["transcript_quality"],
                          row["reference_text"], folder / row["file"], 0.0, float(row["duration_s"] or 0),
                          folder / row["orig_8k_file"] if row.get("orig_8k_file") else None))
    return items


def with_splits(items: list[Item]) -> dict[str, list[Item]]:
    """{tune: [...], holdout: [...]} by the split rule."""
    sources: dict[str, list[str]] = defaultdict(list)
    for item in items:
        sources[item.family].append(item.source)
    out: dict[str, list[Item]] = {TUNE: [], HOLDOUT: []}
    for item in items:
        out[split_of(item.family, item.source, sources[item.family])].append(item)
    return out


def conditions() -> dict[str, Chain | None]:
    """Audio conditions: the 16 kHz original, the shared 8 kHz simulation, and each telephone chain."""
    return {"16k": None, "sim8k": None} | {c.name: c for c in CHAINS}


def materialize(item: Item, condition: str, cache: Path, noise_dir: Path | None = None) -> Path | None:
    """The file the pipeline decodes for ``item`` under ``condition`` (built into ``cache`` when needed);
    None when the condition does not apply (``sim8k`` without a shared copy)."""
    if condition == "sim8k":
        return item.tel_file if item.tel_file and item.start_s == 0.0 else None
    if condition == "16k":
        if not _is_slice(item):
            return item.audio
        path = cache / "16k" / f"{item.key}.wav"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            encode_file(path, _slice(item)[None, :], 16000, "pcm_s16le")
        return path
    chain = conditions()[condition]
    assert chain is not None
    noise = _noise(noise_dir, chain)
    return build(_slice(item), 16000, chain, item.key, cache, noise)


def _is_slice(item: Item) -> bool:
    return item.audio.name != f"{item.key}.wav"


@functools.lru_cache(maxsize=4)
def _decoded(path: Path) -> Float32Array:
    audio: Float32Array = decode_file(path)[0][0]
    return audio


def _slice(item: Item) -> Float32Array:
    audio = _decoded(item.audio)
    if not _is_slice(item):
        return audio
    return audio[int(item.start_s * 16000) : int(item.end_s * 16000)]


def _noise(noise_dir: Path | None, chain: Chain) -> Float32Array | None:
    if noise_dir is None or chain.noise_file is None or not (noise_dir / chain.noise_file).is_file():
        return None
    return _decoded(noise_dir / chain.noise_file)
