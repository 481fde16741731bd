"""Whisper ASR on CTranslate2 (via faster-whisper's loader, tokenizer and feature extractor).

We call ``ctranslate2.models.Whisper`` directly instead of ``WhisperModel.transcribe`` because the
streaming path decodes one short VAD segment at a time, and three measured choices matter there
(``shared/ASR_NOTES.md``):

* **Encode only the real length.** faster-whisper pads every decode to a 30 s window; we pad the
  log-mel features (with their minimum) to ``max(min_window_s, speech + 2 s)``. 3.6x faster on short
  utterances at +0.006 CER.
* **Bound the output by the audio length** (``tokens_per_second``) and fall back to temperature sampling
  when the greedy hypothesis is repetitive (gzip compression ratio) or runs into the bound: greedy
  Whisper loops on short clips (``第五大道００００…``), which cost 0.38 CER. Recorded chunks whose greedy text
  the model doubts (``fallback_logprob``) are sampled again too, as faster-whisper does; live finals are not.
* **No Chinese prompt; convert to Simplified afterwards** with OpenCC (Whisper writes Traditional
  characters for ``zh``, and a Simplified prompt made accuracy worse); punctuation and script in
  :mod:`speechsvc.speech.text`.

Word (for Chinese: character) timings, on request, come from the decoder's cross-attention over the same
encoder output (CTranslate2's ``align``, dynamic time warping as faster-whisper's ``word_timestamps``); they
cost one more decoder pass per segment, so only callers that need them ask (audio redaction, ``words``).

Thread-safety: a :class:`WhisperRecognizer` is used by one thread at a time (its
:class:`~speechsvc.workers.InferenceWorker`); CTranslate2 parallelises inside a call.
"""

from __future__ import annotations

import logging
import math
import os
import unicodedata
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.config import AsrOptions
from speechsvc.errors import InvalidAudio, ModelUnavailable
from speechsvc.speech.text import REPLACEMENT, TextNormalizer, converter, word_separator
from speechsvc.types import PIPELINE_RATE, Float32Array, ModelInfo, Word

log = logging.getLogger(__name__)

HOP_LENGTH = 160
FRAMES_PER_SECOND = PIPELINE_RATE // HOP_LENGTH  # 100 log-mel frames per second
MAX_FRAMES = 30 * FRAMES_PER_SECOND  # Whisper's 30 s window: 3000 frames
MAX_SAMPLES = 30 * PIPELINE_RATE
MAX_NEW_TOKENS = 440  # Whisper's decoder holds 448 positions, the prompt included
WINDOW_STEP_S = 5  # longer segments' windows come in steps of this
MAX_HOTWORD_TOKENS = 200  # faster-whisper's bound: under half the decoder's positions
MAX_CONTEXT_TOKENS = 128  # of a live leg's previous finals
TIME_PRECISION_S = 0.02  # one timestamp token step
MIN_CONTINUE_CUT_S = 0.5  # a continuation starts at least this far in, so every round decodes less audio
@dataclass(frozen=True)
class AsrRequest:
    audio: Float32Array  # 16 kHz mono float32 in [-1, 1]
    language: str | None  # None = detect among AsrOptions.languages
    partial: bool = False
    words: bool = False  # also align the text to the audio (word/character timings)
    # Words to bias the decoder toward (product, branch, place names), on top of the deployment's list.
    hotwords: tuple[str, ...] = ()
    decode: bool = True  # False: only the encoder statistics (no text)
    # What the speaker said just before (a live leg's previous finals), given to the decoder as previous text.
    context: str = ""
    # Whisper's task: "translate" gives English text whatever was spoken (no word timings then).
    task: str = "transcribe"
    # Recorded audio: decode with timestamps and, when the text ends well before the audio does (Whisper stopped
    # after a sentence), decode the rest and append it (``AsrOptions.continue_after_s``).
    complete: bool = False

    @property
    def cost_s(self) -> float:
        """Estimated work, for the worker's bound on a batch: seconds of audio to encode (speech + 2 s margin)."""
        return self.audio.size / PIPELINE_RATE + 2.0


@dataclass(frozen=True)
class AsrResult:
    text: str
    language: str
    confidence: float  # exp(mean token log-prob)
    no_speech_prob: float
    # Mean and std over time of the encoder output for the real frames (for the emotion head).
    encoder_stats: Float32Array | None = field(default=None, repr=False)
    # When asked for: timings relative to the segment's start; their texts joined spell ``text`` exactly.
    words: tuple[Word, ...] = ()
    # The greedy hypothesis hit the output bound or repeated itself and was decoded again (more decoder passes).
    fallback: bool = False


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def window_frames(n_samples: int, min_window_s: float) -> int:
    """Encoder window for ``n_samples`` of speech: at least ``min_window_s``, else speech + 2 s rounded up to
    whole ``WINDOW_STEP_S`` (so segments of similar length share a window and batch together)."""
    speech_frames = math.ceil(n_samples / HOP_LENGTH)
    floor = int(min_window_s * FRAMES_PER_SECOND)
    wanted = speech_frames + 2 * FRAMES_PER_SECOND
    if wanted > floor:
        step = WINDOW_STEP_S * FRAMES_PER_SECOND
        wanted = -(-wanted // step) * step
    return min(MAX_FRAMES, max(floor, wanted))


def load_hotwords(path: Path) -> tuple[str, ...]:
    """A deployment's hotwords file: one word or name per line; blank lines and ``#`` comments skipped.

    Raises:
        ValueError: the file cannot be read, or a line is longer than 64 characters.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the hotwords file {path}: {e}") from e
    words = []
    for n, line in enumerate(lines, 1):
        word = line.split("#", 1)[0].strip()
        if len(word) > 64:
            raise ValueError(f"{path}:{n}: a hotword is at most 64 characters")
        if word:
            words.append(word)
    return tuple(dict.fromkeys(words))


def shift_words(words: tuple[Word, ...], offset_ms: int) -> tuple[Word, ...]:
    """Segment-relative word timings on the call's (or recording's) clock."""
    return tuple(Word(w.text, w.start_ms + offset_ms, w.end_ms + offset_ms, w.probability) for w in words)


def spell(text: str, pieces: list[tuple[str, int, int, float]]) -> tuple[Word, ...]:
    """Aligned pieces ``(text, start_ms, end_ms, probability)`` as words whose texts join to ``text`` exactly
    (each word keeps the spaces before it; a sentence end the normaliser added joins the last word). Each
    piece takes as many characters of ``text`` as it has (a character converted differently in the context of
    the whole text still lines up). Empty when they do not spell it: timings that cannot be placed character
    by character are worse than none."""
    out: list[Word] = []
    pos = 0
    for piece, start_ms, end_ms, probability in pieces:
        core = "".join(piece.split())
        if not core:
            continue
        lead = pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos + len(core) > len(text) or not all(_same_place(a, b) for a, b in zip(core, text[pos:], strict=False)):
            return ()
        pos += len(core)
        out.append(Word(text[lead:pos], start_ms, end_ms, round(probability, 4)))
    rest = text[pos:]
    if out and rest and all(TextNormalizer.ends_sentence(ch) for ch in rest):
        out[-1] = Word(out[-1].text + rest, out[-1].start_ms, out[-1].end_ms, out[-1].probability)
        pos = len(text)
    return tuple(out) if pos == len(text) else ()


def _match_form(text: str) -> str:
    """Lower case letters, digits and CJK characters only: how a hotword is looked for in a hypothesis."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _same_place(a: str, b: str) -> bool:
    """A character of a word and of the whole text that stand for the same thing: equal, or both CJK (script
    conversion in context), or both punctuation (full-width forms in context)."""
    return a == b or (_cjk(a) and _cjk(b)) or (unicodedata.category(a)[0] == "P" and unicodedata.category(b)[0] == "P")


def _cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


class WhisperRecognizer:
    """Batched Whisper decoding of speech segments. Load once; call from one thread."""

    def __init__(self, options: AsrOptions, model_dir: Path) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        if options.cpu_threads:
            # Set BLAS/OMP threads explicitly (ASR_NOTES): oversubscription on 2 cores doubles latency.
            os.environ.setdefault("OMP_NUM_THREADS", str(options.cpu_threads))
        device = options.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = options.compute_type
        if compute_type == "default":
            compute_type = "float16" if device == "cuda" else "int8"
        from speechsvc.workers import os_thread_named

        try:
            with os_thread_named("asr-ct2"):  # CTranslate2's compute threads start here: named for CPU accounting
                self._model = WhisperModel(
                    str(model_dir),
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=options.cpu_threads,
                    num_workers=options.inter_threads,
                    local_files_only=True,
                )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelUnavailable(f"cannot load Whisper model from {model_dir}: {e}") from e
        self.options = options
        self.device = device
        self.compute_type = compute_type
        self.model_dir = model_dir
        self._ct2 = self._model.model
        if not self._ct2.is_multilingual:
            raise ModelUnavailable(f"{model_dir} is an English-only Whisper; speechsvc needs a multilingual one")
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language="en")
        self._features = self._model.feature_extractor
        self._normalize = TextNormalizer(options.punctuation)
        self._lang_tokens = {
            lang: self._model.hf_tokenizer.token_to_id(f"<|{lang}|>") for lang in options.languages
        }
        self._aligners: dict[str, Tokenizer] = {}  # per language: its start sequence and word splitting
        self.hotwords = load_hotwords(options.hotwords_file) if options.hotwords_file else ()
        self._hint_script = converter("s2tw")
        log.info("loaded whisper %s on %s (%s)", model_dir, device, compute_type)

    def info(self) -> ModelInfo:
        return ModelInfo("asr", str(self.model_dir), self.device, self.compute_type)

    def warm_up(self) -> None:
        """One decode of a short tone so the first call does not pay for lazy initialisation."""
        from speechsvc.workers import os_thread_named

        t = np.arange(PIPELINE_RATE, dtype=np.float32) / PIPELINE_RATE
        with os_thread_named("asr-ct2"):  # CTranslate2's compute threads start here: named for CPU accounting
            self.transcribe([AsrRequest(0.1 * np.sin(2 * np.pi * 220 * t).astype(np.float32), "zh")])

    def log_mel(self, audio: Float32Array) -> Float32Array:
        """Log-mel features of up to 30 s of audio, shape (n_mels, frames)."""
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise InvalidAudio("ASR input must be 1-D float32 at 16 kHz")
        if audio.size > MAX_SAMPLES:
            raise InvalidAudio(f"ASR segment of {audio.size / PIPELINE_RATE:.1f} s exceeds 30 s")
        features: Float32Array = self._features(audio, padding=0)
        return features

    def transcribe(self, requests: list[AsrRequest]) -> list[AsrResult]:
        """Decode a batch of segments (any mix of languages); results in request order. Requests with
        ``decode=False`` are only encoded (their ``encoder_stats``, for the emotion stage)."""
        if not requests:
            return []
        # Each item is encoded in its own window, whatever else is in the batch: a batch padded to its longest
        # item gave a segment other text depending on its neighbours (batch output was not reproducible).
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            floor = self.options.partial_min_window_s if r.partial else self.options.min_window_s
            groups.setdefault(window_frames(r.audio.size, floor), []).append(i)
        results: dict[int, AsrResult] = {}
        for frames, items in groups.items():
            results.update(zip(items, self._transcribe_window([requests[i] for i in items], frames), strict=True))
        return [results[i] for i in range(len(requests))]

    def _transcribe_window(self, requests: list[AsrRequest], frames: int) -> list[AsrResult]:
        batch, encoded = self._encode([r.audio for r in requests], frames)
        stats = self._encoder_stats(encoded, [r.audio for r in requests])
        todo = [i for i, r in enumerate(requests) if r.decode]
        out = [AsrResult("", r.language or "", 0.0, 0.0, stats[i]) for i, r in enumerate(requests)]
        if len(todo) < len(requests):
            if not todo:
                return out
            import ctranslate2

            batch = batch[todo]
            encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[todo]))
        wanted = [requests[i] for i in todo]
        decoded, ends = self._decode_batch(batch, encoded, wanted, [stats[i] for i in todo])
        decoded = self._completed(wanted, decoded, ends)
        for i, result in zip(todo, decoded, strict=True):
            out[i] = result
        return out

    def _completed(self, requests: list[AsrRequest], results: list[AsrResult],
                   ends: list[float | None]) -> list[AsrResult]:
        """Each ``complete`` request whose timestamped text ends more than ``continue_after_s`` before its audio
        does, with the rest of its audio decoded (from where the text ended) and appended. Whisper often emits
        end-of-text after the first sentence of a spontaneous turn, and the rest was never decoded (measured on
        issue 27's spontaneous phone turns: the first of three sentences, CER 0.70)."""
        after = self.options.continue_after_s
        todo: list[tuple[int, int]] = []  # (item, cut in samples)
        for i, (req, res, end) in enumerate(zip(requests, results, ends, strict=True)):
            if not after or not req.complete or end is None or not res.text:
                continue
            if end >= MIN_CONTINUE_CUT_S and req.audio.size / PIPELINE_RATE - end > after:
                todo.append((i, int(end * PIPELINE_RATE)))
        if not todo:
            return results
        rest = self.transcribe([replace(requests[i], audio=requests[i].audio[cut:], language=results[i].language,
                                        context="") for i, cut in todo])
        out = list(results)
        for (i, cut), tail in zip(todo, rest, strict=True):
            if tail.text:
                out[i] = _appended(results[i], tail, cut * 1000 // PIPELINE_RATE, requests[i].words)
        return out

    def _decode_batch(self, batch: Float32Array, encoded: object, requests: list[AsrRequest],
                      stats: list[Float32Array | None]) -> tuple[list[AsrResult], list[float | None]]:
        """Results, and for timestamped (``complete``) requests where their text ends (seconds; None when
        unknown: no timestamp, or the hypothesis was replaced by a fallback)."""
        languages = self._languages(encoded, requests)
        prompts = [self._prompt(lang, r.hotwords, context=r.context, task=r.task, timestamps=self._timestamped(r))
                   for lang, r in zip(languages, requests, strict=True)]
        limits = [self._max_new_tokens(r.audio.size, len(p), self._timestamped(r))
                  for r, p in zip(requests, prompts, strict=True)]
        results = self._generate(encoded, prompts, limits)
        self._unhinted_unless_heard(encoded, requests, languages, prompts, limits, results)
        out = []
        ends: list[float | None] = []
        for i, (res, lang, limit, req) in enumerate(zip(results, languages, limits, requests, strict=True)):
            ids = res.sequences_ids[0][:limit]
            tokens = [t for t in ids if t < self._tokenizer.eot]
            text = self._decode(tokens)
            avg_logprob = _avg_logprob(res.scores[0], len(tokens))
            # Where the text ends: known only when its last segment is closed by a timestamp (text after the last
            # timestamp runs on to an unknown point, and continuing from that timestamp would repeat it).
            begin = self._tokenizer.timestamp_begin
            body = [t for t in ids if t != self._tokenizer.eot]
            end = (body[-1] - begin) * TIME_PRECISION_S if body and body[-1] >= begin else None
            bound_hit = len(res.sequences_ids[0]) >= limit
            fallback = self._needs_fallback(text, bound_hit) or self._unsure(req, avg_logprob)
            if fallback:
                greedy = text
                text, avg_logprob = self._fallback(batch[i : i + 1], prompts[i], limit, text, avg_logprob, bound_hit,
                                                   wide=req.complete)
                end = end if text == greedy else None  # a sampled text's end is not known
            if res.no_speech_prob > self.options.no_speech_threshold and avg_logprob < self.options.logprob_threshold:
                text = ""
            ends.append(end)
            translated = req.task == "translate"
            final = self._normalize(text, "en" if translated else lang, final=not req.partial)
            wanted = req.words and final and not translated
            words = self._words(encoded, i, text, lang, req.audio.size, final) if wanted else ()
            out.append(
                AsrResult(
                    text=final,
                    language=lang,
                    confidence=float(math.exp(avg_logprob)),
                    no_speech_prob=float(res.no_speech_prob),
                    encoder_stats=stats[i],
                    words=words,
                    fallback=fallback,
                )
            )
        return out, ends

    def _timestamped(self, request: AsrRequest) -> bool:
        return request.complete and not request.partial and request.task == "transcribe"

    def _unhinted_unless_heard(self, encoded: object, requests: list[AsrRequest], languages: list[str],
                               prompts: list[list[int]], limits: list[int], results: list[Any]) -> None:
        """Keep a hotword-prompted hypothesis only when it contains one of the hotwords; otherwise decode the
        item again without them. A list of names biases every decode (measured: 38 shop names raised CER on
        commands that contain none of them from 0.12 to 0.21), so speech without a listed name gets exactly the
        unprompted result, at the cost of a second decoder pass for it."""
        redo = []
        for i, (req, lang, prompt) in enumerate(zip(requests, languages, prompts, strict=True)):
            hotwords = (*req.hotwords, *self.hotwords)
            if not hotwords or prompt[0] != self._tokenizer.sot_prev:
                continue
            tokens = [t for t in results[i].sequences_ids[0][: limits[i]] if t < self._tokenizer.eot]
            heard = _match_form(self._normalize.piece(self._decode(tokens), lang))
            if not any(form and form in heard for form in (_match_form(h) for h in hotwords)):
                redo.append(i)
        if not redo:
            return
        import ctranslate2

        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[redo]))
        plain = [self._prompt(languages[i], use_hotwords=False, context=requests[i].context, task=requests[i].task,
                              timestamps=self._timestamped(requests[i])) for i in redo]
        bounds = [self._max_new_tokens(requests[i].audio.size, len(p), self._timestamped(requests[i]))
                  for i, p in zip(redo, plain, strict=True)]
        again = self._generate(features, plain, bounds)
        for i, prompt, bound, result in zip(redo, plain, bounds, again, strict=True):
            prompts[i], limits[i], results[i] = prompt, bound, result

    def _generate(self, encoded: object, prompts: list[list[int]], limits: list[int]) -> list[Any]:
        """Greedy (or beam) decoding of the batch; items with different prompts (hotwords) in one call each."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item_prompt in enumerate(prompts):
            groups.setdefault(tuple(item_prompt), []).append(i)
        results: list[Any] = [None] * len(prompts)
        for prompt, items in groups.items():
            if len(groups) == 1:
                features = encoded
            else:
                import ctranslate2

                features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[items]))
            out = self._ct2.generate(
                features,
                [list(prompt)] * len(items),
                beam_size=self.options.beam_size,
                max_length=len(prompt) + max(limits[i] for i in items),
                repetition_penalty=self.options.repetition_penalty,
                return_scores=True,
                return_no_speech_prob=True,
            )
            for i, result in zip(items, out, strict=True):
                results[i] = result
        return results

    def _words(self, encoded: object, i: int, raw: str, language: str, n_samples: int, text: str) -> tuple[Word, ...]:
        """Timings of ``raw`` (the decoded text) in item ``i`` of the batch's encoder output, as words of
        ``text`` (the normalised text)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        tokenizer = self._aligners.get(language)
        if tokenizer is None:
            tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language=language)
            self._aligners[language] = tokenizer
        tokens = tokenizer.encode(raw)
        if not tokens:
            return ()
        item = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[i : i + 1]))
        frames = min(MAX_FRAMES, math.ceil(n_samples / HOP_LENGTH))
        aligned = self._model.find_alignment(tokenizer, [tokens], item, frames)[0]
        end_ms = n_samples * 1000 // PIPELINE_RATE
        pieces = [(self._normalize.piece(w["word"], language), min(end_ms, round(w["start"] * 1000)),
                   min(end_ms, round(w["end"] * 1000)), float(w["probability"])) for w in aligned]
        return spell(text, pieces)

    def _encode(self, audios: list[Float32Array], frames: int) -> tuple[Float32Array, object]:
        """Log-mel features padded to a window of ``frames`` and their encoding. The encoding is copied to host
        memory so its statistics can be shared with the emotion stage."""
        import ctranslate2

        mels = [self.log_mel(a) for a in audios]
        batch = np.stack([_pad_frames(m, frames) for m in mels])
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(batch))
        return batch, self._ct2.encode(features, to_cpu=True)

    def encoder_stats(self, audios: list[Float32Array]) -> list[Float32Array]:
        """Pooled encoder output without decoding (emotion training); the same windows as ``transcribe``."""
        out: list[Float32Array] = []
        for audio in audios:
            _, encoded = self._encode([audio], window_frames(audio.size, self.options.min_window_s))
            out.extend(s for s in self._encoder_stats(encoded, [audio]) if s is not None)
        return out

    def _languages(self, encoded: object, requests: list[AsrRequest]) -> list[str]:
        if all(r.language for r in requests):
            return [str(r.language) for r in requests]
        detected = self._ct2.detect_language(encoded)
        langs = []
        for req, probs in zip(requests, detected, strict=True):
            if req.language:
                langs.append(req.language)
                continue
            candidates = [(p, tok[2:-2]) for tok, p in probs if tok[2:-2] in self._lang_tokens]
            langs.append(max(candidates)[1] if candidates else self.options.languages[0])
        return langs

    def _prompt(self, language: str, hotwords: tuple[str, ...] = (), use_hotwords: bool = True,
                context: str = "", task: str = "transcribe", timestamps: bool = False) -> list[int]:
        """The decoder's start: hotwords (the request's, then the deployment's) and the preceding text as
        previous text, as faster-whisper's ``hotwords`` and ``condition_on_previous_text`` do, then the task
        tokens (with ``timestamps``, without ``<|notimestamps|>``: Whisper then writes segment times, as
        faster-whisper decodes)."""
        lang_id = self._lang_tokens.get(language) or self._model.hf_tokenizer.token_to_id(f"<|{language}|>")
        if lang_id is None:
            raise InvalidAudio(f"unsupported language {language!r}")
        t = self._tokenizer
        start = [t.sot, lang_id, t.translate if task == "translate" else t.transcribe]
        if not timestamps:
            start.append(t.no_timestamps)
        words = list(dict.fromkeys((*hotwords, *self.hotwords))) if use_hotwords else []
        if not words and not context:
            return start
        # Whisper writes Mandarin in Traditional characters: hint in the script it writes.
        script = self._hint_script.convert if language == "zh" else str
        joined = ("，" if language == "zh" else ", ").join(words)
        hint = t.encode(" " + script(joined))[:MAX_HOTWORD_TOKENS] if words else []
        before = t.encode(" " + script(context))[-MAX_CONTEXT_TOKENS:] if context else []
        return [t.sot_prev, *hint, *before, *start]

    def _decode(self, tokens: list[int]) -> str:
        """Text of the tokens, never ending in a broken character: a Chinese character often takes two or
        three byte-level tokens, and decoding that stops inside one leaves U+FFFD at the end."""
        text = str(self._tokenizer.decode(tokens))
        while text.endswith(REPLACEMENT) and tokens:
            tokens = tokens[:-1]
            text = str(self._tokenizer.decode(tokens))
        return text.replace(REPLACEMENT, "").strip()

    def _max_new_tokens(self, n_samples: int, prompt_tokens: int = 4, timestamps: bool = False) -> int:
        """The output bound; timestamped decoding also writes two time tokens per segment (allowed one per
        second of audio)."""
        seconds = n_samples / PIPELINE_RATE
        room = MAX_NEW_TOKENS + 4 - prompt_tokens
        stamps = int(seconds) + 2 if timestamps else 0
        return min(room, int(self.options.tokens_per_second * seconds) + self.options.extra_tokens + stamps)

    def _needs_fallback(self, text: str, bound_hit: bool) -> bool:
        return bound_hit or compression_ratio(text) > self.options.compression_ratio_threshold

    def _unsure(self, request: AsrRequest, avg_logprob: float) -> bool:
        """Recorded audio whose greedy hypothesis the model itself doubts (average log-probability below
        ``fallback_logprob``): sampled again, as faster-whisper does, and the likeliest hypothesis kept. Live
        finals are not: the extra decodes would come out of the calls a machine holds."""
        threshold = self.options.fallback_logprob
        return threshold < 0 and request.complete and avg_logprob < threshold

    def _fallback(
        self,
        mel: Float32Array,
        prompt: list[int],
        limit: int,
        text: str,
        avg_logprob: float,
        bound_hit: bool,
        wide: bool = False,
    ) -> tuple[str, float]:
        """Re-decode one segment whose hypothesis hit the output bound, repeats itself or is doubted
        (:meth:`_unsure`).

        A hypothesis that only ran into the bound (fast speech, not a loop) is first decoded again greedily
        with twice the room: a completed text beats a truncated one. Otherwise (or if that loops too),
        temperature sampling; keep the likeliest non-repetitive hypothesis, the greedy one included. A ``wide``
        (recorded) chunk also has its greedy hypothesis in the ``fallback_window_s`` window among them."""
        import ctranslate2

        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel))
        threshold = self.options.compression_ratio_threshold
        if bound_hit and compression_ratio(text) <= threshold:
            room = min(2 * limit, MAX_NEW_TOKENS)
            again = self._greedy(features, prompt, room)
            if again is not None:
                return again
            limit = room
        best = (text, avg_logprob) if compression_ratio(text) <= threshold else None
        wider = self._wider(mel, prompt, limit) if wide else None
        if wider is not None and (best is None or wider[1] > best[1]):
            best = wider
        # Seeds only worker threads that have not sampled yet: CTranslate2's generator is thread-local and created
        # at a thread's first sample, so run to run the output still depends on what was sampled before (the
        # accuracy benchmark gives each clip a fresh, seeded sampler: speechsvc.evaluation.seeded).
        ctranslate2.set_random_seed(0)
        for temperature in self.options.fallback_temperatures:
            results = self._ct2.generate(
                features,
                [prompt],
                beam_size=1,
                num_hypotheses=self.options.fallback_hypotheses,
                sampling_topk=0,
                sampling_temperature=temperature,
                max_length=len(prompt) + limit,
                repetition_penalty=self.options.repetition_penalty,
                return_scores=True,
            )[0]
            for ids, score in zip(results.sequences_ids, results.scores, strict=True):
                tokens = [t for t in ids[:limit] if t < self._tokenizer.eot]
                candidate = self._decode(tokens)
                logprob = _avg_logprob(score, len(tokens))
                if len(ids) >= limit or compression_ratio(candidate) > self.options.compression_ratio_threshold:
                    continue
                if best is None or logprob > best[1]:
                    best = (candidate, logprob)
            if best is not None:
                return best
        return text, avg_logprob

    def _wider(self, mel: Float32Array, prompt: list[int], limit: int) -> tuple[str, float] | None:
        """The greedy hypothesis of ``mel`` (one item) padded to the ``fallback_window_s`` window; None when that
        window is no wider than the one decoded, or the hypothesis loops or runs into the bound."""
        import ctranslate2

        frames = int(self.options.fallback_window_s * FRAMES_PER_SECOND)
        if frames <= mel.shape[-1]:
            return None
        padded = _pad_frames(mel[0], frames)[None]
        return self._greedy(ctranslate2.StorageView.from_array(np.ascontiguousarray(padded)), prompt, limit)

    def _greedy(self, features: object, prompt: list[int], room: int) -> tuple[str, float] | None:
        """One greedy decode of ``features`` with ``room`` tokens of output: its text and average log-prob, or
        None when it runs into the bound or repeats itself."""
        result = self._ct2.generate(features, [prompt], beam_size=1, max_length=len(prompt) + room,
                                    repetition_penalty=self.options.repetition_penalty, return_scores=True)[0]
        ids = result.sequences_ids[0]
        tokens = [t for t in ids[:room] if t < self._tokenizer.eot]
        candidate = self._decode(tokens)
        if len(ids) >= room or compression_ratio(candidate) > self.options.compression_ratio_threshold:
            return None
        return candidate, _avg_logprob(result.scores[0], len(tokens))

    def _encoder_stats(self, encoded: object, audios: list[Float32Array]) -> list[Float32Array | None]:
        """Mean/std over the real (unpadded) encoder frames of each item: 2 x d_model floats."""
        array = np.asarray(encoded)
        stats: list[Float32Array | None] = []
        for i, audio in enumerate(audios):
            n = max(1, math.ceil(audio.size / HOP_LENGTH / 2))  # the encoder halves the frame rate
            frames = array[i, :n]
            stats.append(np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32))
        return stats


def _pad_frames(mel: Float32Array, frames: int) -> Float32Array:
    """Pad (with the minimum, i.e. silence) or cut log-mel features to ``frames`` columns."""
    if mel.shape[1] >= frames:
        return mel[:, :frames]
    fill = float(mel.min()) if mel.size else -1.5
    return np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), constant_values=fill)


def _appended(head: AsrResult, tail: AsrResult, offset_ms: int, words: bool) -> AsrResult:
    """``head`` with ``tail`` (decoded from ``offset_ms`` into the same audio) after it: texts joined (a space
    between words of languages that use them), word timings on the head's clock; without timings when the head or
    the tail has none (they must spell the text)."""
    space = word_separator(head.language)
    text = head.text + space + tail.text
    joined: tuple[Word, ...] = ()
    if words and head.words and tail.words:
        shifted = shift_words(tail.words, offset_ms)
        joined = (*head.words, Word(space + shifted[0].text, shifted[0].start_ms, shifted[0].end_ms,
                                    shifted[0].probability), *shifted[1:])
    confidence = (head.confidence * len(head.text) + tail.confidence * len(tail.text)) / max(1, len(text))
    return replace(head, text=text, words=joined, confidence=confidence)


def _avg_logprob(score: float, n_tokens: int) -> float:
    """CTranslate2 scores are length-normalised log-probs; mirror faster-whisper's average."""
    return float(score) * n_tokens / (n_tokens + 1) if n_tokens else float(score)
