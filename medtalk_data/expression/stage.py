"""The expression part of the labels stage: classify the tracked face of every frame → ``expression.parquet``.

The video is decoded again, streaming; the per-frame landmarks are read from frames.parquet in
batches, so memory does not grow with video length. Frames without a face (and not interpolated)
get NaN.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..fsutil import atomic_path
from ..rigs import N_LANDMARKS
from ..video import iter_frames
from .classifier import EXPRESSION_NAMES, ExpressionClassifier
from .crop import face_box

SCHEMA = pa.schema(
    [
        ("frame_index", pa.int32()),
        ("time_s", pa.float64()),
        ("face_found", pa.bool_()),
        ("probs", pa.list_(pa.float32(), len(EXPRESSION_NAMES))),
    ]
)


def _grid_batches(frames_parquet: Path, batch: int = 256):
    reader = pq.ParquetFile(frames_parquet)
    columns = ["frame_index", "time_s", "source_frame", "face_found", "interpolated", "landmarks"]
    for rb in reader.iter_batches(batch_size=batch, columns=columns):
        n = rb.num_rows
        yield {
            "frame_index": rb.column("frame_index").to_numpy(),
            "time_s": rb.column("time_s").to_numpy(),
            "source_frame": rb.column("source_frame").to_numpy(),
            "usable": rb.column("face_found").to_numpy(zero_copy_only=False)
            | rb.column("interpolated").to_numpy(zero_copy_only=False),
            "face_found": rb.column("face_found").to_numpy(zero_copy_only=False),
            "landmarks": rb.column("landmarks").values.to_numpy(zero_copy_only=False).reshape(n, N_LANDMARKS, 3),
        }


def run_expression_stage(
    source_path: Path,
    frames_parquet: Path,
    out_path: Path,
    *,
    nominal_fps: float,
    classifier: ExpressionClassifier | None = None,
) -> dict[str, Any]:
    """Write ``out_path`` and return a summary for status.json (mean probabilities, frames/s)."""
    started = time.perf_counter()
    clf = classifier or ExpressionClassifier()
    decoded = iter_frames(source_path, nominal_fps)
    current = next(decoded, None)
    totals = np.zeros(len(EXPRESSION_NAMES))
    n_classified = 0
    meta = {"class_names": list(EXPRESSION_NAMES), "model": clf.model_path.name}
    schema = SCHEMA.with_metadata({b"medtalk": json.dumps(meta).encode()})
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in _grid_batches(frames_parquet):
            n = len(batch["frame_index"])
            probs = np.full((n, len(EXPRESSION_NAMES)), np.nan, dtype=np.float32)
            for i in range(n):
                if not batch["usable"][i]:
                    continue
                while current is not None and current.index < batch["source_frame"][i]:
                    current = next(decoded, None)
                if current is None:
                    break
                h, w = current.rgb.shape[:2]
                box = face_box(batch["landmarks"][i], w, h)
                if box is None:
                    continue
                probs[i] = clf.probabilities(current.rgb[box[1] : box[3], box[0] : box[2]])
                totals += probs[i]
                n_classified += 1
            flat = pa.array(probs.reshape(-1), type=pa.float32())
            writer.write_table(
                pa.table(
                    {
                        "frame_index": pa.array(batch["frame_index"], type=pa.int32()),
                        "time_s": pa.array(batch["time_s"]),
                        "face_found": pa.array(batch["face_found"]),
                        "probs": pa.FixedSizeListArray.from_arrays(flat, len(EXPRESSION_NAMES)),
                    },
                    schema=writer.schema,
                )
            )
    decoded.close()
    seconds = time.perf_counter() - started
    mean = totals / max(1, n_classified)
    return {
        "n_classified": n_classified,
        "mean_probs": {name: round(float(p), 4) for name, p in zip(EXPRESSION_NAMES, mean, strict=True)},
        "top": EXPRESSION_NAMES[int(np.argmax(mean))] if n_classified else None,
        "seconds": round(seconds, 3),
        "frames_per_s": round(n_classified / seconds, 1) if seconds > 0 else None,
    }
