"""WhisperX (ASR + wav2vec2 forced alignment) as an optional backend.

WhisperX pins its own torch (~2.8) and CUDA libraries, so it lives in a separate environment::

    python -m venv whisperx-env && whisperx-env/bin/pip install whisperx 'medtalk[speech]'

and needs local model folders (it downloads them otherwise): ``words.whisperx_model`` (a
faster-whisper/CTranslate2 folder) and ``words.whisperx_align_model`` (a wav2vec2 CTC folder for
the language). Words its aligner cannot spell (numbers, symbols) come back without times, by
design; they are kept with ``aligned = false`` and placed by our fill policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MedtalkError
from .align import fill_unaligned
from .types import Word


def convert_result(result: dict[str, Any], total_s: float) -> list[Word]:
    """WhisperX's aligned result (``segments[].words[]`` with optional start/end/score) → our words."""
    words: list[Word] = []
    for segment in result.get("segments", []):
        for w in segment.get("words", []):
            text = str(w.get("word", "")).strip()
            if not text:
                continue
            if "start" in w and "end" in w and w["start"] is not None and w["end"] is not None:
                words.append(Word(text, float(w["start"]), float(w["end"]), float(w.get("score", np.nan)), True))
            else:
                words.append(Word(text, 0.0, 0.0, float(w.get("score", np.nan)), False))
    return fill_unaligned(words, total_s)


class WhisperXBackend:
    def __init__(self, model_dir: str | None, align_model_dir: str | None, language: str) -> None:
        try:
            import whisperx
        except ImportError as err:
            raise MedtalkError(
                "the whisperx backend needs WhisperX in its own environment (it pins torch ~2.8): "
                "python -m venv whisperx-env && whisperx-env/bin/pip install whisperx 'medtalk[speech]'"
            ) from err
        if not model_dir or not align_model_dir:
            raise MedtalkError(
                "the whisperx backend needs local model folders: set words.whisperx_model (CTranslate2 Whisper) "
                "and words.whisperx_align_model (wav2vec2 CTC for the language); it would download them otherwise"
            )
        self._wx = whisperx
        self.language = "en" if language in ("auto", None) else language
        self._asr = whisperx.load_model(model_dir, "cpu", compute_type="int8", language=self.language)
        self._align, self._meta = whisperx.load_align_model(self.language, "cpu", model_name=align_model_dir)

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        result = self._asr.transcribe(audio.astype(np.float32), batch_size=4)
        aligned = self._wx.align(result["segments"], self._align, self._meta, audio, "cpu")
        return convert_result(aligned, len(audio) / 16000)
