"""The PII redaction stage: every partial and final transcript passes through it before anyone sees it.

It runs first (phase 0) and rewrites transcripts (:meth:`StageCall.rewrite`), so the client, event subscribers,
the webhook, later stages (intent, escalation, QA, assist), batch outputs and REST results only ever see the
redacted text; each transcript says which spans were replaced (type and offsets in the redacted text, never
the value). Detection is :mod:`~speechsvc.analysis.pii.detector`, one state per leg, so a number dictated over
several utterances is recognised as one and each piece is redacted.

Policy: the deployment's settings (``pii_*``), adjusted per call by its ``redaction`` request (types, style;
turning redaction off only where ``pii_call_opt_out`` allows it — checked at admission).

When a final carries word timings, each redacted span also gets its audio time (``start_ms``/``end_ms``), so
recorded-call outputs can silence or beep the audio (``speechsvc batch --redact-audio``) and a platform that
keeps its own recording can do the same.
"""

from __future__ import annotations

from dataclasses import replace

from speechsvc.analysis.base import CallInfo, Said, Stage, StageCall
from speechsvc.analysis.pii.audio import entity_spans_ms
from speechsvc.analysis.pii.model import lac_model
from speechsvc.analysis.pii.policy import PiiPolicy, Redaction
from speechsvc.analysis.pii.redactor import PiiRedactor, PiiState
from speechsvc.analysis.pii.rules import ADDRESS, ALL_TYPES, NAME
from speechsvc.config import Settings
from speechsvc.types import CallConfig, Leg, Redacted, RedactionRequest, Transcript, Word

# Word timings are approximate: widen the audio span of a redacted value by this much on each side, and the end
# of a value that ends on a digit by DIGIT_TAIL_MS more (a number's last digit often outlasts its timestamp).
# The defaults of the settings PII_AUDIO_PAD_MS and PII_AUDIO_DIGIT_TAIL_MS.
AUDIO_PAD_MS = 80
DIGIT_TAIL_MS = 200


def call_policy(base: PiiPolicy, request: RedactionRequest) -> PiiPolicy:
    """The deployment's policy with a call's own request applied (already checked at admission)."""
    return replace(
        base,
        enabled=base.enabled if request.enabled is None else request.enabled,
        types=base.types if request.types is None else frozenset(request.types),
        style=base.style if request.style is None else request.style,  # type: ignore[arg-type]
    )


def check_request(request: RedactionRequest, settings: Settings) -> None:
    """Raises ValueError naming what a call may not ask for."""
    if request.enabled is False and not settings.pii_call_opt_out:
        raise ValueError("this deployment does not let a call turn PII redaction off")
    if request.enabled and not settings.pii_redaction:
        raise ValueError("PII redaction is off in this deployment")
    if request.types is not None and (unknown := set(request.types) - set(ALL_TYPES)):
        raise ValueError(f"unknown PII types {sorted(unknown)}; use {list(ALL_TYPES)}")
    if request.style not in (None, "tag", "mask"):
        raise ValueError(f"redaction style {request.style!r}; use tag or mask")


class RedactionStage(Stage):
    """Loads the name/address model once; per call, one redaction state per leg."""

    name = "pii"
    phase = 0

    def __init__(
        self, policy: PiiPolicy, mask_dtmf: bool = True, pad_ms: int = AUDIO_PAD_MS, digit_tail_ms: int = DIGIT_TAIL_MS
    ) -> None:
        self.policy = policy
        self.mask_dtmf = mask_dtmf
        self.margins = (pad_ms, digit_tail_ms)  # widening of each value's audio span (see AUDIO_PAD_MS)

    @classmethod
    def check(cls, config: CallConfig, settings: Settings) -> None:
        """A call's redaction request (admission; see :func:`check_request`)."""
        try:
            check_request(config.redaction, settings)
        except ValueError as e:
            raise ValueError(f"redaction: {e}") from None

    @classmethod
    def load(cls, settings: Settings) -> RedactionStage | None:
        if not settings.pii_redaction:
            return None
        policy = PiiPolicy(
            types=frozenset(settings.pii_types or ALL_TYPES),
            style=settings.pii_style,
            min_digits=settings.pii_min_digits,
            use_model=settings.pii_names_addresses,
        )
        if policy.use_model and {NAME, ADDRESS} & policy.types:
            lac_model()  # load at start-up, not on the first call
        return cls(policy, settings.pii_dtmf == "mask", settings.pii_audio_pad_ms, settings.pii_audio_digit_tail_ms)

    def open(self, call: CallInfo) -> StageCall[None]:
        policy = call_policy(self.policy, call.redaction)
        return _RedactionCall(PiiRedactor(policy), self.mask_dtmf and policy.enabled, self.margins)


class _RedactionCall(StageCall[None]):
    def __init__(
        self, redactor: PiiRedactor, mask_dtmf: bool, margins: tuple[int, int] = (AUDIO_PAD_MS, DIGIT_TAIL_MS)
    ) -> None:
        self.redactor = redactor
        self.mask_dtmf = mask_dtmf
        self.margins = margins
        self.states: dict[Leg, PiiState] = {}

    def rewrite(self, said: Said) -> Said:
        if isinstance(said, Transcript):
            return self._redact(said)
        # Keypad input: card numbers and PINs are typed as often as they are said.
        return replace(said, digit="*", masked=True) if self.mask_dtmf else said

    def _redact(self, transcript: Transcript) -> Transcript:
        state = self.states.get(transcript.leg)
        if state is None:
            state = self.states[transcript.leg] = self.redactor.new_state()
        t = transcript
        if t.is_final:
            red = state.redact_final(t.text, t.end_ms)
        else:
            red = state.redact_partial(t.text, t.end_ms)
        if not red.entities:
            return t
        spans = _audio_spans(red, t, *self.margins)
        redactions = tuple(Redacted(e.type, e.start, e.end, *span) for e, span in zip(red.entities, spans, strict=True))
        stable = red.text if t.is_final else red.text[: _redacted_offset(red, len(t.stable_text))]
        return replace(t, text=red.text, stable_text=stable, redactions=redactions, words=_redact_words(t, red))


def _redacted_offset(red: Redaction, source_offset: int) -> int:
    """Where an offset of the clear text falls in the redacted text; inside a redacted value, at its start
    (so a partial's stable prefix never ends in the middle of a replaced value)."""
    shift = 0
    for e in red.entities:
        if e.source_end <= source_offset:
            shift += (e.end - e.start) - (e.source_end - e.source_start)
        elif e.source_start < source_offset:
            return e.start
    return source_offset + shift


def _audio_spans(
    red: Redaction, t: Transcript, pad_ms: int = AUDIO_PAD_MS, digit_tail_ms: int = DIGIT_TAIL_MS
) -> list[tuple[int | None, int | None]]:
    if not t.words:
        return [(None, None)] * len(red.entities)
    words = [(w.text, w.start_ms, w.end_ms) for w in t.words]
    if sum(len(w[0]) for w in words) != len(t.text):
        return [(None, None)] * len(red.entities)  # timings that do not spell the text cannot place a value
    return [(start, end) for start, end in entity_spans_ms(red, words, pad_ms, digit_tail_ms)]


def _redact_words(t: Transcript, red: Redaction) -> tuple[Word, ...]:
    """The word timings of the redacted text: each redacted value becomes one word (its replacement, timed
    from the first to the last word it covers), the other words keep their text and times. Word texts never
    carry what the transcript hides, and they still spell its (redacted) text exactly; timings that cannot
    be mapped are dropped rather than shown out of step."""
    if not t.words or sum(len(w.text) for w in t.words) != len(t.text):
        return ()
    owner = [i for i, w in enumerate(t.words) for _ in w.text]  # the word of each clear character
    pieces: list[tuple[str, tuple[str, int], int, int, float]] = []  # (text, group, start, end, probability)

    def clear(a: int, b: int) -> None:
        for c in range(a, b):
            w = t.words[owner[c]]
            pieces.append((t.text[c], ("word", owner[c]), w.start_ms, w.end_ms, w.probability))

    pos = 0
    for n, e in enumerate(sorted(red.entities, key=lambda e: e.source_start)):
        clear(pos, e.source_start)
        covered = [t.words[i] for i in sorted(set(owner[e.source_start : e.source_end]))]
        if covered:
            pieces.append((red.text[e.start : e.end], ("value", n), min(w.start_ms for w in covered),
                           max(w.end_ms for w in covered), min(w.probability for w in covered)))
        pos = max(pos, e.source_end)
    clear(pos, len(t.text))
    words: list[Word] = []
    groups: list[tuple[str, int]] = []
    for text, group, start, end, probability in pieces:
        if groups and groups[-1] == group:
            words[-1] = replace(words[-1], text=words[-1].text + text)
        else:
            words.append(Word(text, start, end, probability))
            groups.append(group)
    return tuple(words) if "".join(w.text for w in words) == red.text else ()
