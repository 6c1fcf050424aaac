"""Plain ARKit CSV: ``time_s,<name>,<name>…``, one row per frame, 6 decimals.

The simplest file a DCC script or spreadsheet can read: the header names every column, so readers
match channels by name and any column order works. By default ARKit-like curves are written as
Apple's 52 names in Apple order (MediaPipe's ``_neutral`` dropped, ``tongueOut`` filled with 0).
The frame rate is not stored; it is measured back from the time column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path

from .curves import Curves, arkit_export_names, is_arkit_like, snap_fps, to_uniform_grid

TIME_COLUMN = "time_s"


def write_arkit_csv(path: Path, curves: Curves, names: Sequence[str] | None = None) -> Path:
    """Write ``curves`` (atomically) with the columns ``names``; default: ARKit order for ARKit-like curves.

    Names the curves lack are written as 0 (see ``Curves.select``); other curves keep their own names.
    """
    path = Path(path)
    if names is None:
        names = arkit_export_names(curves.names) if is_arkit_like(curves.names) else list(curves.names)
    if TIME_COLUMN in names:
        raise MedtalkError(f"{display_path(path)}: a channel may not be called {TIME_COLUMN!r} (the time column)")
    out = curves.select(list(names))
    times = np.arange(out.n_frames, dtype=np.float64) / out.fps
    table = np.column_stack([times, out.values.astype(np.float64)]) if out.n_frames else np.zeros((0, 1 + len(names)))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join([TIME_COLUMN, *out.names]) + "\n")
        np.savetxt(fh, table, fmt="%.6f", delimiter=",")
    return path


def read_arkit_csv(path: Path, fps: float | None = None) -> Curves:
    """Curves with the header's names (in file order) and fps measured from the time column.

    ``fps`` overrides the measured rate (needed for a one-row file). Rows that are not evenly spaced
    are interpolated onto the frame grid and counted in ``meta["filled_frames"]``.
    """
    path = Path(path)
    shown = display_path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().strip().lstrip("\ufeff").split(",")
            table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise MedtalkError(f"{shown}: cannot read ARKit CSV ({err})") from err
    header = [h.strip() for h in header]
    if not header or header[0] != TIME_COLUMN:
        raise MedtalkError(f"{shown}: first column must be {TIME_COLUMN!r}, found {header[0]!r}; not an ARKit CSV")
    if table.size == 0:
        raise MedtalkError(f"{shown}: no frames after the header")
    if table.shape[1] != len(header):
        raise MedtalkError(f"{shown}: {table.shape[1]} values per row but {len(header)} header columns")
    if not np.isfinite(table).all():
        row = int(np.where(~np.isfinite(table).all(axis=1))[0][0]) + 2
        raise MedtalkError(f"{shown}: NaN or inf on line {row}")
    times = table[:, 0]
    steps = np.diff(times)
    if (steps <= 0).any():
        line = int(np.where(steps <= 0)[0][0]) + 3
        raise MedtalkError(f"{shown}: {TIME_COLUMN} does not increase on line {line}; rows must be in time order")
    if fps is None:
        if len(times) < 2:
            raise MedtalkError(f"{shown}: one frame only, so its fps cannot be measured; pass fps")
        fps = snap_fps(1.0 / float(np.median(steps)))
    values, filled = to_uniform_grid(times, table[:, 1:], float(fps))
    meta = {"start_s": float(times[0])}
    if filled:
        meta["filled_frames"] = filled
    return Curves(values, header[1:], float(fps), meta=meta)
