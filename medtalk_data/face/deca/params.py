"""DECA's coarse parameters: their order and sizes, and the encoder's input size (no torch needed)."""

from __future__ import annotations

PARAMS = (("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27))  # DECA's order
N_PARAMS = sum(n for _, n in PARAMS)
INPUT_SIZE = 224


def param_slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, n in PARAMS:
        out[name] = slice(start, start + n)
        start += n
    return out
