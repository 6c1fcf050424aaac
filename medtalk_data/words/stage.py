"""The words stage of one clip: transcript + word/phone timings → ``words.json`` (written atomically).

Backends (``words.backend``):

- ``auto`` (default) and ``faster-whisper``: a known transcript (from the dataset recipe or the labels
  CSV) is force-aligned without recognition; otherwise faster-whisper recognises the audio chunk by
  chunk and pocketsphinx aligns each recognised segment (English). Other languages keep Whisper's
  word times, ``aligned = false``, with a warning.
- ``known-only``: align known transcripts, never recognise (clips without one get no words).
- ``whisperx``: :mod:`medtalk_data.words.whisperx_backend`, in its own environment.

Long audio: recognition reads the WAV ``chunk_s`` seconds at a time, cut at quiet moments
(:mod:`medtalk_data.words.chunks`), and aligns segment by segment, so memory stays bounded. A known
transcript of audio longer than ``chunk_s`` is aligned in pieces cut at pauses; recognition then
only decides where each known word lies (:mod:`medtalk_data.words.known`); the words stay the known ones.

words.json (``schema_version`` 1)::

    {"schema_version": 1, "language": "en", "transcript": "Kids are talking by the door.",
     "source": "asr" | "known" | "none", "backend": "faster-whisper+pocketsphinx", "model": "...",
     "fill_policy": "interpolate", "fill_policy_description": "...",
     "time_base": "clip video time (s)", "audio_offset_s": 0.0, "duration_s": 3.69,
     "words":  [{"text", "start_s", "end_s", "score", "aligned"}],
     "phones": [{"phone", "start_s", "end_s", "word_index"}]}

Every time is on the clip's video time axis: audio time + ``offset_s``. ``score`` is Whisper's word
probability (null for a known transcript). ``phones`` are ARPAbet without stress, English only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..audio.stage import TARGET_RATE
from ..io.files import atomic_write_json
from ..io.wav import read_wav
from ..stopping import check_stop
from .align import FILL_POLICY, FILL_POLICY_NAME, Aligner, ForcedAligner, fill_unaligned
from .audio_in import words_audio
from .chunks import iter_wav_chunks
from .known import align_long_known, align_piece
from .settings import WordsSettings
from .types import Phone, Word, WordsSummary, untangle

log = logging.getLogger(__name__)

WORDS_SCHEMA_VERSION = 1
TIME_BASE = "clip video time (s)"
ALIGN_PAD_S = 0.5  # audio kept around an ASR segment when aligning it
MAX_LISTED = 8  # unaligned words quoted in a warning
LANGUAGE_WARN_P = 0.5  # Whisper's detection confident enough to question the dataset's language


@dataclass
class Result:
    words: list[Word]
    phones: list[Phone]
    source: str  # "asr", "known" or "none"
    backend: str
    language: str
    model: str | None = None
    warnings: list[str] = field(default_factory=list)
    language_probability: float | None = None  # where Whisper detected the language (words.language auto)


class WordsStage:
    """Holds the loaded models, so a worker loads them once for many clips.

    ``aligner_apart``: the forced aligner runs in a child process (:mod:`.align_process`), so that
    aligning does not stall other threads of this process (extract's face stage)."""

    def __init__(self, settings: WordsSettings, *, aligner_apart: bool = False) -> None:
        self.settings = settings
        self.aligner_apart = aligner_apart
        self._asr = None
        self._aligner: Aligner | None = None
        self._whisperx = None

    @property
    def aligner(self) -> Aligner:
        if self._aligner is None:
            if self.aligner_apart:
                from .align_process import AlignerProcess

                self._aligner = AlignerProcess()
            else:
                self._aligner = ForcedAligner()
        return self._aligner

    @property
    def _threads(self) -> int:
        """Whisper's CPU threads: ``words.asr_threads``, else every core (extract sets each worker's share)."""
        return self.settings.asr_threads or os.cpu_count() or 1

    @property
    def asr(self):
        if self._asr is None:
            from .asr import WhisperASR

            s = self.settings
            self._asr = WhisperASR(
                s.asr_model, beam_size=s.beam_size, vad=s.vad, cpu_threads=self._threads, window=s.asr_window
            )
        return self._asr

    @property
    def whisperx(self):
        if self._whisperx is None:
            from .whisperx_backend import WhisperXBackend

            s = self.settings
            self._whisperx = WhisperXBackend(
                s.whisperx_model, s.whisperx_align_model, s.language, chunk_s=s.chunk_s, threads=self._threads
            )
        return self._whisperx

    def run(
        self,
        audio_wav: Path,
        out_json: Path,
        *,
        offset_s: float = 0.0,
        known_transcript: str | None = None,
        language_hint: str | None = None,
    ) -> WordsSummary:
        """Write ``out_json`` for ``audio_wav``; return the summary for status.json. See :func:`run_words_stage`."""
        started = time.perf_counter()
        warnings: list[str] = []
        known = (known_transcript or "").split()
        language = self.settings.language
        if language == "auto" and language_hint:  # the dataset's own language; --language overrides it
            language = language_hint
        with words_audio(Path(audio_wav), warnings) as (wav, duration):
            result = self._dispatch(wav, duration, known, language, checked=language_hint is not None)
        warnings += result.warnings
        words, phones = result.words, result.phones
        if duration == 0:
            warnings.append("the audio is empty: no words")
        elif not words and result.source == "asr":
            warnings.append("no speech found (silence or music): empty transcript")
        unaligned = [w.text for w in words if not w.aligned]
        if unaligned and len(unaligned) < len(words) and result.source != "none":
            listed = ", ".join(repr(t) for t in unaligned[:MAX_LISTED]) + (" …" if len(unaligned) > MAX_LISTED else "")
            warnings.append(
                f"{len(unaligned)} of {len(words)} words could not be aligned ({listed}): kept with aligned = false, "
                f"times filled by the {FILL_POLICY_NAME} policy"
            )
        elif unaligned and result.language == "en" and result.backend.endswith("pocketsphinx"):
            warnings.append(
                f"forced alignment placed none of the {len(words)} words: times filled by the {FILL_POLICY_NAME} "
                "policy (aligned = false); check that the transcript matches the audio"
            )
        doc = {
            "schema_version": WORDS_SCHEMA_VERSION,
            "language": result.language,
            "language_probability": result.language_probability,
            "transcript": _joined(w.text for w in words),
            "source": result.source,
            "backend": result.backend,
            "model": result.model,
            "fill_policy": FILL_POLICY_NAME,
            "fill_policy_description": FILL_POLICY,
            "time_base": TIME_BASE,
            "audio_offset_s": offset_s,
            "duration_s": round(duration, 6),
            "words": [w.shifted(offset_s).to_dict() for w in words],
            "phones": [p.shifted(offset_s).to_dict() for p in phones],
        }
        atomic_write_json(out_json, doc)
        seconds = time.perf_counter() - started
        return WordsSummary(
            n_words=len(words),
            n_aligned=sum(w.aligned for w in words),
            n_phones=len(phones),
            source=result.source,
            backend=result.backend,
            language=result.language,
            language_probability=result.language_probability,
            seconds=round(seconds, 3),
            rtf=round(seconds / duration, 4) if duration else None,
            warnings=warnings,
        )

    # -- backends ---------------------------------------------------------------------------------

    def _dispatch(self, wav: Path, duration: float, known: list[str], language: str, *, checked: bool) -> Result:
        s = self.settings
        if s.backend == "whisperx":
            return self._whisperx_run(wav, known)
        if known:
            return self._known(wav, duration, known, language, may_recognise=s.backend != "known-only")
        if s.backend == "known-only":
            return Result(
                [], [], "none", "none", language,
                warnings=["no known transcript for this clip and words.backend is known-only: no words"],
            )  # fmt: skip
        return self._asr_and_align(wav, duration, language, check_hint=checked and s.language == "auto")

    def _known(self, wav: Path, duration: float, tokens: list[str], language: str, *, may_recognise: bool) -> Result:
        s = self.settings
        if language not in ("en", "auto"):
            words = fill_unaligned([Word(t, 0.0, 0.0) for t in tokens], duration)
            warning = (
                f"no forced aligner for language {language!r}: the known transcript is spread over the audio "
                "by word length (aligned = false)"
            )
            return Result(words, [], "known", "none", language, warnings=[warning])
        if duration > s.chunk_s and not may_recognise:
            warning = (
                f"known transcript of {duration:.0f} s audio aligned in one pass (words.backend known-only "
                "cannot cut it by recognition): memory grows with length"
            )
            words, phones = align_piece(self.aligner, read_wav(wav)[0], tokens, 0.0, 0)
            return Result(fill_unaligned(words, duration), phones, "known", "pocketsphinx", "en", warnings=[warning])
        if duration <= s.chunk_s:
            words, phones = align_piece(self.aligner, read_wav(wav)[0], tokens, 0.0, 0)
            return Result(fill_unaligned(words, duration), phones, "known", "pocketsphinx", "en")
        words, phones = align_long_known(wav, duration, tokens, self.aligner, self.asr, chunk_s=s.chunk_s)
        model = self.asr.choice.describe()  # used only to place the known words in time
        return Result(fill_unaligned(words, duration), phones, "known", "pocketsphinx", "en", model)

    def _asr_and_align(self, wav: Path, duration: float, request: str, *, check_hint: bool) -> Result:
        """ASR chunk by chunk (read from disk piece by piece); English segments then force-aligned.

        ``request`` "auto": each chunk's language is detected (a clip may change language); else every
        chunk is transcribed in ``request``, and with ``check_hint`` (it came from the dataset's recipe)
        the first chunk with speech is also detected, to warn where the two disagree."""
        s = self.settings
        words: list[Word] = []
        asr_spans: list[tuple[float, float] | None] = []
        phones: list[Phone] = []
        warnings: list[str] = []
        heard_in: list[tuple[str, float, float, float | None]] = []  # (language, start, end, probability) per chunk
        language = "en" if self.asr.english_only else request
        for start, chunk in iter_wav_chunks(wav, s.chunk_s):
            check_stop()
            offset = start / TARGET_RATE
            heard = self.asr.transcribe(chunk, request)
            segments = [seg for seg in heard.segments if not seg.silent(s.min_speech_prob)]
            if not segments:
                continue
            if heard.overruled:
                detected, p, scores = heard.overruled
                warnings.append(
                    f"Whisper detected {detected!r} (p = {p:.2f}) from {offset:.0f} s, but its transcript in "
                    f"{heard.language!r} is likelier (mean log-probability {scores[heard.language]:.2f} against "
                    f"{scores[detected]:.2f}): transcribed as {heard.language!r} (pass --language to choose)"
                )
            if check_hint and not self.asr.english_only:
                check_hint = False
                detected, p = self.asr.detect_language(chunk)
                if detected != request and p >= LANGUAGE_WARN_P:
                    warnings.append(
                        f"the dataset says the language is {request!r} but Whisper hears {detected!r} "
                        f"(p = {p:.2f}); transcribed as {request!r} (pass --language to choose)"
                    )
            language = heard.language
            heard_in.append((language, offset, offset + len(chunk) / TARGET_RATE, heard.language_probability))
            for seg in segments:
                asr_words = [w.shifted(offset) for w in seg.words]
                if language != "en":
                    words += asr_words
                    asr_spans += [(w.start_s, w.end_s) for w in asr_words]
                    continue
                lo = max(0, int((seg.start_s - ALIGN_PAD_S) * TARGET_RATE))
                hi = min(len(chunk), int((seg.end_s + ALIGN_PAD_S) * TARGET_RATE))
                spans, seg_phones = self.aligner.align(chunk[lo:hi], [w.text for w in seg.words])
                base = offset + lo / TARGET_RATE
                first = len(words)
                for w, span in zip(asr_words, spans, strict=True):
                    if span is None:
                        words.append(w)
                        asr_spans.append((w.start_s, w.end_s))
                    else:
                        words.append(Word(w.text, base + span[0], base + span[1], w.score, True))
                        asr_spans.append(None)
                phones += [Phone(p.phone, p.start_s + base, p.end_s + base, p.word_index + first) for p in seg_phones]
        languages = {lang for lang, *_ in heard_in}
        probability = heard_in[0][3] if heard_in else None
        if len(languages) > 1:
            by_length: dict[str, float] = {}
            for lang, lo, hi, _p in heard_in:
                by_length[lang] = by_length.get(lang, 0.0) + hi - lo
            language = max(by_length, key=lambda k: by_length[k])
            probability = None
            listed = ", ".join(f"{lang} {lo:.0f}–{hi:.0f} s" for lang, lo, hi, _p in heard_in)
            warnings.append(f"the language changes within the clip ({listed}); words.json says {language!r}")
        elif heard_in:
            language = heard_in[0][0]
        others = sorted(languages - {"en"})
        if others and words:
            warnings.append(
                f"no forced aligner for language {', '.join(map(repr, others))}: "
                "ASR word timings kept (aligned = false)"
            )
        backend = "faster-whisper+pocketsphinx" if "en" in languages else "faster-whisper"
        words, phones = untangle(words, phones)  # segments aligned separately may overlap at their seams
        words, phones = untangle(fill_unaligned(words, duration, asr_spans), phones)
        return Result(words, phones, "asr", backend, language, self.asr.choice.describe(), warnings, probability)

    def _whisperx_run(self, wav: Path, known: list[str]) -> Result:
        audio = read_wav(wav)[0]
        wx = self.whisperx
        if known:
            words, language, warnings = wx.align_known(audio, " ".join(known))
            source = "known"
        else:
            words, language, warnings = wx.transcribe(audio)
            source = "asr"
        warnings = [*warnings, "whisperx gives word timings only: no phones"]
        return Result(words, [], source, "whisperx", language, self.settings.whisperx_model, warnings)


def _joined(tokens: Iterable[str]) -> str:
    """Words joined as the language writes them: spaces between words, none between CJK characters."""
    out = ""
    for token in tokens:
        if out and not (_is_cjk(out[-1]) and _is_cjk(token[:1])):
            out += " "
        out += token
    return out


def _is_cjk(ch: str) -> bool:
    return bool(ch) and ("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")


def run_words_stage(
    audio_wav: Path,
    out_json: Path,
    *,
    settings: WordsSettings,
    offset_s: float = 0.0,
    known_transcript: str | None = None,
) -> WordsSummary:
    """Transcript with word and phone timings for one clip → ``out_json`` (atomic); returns the status summary.

    ``audio_wav``: the clip's audio (16 kHz mono 16-bit WAV from the audio stage; other formats are
    converted, with a warning). ``offset_s``: where audio sample 0 sits on the clip's video time axis;
    every time written is audio time + ``offset_s``. ``known_transcript``: text from the dataset recipe
    or labels CSV, aligned instead of recognised.

    Summary (:class:`~.types.WordsSummary`): word, aligned-word and phone counts, ``source`` ("asr" |
    "known" | "none"), backend, language, seconds, ``rtf`` (seconds per second of audio), ``warnings``.
    Silence or music gives an empty word list and a warning, not an error. Expected failures raise
    :class:`medtalk_data.errors.ClipError` (no audio file, undecodable audio, a language the model
    cannot transcribe); a missing package or model raises :class:`medtalk_data.errors.MedtalkError`.

    Loads the models for this call; :class:`WordsStage` keeps them loaded across clips.
    """
    return WordsStage(settings).run(audio_wav, out_json, offset_s=offset_s, known_transcript=known_transcript)
