"""The words stage of one clip: transcript + word/phone timings → ``words.json`` (atomic).

Times in words.json are on the clip's video time axis (audio time + the audio's offset).
"""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import read_wav
from ..fsutil import atomic_write_json
from .align import FILL_POLICY, ForcedAligner, fill_unaligned
from .chunks import iter_wav_chunks
from .settings import WordsSettings
from .types import Phone, Word

WORDS_SCHEMA_VERSION = 1
ALIGN_PAD_S = 0.3  # audio kept around an ASR segment when aligning it


class WordsStage:
    """Holds the loaded models, so a worker loads them once for many clips."""

    def __init__(self, settings: WordsSettings) -> None:
        self.settings = settings
        self._asr = None
        self._aligner: ForcedAligner | None = None
        self._whisperx = None

    @property
    def aligner(self) -> ForcedAligner:
        if self._aligner is None:
            self._aligner = ForcedAligner()
        return self._aligner

    @property
    def asr(self):
        if self._asr is None:
            from .asr import WhisperASR

            s = self.settings
            self._asr = WhisperASR(s.asr_model, beam_size=s.beam_size, vad=s.vad)
        return self._asr

    def run(
        self, audio_wav: Path, out_json: Path, *, offset_s: float = 0.0, known_transcript: str | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        with wave.open(str(audio_wav), "rb") as w:
            rate, duration = w.getframerate(), w.getnframes() / w.getframerate()
        s = self.settings
        warnings: list[str] = []
        english = s.language in ("en", "auto")
        if known_transcript and s.backend in ("auto", "known-only", "faster-whisper"):
            source, backend, language = "known", "pocketsphinx" if english else "none", s.language
            words, phones = self._known(read_wav(audio_wav)[0], known_transcript, english)
        elif s.backend == "known-only":
            source, backend, language, words, phones = "none", "none", s.language, [], []
            warnings.append("no known transcript for this clip and words.backend is known-only: no words")
        elif s.backend == "whisperx":
            from .whisperx_backend import WhisperXBackend

            if self._whisperx is None:
                self._whisperx = WhisperXBackend(s.whisperx_model, s.whisperx_align_model, s.language)
            source, backend, language, phones = "asr", "whisperx", self._whisperx.language, []
            words = self._whisperx.transcribe(read_wav(audio_wav)[0])
        else:
            source, backend = "asr", "faster-whisper+pocketsphinx" if english else "faster-whisper"
            words, phones, language = self._asr_and_align(audio_wav, rate, duration, english)
        if not words and source != "none":
            warnings.append("no speech found (silence or music): empty transcript")
        if source == "asr" and not english and words:
            warnings.append(f"no forced aligner for language {language!r}: ASR word timings kept (aligned = false)")
        doc = {
            "schema_version": WORDS_SCHEMA_VERSION,
            "language": language,
            "transcript": " ".join(w.text for w in words),
            "source": source,
            "backend": backend,
            "fill_policy": FILL_POLICY,
            "time_base": "clip video time (s) = audio time + audio offset",
            "audio_offset_s": offset_s,
            "words": [w.shifted(offset_s).to_dict() for w in words],
            "phones": [p.shifted(offset_s).__dict__ for p in phones],
        }
        atomic_write_json(out_json, doc)
        seconds = time.perf_counter() - started
        return {
            "n_words": len(words),
            "n_aligned": sum(w.aligned for w in words),
            "n_phones": len(phones),
            "source": source,
            "backend": backend,
            "language": language,
            "seconds": round(seconds, 3),
            "rtf": round(seconds / duration, 4) if duration else None,
            "warnings": warnings,
        }

    def _known(self, audio: np.ndarray, transcript: str, english: bool) -> tuple[list[Word], list[Phone]]:
        tokens = transcript.split()
        total = len(audio) / 16000
        if not english:
            words = [Word(t, 0.0, 0.0) for t in tokens]
            return fill_unaligned(words, total), []
        spans, phones = self.aligner.align(audio, tokens)
        words = [
            Word(t, *(span if span else (0.0, 0.0)), aligned=span is not None)
            for t, span in zip(tokens, spans, strict=True)
        ]
        return fill_unaligned(words, total), phones

    def _asr_and_align(
        self, audio_wav: Path, rate: int, duration: float, english: bool
    ) -> tuple[list[Word], list[Phone], str]:
        """ASR chunk by chunk (read from disk piece by piece), each segment then force-aligned."""
        s = self.settings
        words: list[Word] = []
        asr_spans: list[tuple[float, float] | None] = []
        phones: list[Phone] = []
        language = s.language
        for start, chunk in iter_wav_chunks(audio_wav, s.chunk_s):
            offset = start / rate
            segments, language = self.asr.transcribe(chunk, s.language)
            for seg in segments:
                if seg.no_speech_prob > 1.0 - s.min_speech_prob:
                    continue
                asr_words = [w.shifted(offset) for w in seg.words]
                if not english:
                    words += asr_words
                    asr_spans += [(w.start_s, w.end_s) for w in asr_words]
                    continue
                lo = max(0, int((seg.start_s - ALIGN_PAD_S) * rate))
                hi = min(len(chunk), int((seg.end_s + ALIGN_PAD_S) * rate))
                spans, seg_phones = self.aligner.align(chunk[lo:hi], [w.text for w in seg.words])
                base = offset + lo / rate
                first = len(words)
                for w, span in zip(asr_words, spans, strict=True):
                    if span is None:
                        words.append(w)
                        asr_spans.append((w.start_s, w.end_s))
                    else:
                        words.append(Word(w.text, base + span[0], base + span[1], w.score, True))
                        asr_spans.append(None)
                phones += [Phone(p.phone, p.start_s + base, p.end_s + base, p.word_index + first) for p in seg_phones]
        return fill_unaligned(words, duration, asr_spans), phones, language


def run_words_stage(
    audio_wav: Path,
    out_json: Path,
    *,
    settings: WordsSettings,
    offset_s: float = 0.0,
    known_transcript: str | None = None,
) -> dict[str, Any]:
    """One-shot form of :class:`WordsStage` (loads the models for this call)."""
    return WordsStage(settings).run(audio_wav, out_json, offset_s=offset_s, known_transcript=known_transcript)
