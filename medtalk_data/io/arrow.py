"""Arrow helpers: per-frame vectors (blendshapes, landmarks, probabilities) as fixed-size-list columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def fixed_size_list(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    """(n, width) float array → an Arrow fixed-size-list column of float32 (one row per item)."""
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, width)


def fixed_size_numpy(column: pa.Array | pa.ChunkedArray, shape: tuple[int, ...] = (-1,)) -> np.ndarray:
    """An Arrow fixed-size-list column → (rows, *shape) numpy array; the inverse of :func:`fixed_size_list`."""
    combined = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return combined.values.to_numpy(zero_copy_only=False).reshape((len(combined), *shape))
