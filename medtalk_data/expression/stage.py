"""Classify the tracked face of every grid frame → ``expression.parquet`` (one row per row of frames.parquet).

The video is decoded again, streaming (:func:`medtalk_data.video.iter_frames`), in step with
frames.parquet read in row-group-sized batches, and the output is written one row group at a time,
so memory does not grow with the video's length. A grid row is classified on its ``source_frame``
(the nearest decoded frame) with its own landmarks: a found face, or one interpolated across a short
gap (``interpolated``; the face is in the picture, the tracker missed it). Grid rows that repeat the
previous row's decoded frame and landmarks exactly (a grid faster than the video) reuse its result.

Columns: ``frame_index`` (int32), ``time_s`` (float64, grid time as in frames.parquet),
``face_found``, ``interpolated`` (bool, copied from frames.parquet), ``probs`` (7 × float32,
:data:`EXPRESSION_NAMES` order; NaN on rows with neither a found nor an interpolated face). The
file's ``medtalk`` metadata (JSON) names the classes, the model and its sha256, the fps and the crop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..frames_io import fixed_size_numpy
from ..fsutil import atomic_path
from ..rigs import N_LANDMARKS
from ..video import DecodedFrame, iter_frames
from .classifier import EXPRESSION_NAMES, FER2013_LABELS, MODEL_ASSET, ExpressionClassifier
from .crop import MARGIN, crop_grey, face_box

EXPRESSION_SCHEMA_VERSION = 1
N_CLASSES = len(EXPRESSION_NAMES)

EXPRESSION_SCHEMA = pa.schema(
    [
        ("frame_index", pa.int32()),
        ("time_s", pa.float64()),
        ("face_found", pa.bool_()),
        ("interpolated", pa.bool_()),
        ("probs", pa.list_(pa.float32(), N_CLASSES)),
    ]
)

_FRAME_COLUMNS = ["frame_index", "time_s", "source_frame", "face_found", "interpolated", "landmarks"]


def _grid_batches(frames_parquet: Path, batch_rows: int) -> Iterator[dict[str, np.ndarray]]:
    reader = pq.ParquetFile(frames_parquet)
    for rb in reader.iter_batches(batch_size=batch_rows, columns=_FRAME_COLUMNS):
        yield {
            "frame_index": rb.column("frame_index").to_numpy(),
            "time_s": rb.column("time_s").to_numpy(),
            "source_frame": rb.column("source_frame").to_numpy(),
            "face_found": rb.column("face_found").to_numpy(zero_copy_only=False),
            "interpolated": rb.column("interpolated").to_numpy(zero_copy_only=False),
            "landmarks": fixed_size_numpy(rb.column("landmarks"), (N_LANDMARKS, 3)),
        }


def _frames_metadata(frames_parquet: Path) -> dict[str, Any]:
    raw = (pq.ParquetFile(frames_parquet).schema_arrow.metadata or {}).get(b"medtalk")
    return json.loads(raw) if raw else {}


class _Decoder:
    """The decoded frame with a given index, advancing one stream forwards only."""

    def __init__(self, frames: Iterator[DecodedFrame]) -> None:
        self._frames = frames
        self.current: DecodedFrame | None = next(frames, None)

    def frame(self, index: int) -> DecodedFrame | None:
        while self.current is not None and self.current.index < index:
            self.current = next(self._frames, None)
        return self.current if self.current is not None and self.current.index == index else None


def run_expression_stage(
    source_path: Path,
    frames_parquet: Path,
    out_path: Path,
    *,
    nominal_fps: float,
    classifier: ExpressionClassifier | None = None,
    row_group_frames: int = 256,
) -> dict[str, Any]:
    """Write ``out_path`` (atomically) and return a JSON-safe summary for status.json.

    ``nominal_fps`` is the source's, as given to the face stage (used only to repair broken
    timestamps while decoding). ``classifier`` lets a worker reuse one loaded model across clips.
    Summary: ``n_frames`` (grid rows), ``n_with_face`` (found or interpolated), ``n_classified``
    (rows with probabilities), ``n_inferences`` (model calls), ``n_unclassified`` (rows with a face
    but no probabilities: box off the frame or under 8 px, or no decoded frame; 0 normally),
    ``mean_probs`` (per class, over classified rows), ``argmax_histogram`` (rows per top class),
    ``top``, ``seconds``, ``frames_per_s`` (grid rows per second), ``model``, ``model_sha256``.
    """
    started = time.perf_counter()
    clf = classifier or ExpressionClassifier()
    frames_meta = _frames_metadata(frames_parquet)
    meta = {
        "medtalk_expression_schema_version": EXPRESSION_SCHEMA_VERSION,
        "class_names": list(EXPRESSION_NAMES),
        "model": clf.model_path.name,
        "model_asset": MODEL_ASSET,
        "model_sha256": clf.model_sha256,
        "model_labels": list(FER2013_LABELS),
        "fps": frames_meta.get("fps"),
        "crop": {"from": "landmarks bounding box, square", "margin": MARGIN, "input": "grey 64x64, [-1, 1]"},
    }
    schema = EXPRESSION_SCHEMA.with_metadata({b"medtalk": json.dumps(meta).encode()})
    sums = np.zeros(N_CLASSES, dtype=np.float64)
    histogram = np.zeros(N_CLASSES, dtype=np.int64)
    n_frames = n_with_face = n_classified = n_inferences = 0
    last_key: tuple[int, bytes] | None = None
    last_probs = np.full(N_CLASSES, np.nan, dtype=np.float32)
    decoded = iter_frames(source_path, nominal_fps)
    try:
        decoder = _Decoder(decoded)
        with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in _grid_batches(frames_parquet, row_group_frames):
                n = len(batch["frame_index"])
                probs = np.full((n, N_CLASSES), np.nan, dtype=np.float32)
                usable = batch["face_found"] | batch["interpolated"]
                for i in np.flatnonzero(usable):
                    source = int(batch["source_frame"][i])
                    landmarks = batch["landmarks"][i]
                    key = (source, landmarks.tobytes())
                    if key == last_key:
                        probs[i] = last_probs
                    else:
                        frame = decoder.frame(source)
                        box = None if frame is None else face_box(landmarks, frame.rgb.shape[1], frame.rgb.shape[0])
                        if frame is None or box is None:
                            continue
                        probs[i] = clf.probabilities(crop_grey(frame.rgb, box))
                        n_inferences += 1
                        last_key, last_probs = key, probs[i]
                    sums += probs[i]
                    histogram[int(np.argmax(probs[i]))] += 1
                    n_classified += 1
                n_frames += n
                n_with_face += int(usable.sum())
                table = pa.table(
                    {
                        "frame_index": pa.array(batch["frame_index"], type=pa.int32()),
                        "time_s": pa.array(batch["time_s"], type=pa.float64()),
                        "face_found": pa.array(batch["face_found"], type=pa.bool_()),
                        "interpolated": pa.array(batch["interpolated"], type=pa.bool_()),
                        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), N_CLASSES),
                    },
                    schema=schema,
                )
                writer.write_table(table, row_group_size=n)
    finally:
        decoded.close()
    seconds = time.perf_counter() - started
    mean = sums / n_classified if n_classified else None
    mean_probs = None if mean is None else dict(zip(EXPRESSION_NAMES, np.round(mean, 4).tolist(), strict=True))
    return {
        "n_frames": n_frames,
        "n_with_face": n_with_face,
        "n_classified": n_classified,
        "n_inferences": n_inferences,
        "n_unclassified": n_with_face - n_classified,
        "mean_probs": mean_probs,
        "argmax_histogram": {k: int(c) for k, c in zip(EXPRESSION_NAMES, histogram, strict=True)},
        "top": None if mean is None else EXPRESSION_NAMES[int(np.argmax(mean))],
        "seconds": round(seconds, 3),
        "frames_per_s": round(n_frames / seconds, 1) if seconds > 0 else None,
        "model": clf.model_path.name,
        "model_sha256": clf.model_sha256,
    }
