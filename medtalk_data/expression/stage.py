"""Classify the tracked face of every grid frame → ``expression.parquet`` (one row per row of frames.parquet).

The classifier is fed by the face stage's own frame loop (:class:`ExpressionObserver` is handed
to :func:`medtalk_data.face.stage.run_face_stage`): each decoded frame whose face the tracker
follows is cropped on that face's landmarks while the picture is in memory, so the video is
decoded once for both stages. The crop is classified on a thread of the observer's own (LiteRT's
``invoke`` releases the GIL), so the classifier uses a core the serial face loop leaves idle
instead of lengthening it; a bounded queue keeps at most :data:`QUEUE_CROPS` crops waiting.
Afterwards a grid row takes the probabilities of its ``source_frame`` (the nearest decoded frame,
as its landmarks do); a row whose face was interpolated across a short gap (``interpolated``: the
face is in the picture, the tracker missed it) takes the probabilities interpolated in time
between the classified rows around the gap.
What is kept per decoded frame is its seven probabilities (28 bytes), and of the grid only five
small columns are read back (no landmarks), so memory stays a few dozen bytes per frame.

Columns: ``frame_index`` (int32), ``time_s`` (float64, grid time as in frames.parquet),
``face_found``, ``interpolated`` (bool, copied from frames.parquet), ``probs`` (7 × float32,
:data:`EXPRESSION_NAMES` order; NaN on rows with neither a found nor an interpolated face). The
file's ``medtalk`` metadata (JSON) names the classes, the model and its sha256, the fps and the crop.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..face.base import FaceObservation
from ..io.files import atomic_path
from ..io.media import DecodedFrame
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

_FRAME_COLUMNS = ["frame_index", "time_s", "source_frame", "face_found", "interpolated"]
QUEUE_CROPS = 32  # crops waiting for the classifier thread: the face loop waits when it is this far ahead
_DONE = None  # the queue's last item


@dataclass
class ExpressionSummary:
    """What the labels stage made of one clip (status.json ``expression``)."""

    n_frames: int = 0
    n_with_face: int = 0
    n_classified: int = 0
    n_inferences: int = 0
    n_unclassified: int = 0
    mean_probs: dict[str, float] | None = None
    argmax_histogram: dict[str, int] = field(default_factory=dict)
    top: str | None = None
    seconds: float = 0.0
    frames_per_s: float | None = None
    model: str = ""
    model_sha256: str = ""


class ExpressionObserver:
    """Sees every decoded frame of the face stage with the face it follows, crops that face and has it
    classified on its own thread. One per clip; :meth:`finish` (called by the face stage) waits for the
    last crop and raises the classifier's error, if it had one."""

    def __init__(self, classifier: ExpressionClassifier | None = None) -> None:
        self.classifier = classifier or ExpressionClassifier()
        self.probs: dict[int, np.ndarray] = {}  # decoded frame index → (7,) float32
        self._crop_seconds = 0.0  # on the face stage's thread (the decode is the face stage's)
        self._classify_seconds = 0.0  # on the classifier thread
        self._crops: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=QUEUE_CROPS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def observe(self, frame: DecodedFrame, face: FaceObservation | None) -> None:
        if self._error is not None:  # the classifier failed: so does the face stage, at once
            raise self._error
        if face is None:
            return
        started = time.perf_counter()
        height, width = frame.rgb.shape[:2]
        box = face_box(face.landmarks, width, height)
        # None off the frame or under 8 px (not classified); else a copy: the frame may be reused once this returns
        crop = crop_grey(frame.rgb, box) if box is not None else None
        self._crop_seconds += time.perf_counter() - started
        if crop is not None:
            if self._thread is None:
                self._thread = threading.Thread(target=self._classify, name="expression", daemon=True)
                self._thread.start()
            self._crops.put((frame.index, crop))

    @property
    def seconds(self) -> float:
        """Spent cropping and classifying, on both threads."""
        return self._crop_seconds + self._classify_seconds

    def _classify(self) -> None:
        while (item := self._crops.get()) is not _DONE:
            if self._error is not None:
                continue  # drained without work, so a waiting face loop is never stuck on a full queue
            started = time.perf_counter()
            try:
                self.probs[item[0]] = self.classifier.probabilities(item[1])
            except BaseException as err:  # handed to the face thread, raised there
                self._error = err
            self._classify_seconds += time.perf_counter() - started

    def finish(self) -> None:
        """Wait until every crop is classified; raise the classifier's error if it failed. Idempotent."""
        if self._thread is not None:
            self._crops.put(_DONE)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def grid_probs(self, source_frame: np.ndarray, found: np.ndarray, interpolated: np.ndarray) -> np.ndarray:
        """(n, 7) probabilities of the grid rows: found rows from their source frame, interpolated rows
        linearly between the classified rows around them, NaN elsewhere."""
        n = len(source_frame)
        probs = np.full((n, N_CLASSES), np.nan, dtype=np.float32)
        for i in np.flatnonzero(found):
            got = self.probs.get(int(source_frame[i]))
            if got is not None:
                probs[i] = got
        known = np.flatnonzero(np.isfinite(probs[:, 0]))
        fill = np.flatnonzero(interpolated & ~np.isfinite(probs[:, 0]))
        if len(known) and len(fill):
            for k in range(N_CLASSES):  # np.interp holds the end values past the first/last known row
                probs[fill, k] = np.interp(fill, known, probs[known, k])
        return probs

    def write(self, frames_parquet: Path, out_path: Path, row_group_frames: int = 256) -> ExpressionSummary:
        """Write ``out_path`` (atomically) for the grid of ``frames_parquet``; the summary for status.json.

        Summary: ``n_frames`` (grid rows), ``n_with_face`` (found or interpolated), ``n_classified``
        (rows with probabilities), ``n_inferences`` (model calls), ``n_unclassified`` (rows with a face
        but no probabilities: box off the frame or under 8 px; 0 normally), ``mean_probs`` (per class,
        over classified rows), ``argmax_histogram`` (rows per top class), ``top``, ``seconds`` (cropping
        and classifying), ``frames_per_s`` (grid rows per second of that), ``model``, ``model_sha256``.
        """
        self.finish()
        clf = self.classifier
        frames = pq.read_table(frames_parquet, columns=_FRAME_COLUMNS)
        fps = json.loads((frames.schema.metadata or {}).get(b"medtalk", b"{}")).get("fps")
        found = frames["face_found"].to_numpy(zero_copy_only=False)
        interpolated = frames["interpolated"].to_numpy(zero_copy_only=False)
        probs = self.grid_probs(frames["source_frame"].to_numpy(), found, interpolated)
        meta = {
            "medtalk_expression_schema_version": EXPRESSION_SCHEMA_VERSION,
            "class_names": list(EXPRESSION_NAMES),
            "model": clf.model_path.name,
            "model_asset": MODEL_ASSET,
            "model_sha256": clf.model_sha256,
            "model_labels": list(FER2013_LABELS),
            "fps": fps,
            "crop": {"from": "landmarks bounding box, square", "margin": MARGIN, "input": "grey 64x64, [-1, 1]"},
        }
        schema = EXPRESSION_SCHEMA.with_metadata({b"medtalk": json.dumps(meta).encode()})
        table = pa.table(
            {
                "frame_index": frames["frame_index"].cast(pa.int32()),
                "time_s": frames["time_s"],
                "face_found": frames["face_found"],
                "interpolated": frames["interpolated"],
                "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), N_CLASSES),
            },
            schema=schema,
        )
        with atomic_path(out_path) as tmp:
            pq.write_table(table, tmp, compression="zstd", row_group_size=max(1, row_group_frames))
        classified = np.isfinite(probs[:, 0])
        with_face = found | interpolated
        mean = probs[classified].mean(axis=0) if classified.any() else None
        histogram = np.bincount(np.argmax(probs[classified], axis=1), minlength=N_CLASSES)
        n = len(found)
        mean_probs = None if mean is None else dict(zip(EXPRESSION_NAMES, np.round(mean, 4).tolist(), strict=True))
        return ExpressionSummary(
            n_frames=n,
            n_with_face=int(with_face.sum()),
            n_classified=int(classified.sum()),
            n_inferences=len(self.probs),
            n_unclassified=int((with_face & ~classified).sum()),
            mean_probs=mean_probs,
            argmax_histogram={k: int(c) for k, c in zip(EXPRESSION_NAMES, histogram, strict=True)},
            top=None if mean is None else EXPRESSION_NAMES[int(np.argmax(mean))],
            seconds=round(self.seconds, 3),
            frames_per_s=round(n / self.seconds, 1) if self.seconds > 0 else None,
            model=clf.model_path.name,
            model_sha256=clf.model_sha256,
        )
