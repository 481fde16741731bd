"""The partial cadence of a leg: due points, stretching under load and relaxing back (no model)."""

from __future__ import annotations

from speechsvc.runtime.partials import PartialCadence


def test_first_partial_then_every_interval() -> None:
    c = PartialCadence(interval=16000, first=9600, max_stretch=4)
    assert c.due() == 9600
    c.taken(9700)
    assert c.due() == 9700 + 16000


def test_misses_stretch_to_the_bound_and_prompt_deliveries_relax() -> None:
    c = PartialCadence(interval=16000, first=9600, max_stretch=4)
    c.taken(10000)
    c.missed()
    assert c.due() == 10000 + 2 * 16000
    c.missed()
    c.missed()
    assert c.stretch == 4  # 1 s -> 2 s -> 4 s, no further
    c.delivered(5.0, prompt=False)
    assert c.stretch == 4 and c.waiting_since == 5.0
    c.delivered(6.0, prompt=True)
    assert c.stretch == 2
    c.delivered(7.0, prompt=True)
    c.delivered(8.0, prompt=True)
    assert c.stretch == 1


def test_a_new_utterance_starts_over_but_keeps_the_load_stretch() -> None:
    c = PartialCadence(interval=16000, first=9600, max_stretch=4)
    c.taken(30000)
    c.missed()
    c.reset(now=12.5)
    assert c.due() == 9600 and c.stretch == 2 and c.waiting_since == 12.5
