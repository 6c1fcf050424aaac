"""Forced alignment of a known transcript: in one pass, or, for long audio, piece by piece.

Long audio (longer than ``words.chunk_s``): the audio is recognised chunk by chunk only to place each
known word in time (:mod:`medtalk_data.words.anchors`), then cut at pauses into pieces of at most
:data:`PIECE_S` seconds, each aligned alone, so memory stays bounded. A piece whose alignment places
nothing (a word too many or too few in it) is split again at its middle pause, down to
``2 * MIN_PIECE_S`` seconds, so a wrong cut costs a few seconds of words, not a whole piece.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.stage import TARGET_RATE
from ..io.wav import energy_envelope, read_wav_span
from ..stopping import check_stop
from .align import Aligner
from .anchors import FRAME_S, QUIET_RATIO, ChunkWords, VoicedClock, known_times, plan_cuts, segment_word_times
from .chunks import iter_wav_chunks
from .types import Phone, Word

PIECE_S = 20.0  # a long audio's known transcript is aligned in pieces at most this long, cut at pauses
MIN_PIECE_S = 3.0  # a piece that failed to align is split in two while each half is at least this long


def align_piece(
    aligner: Aligner, audio: np.ndarray, tokens: list[str], offset: float, first_index: int
) -> tuple[list[Word], list[Phone]]:
    """Force-align ``tokens`` to ``audio``, which starts ``offset`` s into the clip's audio; the words it
    could not place come back with ``aligned = False`` and zero times (for the fill policy)."""
    if not tokens:
        return [], []
    spans, phones = aligner.align(audio, tokens)
    words = [
        Word(t, offset + span[0], offset + span[1], aligned=True) if span else Word(t, 0.0, 0.0)
        for t, span in zip(tokens, spans, strict=True)
    ]
    shifted = [Phone(p.phone, p.start_s + offset, p.end_s + offset, p.word_index + first_index) for p in phones]
    return words, shifted


def align_resilient(
    aligner: Aligner,
    audio: np.ndarray,
    tokens: list[str],
    times: np.ndarray,
    envelope: np.ndarray,
    offset: float,
    first_index: int,
) -> tuple[list[Word], list[Phone]]:
    """:func:`align_piece`, split at the middle pause and retried on the halves when it places nothing.

    ``times``: each token's estimated time (clip audio seconds); ``envelope``: the whole clip's
    :func:`medtalk_data.io.wav.energy_envelope`.
    """
    words, phones = align_piece(aligner, audio, tokens, offset, first_index)
    seconds = len(audio) / TARGET_RATE
    if any(w.aligned for w in words) or len(tokens) < 2 or seconds < 2 * MIN_PIECE_S:
        return words, phones
    if not any(aligner.spell(t) for t in tokens):  # digits and symbols only: nothing to retry
        return words, phones
    f0 = round(offset / FRAME_S)
    cut = plan_cuts(envelope[f0 : f0 + round(seconds / FRAME_S)], seconds, seconds * 2 / 3)[0]
    split = int(np.searchsorted(times, offset + cut, side="left"))
    if split in (0, len(tokens)):
        return words, phones
    at = int(cut * TARGET_RATE)
    left = align_resilient(aligner, audio[:at], tokens[:split], times[:split], envelope, offset, first_index)
    right = align_resilient(
        aligner, audio[at:], tokens[split:], times[split:], envelope, offset + at / TARGET_RATE, first_index + split
    )
    return left[0] + right[0], left[1] + right[1]


def align_long_known(
    wav: Path, duration: float, tokens: list[str], aligner: Aligner, asr: Any, *, chunk_s: float
) -> tuple[list[Word], list[Phone]]:
    """Align ``tokens`` to a long 16 kHz mono WAV piece by piece (see the module doc). ``asr``: a
    :class:`medtalk_data.words.asr.WhisperASR`, used only to place the known words in time."""
    envelope = energy_envelope(wav)
    heard: list[ChunkWords] = []
    for start, chunk in iter_wav_chunks(wav, chunk_s):
        check_stop()
        offset = start / TARGET_RATE
        f0 = round(offset / FRAME_S)
        frames = envelope[f0 : f0 + round(len(chunk) / TARGET_RATE / FRAME_S) + 1]
        level = float(np.percentile(frames, 95)) if len(frames) else 0.0
        centres = []
        for seg in asr.transcribe(chunk, "en").segments:
            spans = [(offset + w.start_s, offset + w.end_s) for w in seg.words]
            centres += list(zip([w.text for w in seg.words], segment_word_times(envelope, spans, level), strict=True))
        heard.append(ChunkWords(offset, offset + len(chunk) / TARGET_RATE, centres))
    speech_level = float(np.percentile(envelope, 95)) if len(envelope) else 0.0
    times = known_times(tokens, heard, VoicedClock(envelope, QUIET_RATIO * speech_level))
    cuts = plan_cuts(envelope, duration, min(PIECE_S, chunk_s))
    edges = [0, *(int(np.searchsorted(times, c, side="left")) for c in cuts), len(tokens)]
    words: list[Word] = []
    phones: list[Phone] = []
    for (lo, hi), (i0, i1) in zip(pairwise([0.0, *cuts, duration]), pairwise(edges), strict=True):
        check_stop()
        audio = read_wav_span(wav, lo, hi)
        w, p = align_resilient(aligner, audio, tokens[i0:i1], times[i0:i1], envelope, lo, len(words))
        words += w
        phones += p
    return words, phones
