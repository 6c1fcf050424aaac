"""NumPy ``.npz``: the lossless exchange file for any rig (ARKit, 174 MetaHuman controllers, custom).

Keys: ``curves`` (T, C) float32, ``names`` (C,) str, ``fps`` scalar float and, optionally, ``time_s``
(T,) float64. Names and fps travel inside the file, so nothing depends on column order or on a
separate names file. Reading never unpickles (``allow_pickle=False``), and a file with missing,
unknown or inconsistent keys fails with one line that names the file and the key.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path

from .curves import Curves

REQUIRED_KEYS = ("curves", "names", "fps")
OPTIONAL_KEYS = ("time_s",)


def write_npz(path: Path, curves: Curves, *, with_time: bool = True) -> Path:
    """Write ``curves`` (atomically, compressed); ``time_s = k / fps`` is added unless ``with_time=False``."""
    path = Path(path)
    arrays = {
        "curves": curves.values.astype(np.float32),
        "names": np.asarray(curves.names, dtype=np.str_).reshape(len(curves.names)),
        "fps": np.float64(curves.fps),
    }
    if with_time:
        arrays["time_s"] = np.arange(curves.n_frames, dtype=np.float64) / curves.fps
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def read_npz(path: Path) -> Curves:
    """Curves from an npz written by :func:`write_npz` (or by hand with the same keys), validated."""
    path = Path(path)
    shown = display_path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise MedtalkError(f"{shown}: holds a single array, not an npz with {list(REQUIRED_KEYS)}")
        with loaded as data:
            keys = set(data.files)
            missing = [k for k in REQUIRED_KEYS if k not in keys]
            if missing:
                raise MedtalkError(
                    f"{shown}: missing key(s) {missing} (it has {sorted(keys)}); a curves npz needs "
                    f"{list(REQUIRED_KEYS)} and may have {list(OPTIONAL_KEYS)}"
                )
            unknown = sorted(keys - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
            if unknown:
                raise MedtalkError(
                    f"{shown}: unknown key(s) {unknown}; a curves npz holds only "
                    f"{list(REQUIRED_KEYS + OPTIONAL_KEYS)} (is this another tool's file?)"
                )
            arrays = {k: data[k] for k in keys}
    except MedtalkError:
        raise
    except FileNotFoundError as err:
        raise MedtalkError(f"{shown}: file not found") from err
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise MedtalkError(f"{shown}: not a readable npz, perhaps truncated or still being written ({err})") from err
    return _validated(shown, arrays)


def _validated(shown: str, arrays: dict[str, np.ndarray]) -> Curves:
    values, names, fps = arrays["curves"], arrays["names"], arrays["fps"]
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise MedtalkError(
            f"{shown}: 'curves' must be a numeric (frames, channels) array, got {values.dtype} {values.shape}"
        )
    if names.ndim != 1 or names.dtype.kind != "U":
        raise MedtalkError(f"{shown}: 'names' must be a 1-D array of strings, got {names.dtype} {names.shape}")
    if len(names) != values.shape[1]:
        raise MedtalkError(f"{shown}: {values.shape[1]} channels in 'curves' but {len(names)} 'names'")
    if fps.shape != () or not np.issubdtype(fps.dtype, np.number):
        raise MedtalkError(f"{shown}: 'fps' must be a single number, got {fps.dtype} {fps.shape}")
    rate = float(fps)
    if not math.isfinite(rate) or rate <= 0:
        raise MedtalkError(f"{shown}: 'fps' is {rate}, expected a positive frame rate")
    if not np.isfinite(values).all():
        raise MedtalkError(f"{shown}: NaN or inf in 'curves'")
    meta: dict[str, float] = {}
    if "time_s" in arrays:
        time_s = arrays["time_s"]
        if time_s.shape != (values.shape[0],):
            raise MedtalkError(f"{shown}: 'time_s' has shape {time_s.shape}, expected ({values.shape[0]},)")
        expected = (time_s[0] if len(time_s) else 0.0) + np.arange(len(time_s)) / rate
        if len(time_s) and np.abs(time_s - expected).max() > 0.5 / rate:
            raise MedtalkError(f"{shown}: 'time_s' is not k / fps at fps {rate:g}; the file is inconsistent")
        if len(time_s):
            meta["start_s"] = float(time_s[0])
    return Curves(values.astype(np.float32), [str(n) for n in names], rate, meta=dict(meta))
