"""Cut long audio into chunks at quiet moments, so ASR and alignment work on bounded pieces."""

from __future__ import annotations

import numpy as np

SEARCH_S = 5.0  # look this far back from each nominal cut for the quietest 100 ms
WINDOW_S = 0.1


def chunk_bounds(audio: np.ndarray, rate: int, chunk_s: float) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering ``audio``, each at most ``chunk_s`` long, cut where it is quiet."""
    n = len(audio)
    size = int(chunk_s * rate)
    if n <= size:
        return [(0, n)] if n else []
    window = int(WINDOW_S * rate)
    bounds = []
    start = 0
    while n - start > size:
        lo = max(start + window, start + size - int(SEARCH_S * rate))
        hi = start + size
        segment = audio[lo:hi]
        usable = len(segment) // window * window
        energy = (segment[:usable].reshape(-1, window) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * window + window // 2 if usable else hi
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds
