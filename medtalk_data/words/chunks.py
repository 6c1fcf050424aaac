"""Cut long audio into chunks at quiet moments, so ASR and alignment work on bounded pieces.

:func:`iter_wav_chunks` reads a WAV file piece by piece, so memory stays bounded by the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..io.wav import wav_reader

SEARCH_S = 5.0  # look this far back from each nominal cut for the quietest 100 ms
WINDOW_S = 0.1


def chunk_bounds(audio: np.ndarray, rate: int, chunk_s: float) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering in-memory ``audio``, cut as :func:`iter_wav_chunks` cuts a file."""
    size = int(chunk_s * rate)
    bounds = []
    start = 0
    while len(audio) - start > size:
        cut = start + _quiet_cut(audio[start : start + size + 1], rate, size)
        bounds.append((start, cut))
        start = cut
    if len(audio) > start:
        bounds.append((start, len(audio)))
    return bounds


def _quiet_cut(buffer: np.ndarray, rate: int, size: int) -> int:
    """Index in ``buffer`` (longer than ``size``) where to end a chunk: the quietest 100 ms before ``size``."""
    window = int(WINDOW_S * rate)
    lo = max(window, size - int(SEARCH_S * rate))
    segment = buffer[lo:size]
    usable = len(segment) // window * window
    if not usable:
        return size
    energy = (segment[:usable].reshape(-1, window) ** 2).mean(axis=1)
    return lo + int(np.argmin(energy)) * window + window // 2


def iter_wav_chunks(path: Path, chunk_s: float) -> Iterator[tuple[int, np.ndarray]]:
    """(first sample index, float32 samples) of successive chunks of a 16-bit mono WAV, cut where quiet."""
    with wav_reader(path) as (rate, read):
        size = int(chunk_s * rate)
        start = 0
        buffer = np.zeros(0, dtype=np.float32)
        while True:
            need = size + 1 - len(buffer)
            samples = read(max(need, 0))
            if len(samples):
                buffer = np.concatenate([buffer, samples])
            if len(buffer) <= size:
                if len(buffer):
                    yield start, buffer
                return
            cut = _quiet_cut(buffer, rate, size)
            yield start, buffer[:cut]
            start += cut
            buffer = buffer[cut:]
