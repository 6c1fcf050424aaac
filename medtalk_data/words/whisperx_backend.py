"""WhisperX (batched faster-whisper ASR + wav2vec2 CTC forced alignment) as an optional backend.

WhisperX pins its own torch (~2.8, a multi-GB build) and CUDA libraries, so it cannot share
medtalk's environment. Give it its own::

    python -m venv whisperx-env
    whisperx-env/bin/pip install whisperx 'medtalk[speech]'     # add the project: pip install -e /path/to/medtalk
    whisperx-env/bin/python -m nltk.downloader punkt_tab         # once, online: its sentence splitter
    whisperx-env/bin/medtalk-data extract videos/ --out out/ --config whisperx.yaml

with, in ``whisperx.yaml``::

    words:
      backend: whisperx
      whisperx_model: /models/faster-whisper-small       # a CTranslate2 Whisper folder
      whisperx_align_model: /models/wav2vec2-base-960h   # a Hugging Face wav2vec2 CTC folder for the language

Nothing is downloaded: the model folders are the user's, and ``HF_HUB_OFFLINE=1`` is set (unless
already set) before WhisperX loads. WhisperX's own VAD (pyannote) ships inside the whisperx wheel.

What comes back, and how it maps to our words:

- WhisperX's aligner spells words with the characters of its wav2vec2 vocabulary; words it cannot
  place (numbers, symbols) come back without ``start``/``end``/``score`` in older versions (3.3.1,
  checked on a real result file), while newer ones align them as wildcards (3.8.6) or interpolate
  times without a ``score``. A word is ``aligned = true`` only with start, end
  and score; otherwise it keeps WhisperX's interpolated times where they fit between its aligned
  neighbours, else is placed by our fill policy (:data:`medtalk_data.words.align.FILL_POLICY`).
- A segment the aligner gave up on (``words: []``) keeps its text: its words are spread over the
  segment's ASR times, ``aligned = false``.
- Without ``whisperx_align_model`` (or for a language it does not cover) word times are the ASR
  segment times shared by word length, ``aligned = false``, with a warning.
- WhisperX gives no phone timings; ``phones`` is empty with this backend.
- A known transcript is aligned, not recognised; on audio longer than ``words.chunk_s`` WhisperX's ASR
  only decides where the transcript is cut into segments (:mod:`medtalk_data.words.anchors`).
"""

from __future__ import annotations

import math
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MedtalkError
from ..io.files import display_path
from .align import fill_unaligned
from .anchors import ChunkWords, split_known
from .types import Word

INSTALL = (
    "the whisperx backend needs WhisperX in its own environment (it pins torch ~2.8): "
    "python -m venv whisperx-env && whisperx-env/bin/pip install whisperx 'medtalk[speech]' "
    "(see medtalk_data/words/whisperx_backend.py); or use words.backend: faster-whisper"
)
SAMPLE_RATE = 16_000


def _time(value: Any) -> float | None:
    try:
        t = float(value)
    except (TypeError, ValueError):
        return None
    return t if math.isfinite(t) else None


def convert_result(result: dict[str, Any], total_s: float) -> list[Word]:
    """WhisperX's aligned result (``segments[].words[]``, start/end/score each optional) → our words, filled."""
    words: list[Word] = []
    asr_spans: list[tuple[float, float] | None] = []
    for segment in result.get("segments", []):
        seg_words = segment.get("words") or []
        if not seg_words:  # the aligner gave up on this segment: keep its text over the segment's times
            texts = str(segment.get("text", "")).split()
            lo, hi = _time(segment.get("start")), _time(segment.get("end"))
            spans = _spread(texts, lo, hi) if lo is not None and hi is not None and hi >= lo else [None] * len(texts)
            words += [Word(t, 0.0, 0.0) for t in texts]
            asr_spans += spans
            continue
        for w in seg_words:
            text = str(w.get("word", "")).strip()
            if not text:
                continue
            start, end, score = _time(w.get("start")), _time(w.get("end")), _time(w.get("score"))
            has_times = start is not None and end is not None and end >= start
            prob = score if score is not None else math.nan
            if has_times and score is not None:
                words.append(Word(text, start, end, prob, aligned=True))  # type: ignore[arg-type]
                asr_spans.append(None)
            else:
                words.append(Word(text, 0.0, 0.0, prob, aligned=False))
                asr_spans.append((start, end) if has_times else None)  # type: ignore[arg-type]
    return fill_unaligned(words, total_s, asr_spans)


def _spread(texts: list[str], lo: float, hi: float) -> list[tuple[float, float] | None]:
    lengths = np.array([max(1, len(t)) for t in texts], dtype=float)
    if not len(lengths):
        return []
    edges = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum()])
    return [(float(edges[i]), float(edges[i + 1])) for i in range(len(texts))]


def known_segments(tokens: list[str], asr_segments: list[dict[str, Any]], total_s: float) -> list[dict[str, Any]]:
    """A known transcript cut into WhisperX segments at the gaps between its ASR segments (anchors)."""
    if not asr_segments:
        return [{"text": " ".join(tokens), "start": 0.0, "end": total_s}] if tokens else []
    cuts = [(float(a["end"]) + float(b["start"])) / 2 for a, b in pairwise(asr_segments)]
    edges = [0.0, *cuts, total_s]
    heard = []
    for i, seg in enumerate(asr_segments):
        texts = str(seg.get("text", "")).split()
        spans = _spread(texts, float(seg["start"]), float(seg["end"]))
        recognised = [(t, (span[0] + span[1]) / 2) for t, span in zip(texts, spans, strict=True)]  # type: ignore[index]
        heard.append(ChunkWords(edges[i], edges[i + 1], recognised))
    out = []
    for chunk, rng in zip(heard, split_known(tokens, heard), strict=True):
        if len(rng):
            out.append({"text": " ".join(tokens[rng.start : rng.stop]), "start": chunk.start_s, "end": chunk.end_s})
    return out


class WhisperXBackend:
    """WhisperX's ASR and aligner on CPU, from local model folders only."""

    def __init__(
        self,
        model_dir: str | None,
        align_model_dir: str | None,
        language: str,
        *,
        threads: int = 1,
        batch_size: int = 4,
        chunk_s: float = 60.0,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
        try:
            import whisperx
        except ImportError as err:
            raise MedtalkError(INSTALL) from err
        if not model_dir:
            raise MedtalkError(
                "the whisperx backend needs local model folders: set words.whisperx_model (a CTranslate2 Whisper "
                "folder) and words.whisperx_align_model (a wav2vec2 CTC folder for the language); "
                "it would download them otherwise"
            )
        if not (Path(model_dir) / "model.bin").is_file():
            raise MedtalkError(
                f"words.whisperx_model={display_path(model_dir)}: no model.bin (not a CTranslate2 Whisper folder)"
            )
        self._wx = whisperx
        self.language = None if language in (None, "auto") else language
        self.align_model_dir = align_model_dir
        self.batch_size = batch_size
        self.chunk_s = chunk_s
        self._asr = whisperx.load_model(
            str(model_dir), "cpu", compute_type="int8", language=self.language, local_files_only=True, threads=threads
        )
        self._aligners: dict[str, tuple[Any, dict[str, Any]]] = {}

    def _aligner(self, language: str) -> tuple[Any, dict[str, Any]] | None:
        if not self.align_model_dir:
            return None
        if language not in self._aligners:
            try:
                self._aligners[language] = self._wx.load_align_model(language, "cpu", model_name=self.align_model_dir)
            except (ValueError, OSError) as err:
                raise MedtalkError(
                    f"words.whisperx_align_model={display_path(self.align_model_dir)}: WhisperX cannot load it for "
                    f"language {language!r} ({err}); give a local wav2vec2 CTC folder for that language"
                ) from err
        return self._aligners[language]

    def _align(self, segments: list[dict[str, Any]], audio: np.ndarray, language: str) -> dict[str, Any] | None:
        aligner = self._aligner(language)
        if aligner is None or not segments:
            return None
        try:
            return self._wx.align(segments, aligner[0], aligner[1], audio, "cpu")
        except LookupError as err:  # nltk's sentence splitter data is missing and cannot be downloaded
            raise MedtalkError(
                f"WhisperX's aligner needs nltk data ({err}); run once, online, in its environment: "
                "python -m nltk.downloader punkt_tab"
            ) from err

    def transcribe(self, audio: np.ndarray) -> tuple[list[Word], str, list[str]]:
        """Recognise and align ``audio`` (16 kHz mono float32): (words, language, warnings)."""
        audio = audio.astype(np.float32, copy=False)
        total = len(audio) / SAMPLE_RATE
        result = self._asr.transcribe(audio, batch_size=self.batch_size, language=self.language)
        language = result.get("language") or self.language or "en"
        aligned = self._align(result["segments"], audio, language)
        if aligned is None:
            return convert_result({"segments": result["segments"]}, total), language, [self._unaligned_warning()]
        return convert_result(aligned, total), language, []

    def align_known(self, audio: np.ndarray, transcript: str) -> tuple[list[Word], str, list[str]]:
        """Align a known transcript (no recognition, except to cut it on audio longer than ``chunk_s``)."""
        audio = audio.astype(np.float32, copy=False)
        total = len(audio) / SAMPLE_RATE
        tokens = transcript.split()
        language = self.language or "en"
        if total <= self.chunk_s:
            segments = [{"text": " ".join(tokens), "start": 0.0, "end": total}]
        else:
            result = self._asr.transcribe(audio, batch_size=self.batch_size, language=self.language)
            language = self.language or result.get("language") or "en"
            segments = known_segments(tokens, result["segments"], total)
        aligned = self._align(segments, audio, language)
        if aligned is None:
            return convert_result({"segments": segments}, total), language, [self._unaligned_warning()]
        return convert_result(aligned, total), language, []

    def _unaligned_warning(self) -> str:
        return (
            "whisperx: no align model (words.whisperx_align_model), so word times are the ASR segment times "
            "shared by word length (aligned = false)"
        )
