"""FLAME parameters as ``.flame.npz``, with the keys FLAME-based projects read (EMOTE, DiffPoseTalk).

Keys: ``exp`` (T, E) expression coefficients, ``jaw_pose`` (T, 3) and ``global_pose`` (T, 3)
axis-angle in radians, ``shape`` (S,) the identity (zeros: FLAME's mean face, unless given), ``fps``.
Curves of a FLAME rig (``exp_000``…, ``jaw_x/y/z``, see ``medtalk_data.rigs.flame_channels``) are
written and read back by name; reading never unpickles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigs import FLAME_JAW, flame_channels

from .curves import Curves

N_SHAPE = 100


def write_flame_npz(path: Path, curves: Curves, shape: np.ndarray | None = None) -> Path:
    """Write FLAME-rig ``curves`` (expression + jaw) atomically; ``global_pose`` from ``curves.meta`` if there."""
    names = curves.names
    jaw = [names.index(n) for n in FLAME_JAW]
    exp = [i for i, n in enumerate(names) if n.startswith("exp_")]
    if len(jaw) + len(exp) != len(names):
        raise MedtalkError(f"{display_path(path)}: .flame.npz holds FLAME curves (exp_*, jaw_x/y/z), got {names[:4]}…")
    global_pose = np.asarray(curves.meta.get("global_pose", np.zeros((curves.n_frames, 3))), np.float32)
    arrays = {
        "exp": curves.values[:, exp].astype(np.float32),
        "jaw_pose": curves.values[:, jaw].astype(np.float32),
        "global_pose": global_pose.reshape(curves.n_frames, 3),
        "shape": np.zeros(N_SHAPE, np.float32) if shape is None else np.asarray(shape, np.float32),
        "fps": np.float64(curves.fps),
    }
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def read_flame_npz(path: Path, fps: float | None = None) -> Curves:
    """FLAME curves from a ``.flame.npz`` (``exp`` + ``jaw_pose``; ``fps`` from the file or the argument)."""
    shown = display_path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "exp" not in data.files or "jaw_pose" not in data.files:
                raise MedtalkError(f"{shown}: a FLAME npz needs 'exp' and 'jaw_pose' (it has {sorted(data.files)})")
            exp, jaw = np.asarray(data["exp"], np.float32), np.asarray(data["jaw_pose"], np.float32)
            rate = float(data["fps"]) if "fps" in data.files else fps
            meta = {"global_pose": np.asarray(data["global_pose"], np.float32)} if "global_pose" in data.files else {}
    except (OSError, ValueError) as err:
        raise MedtalkError(f"{shown}: not a readable npz ({err})") from err
    if exp.ndim != 2 or jaw.shape != (len(exp), 3):
        raise MedtalkError(f"{shown}: exp {exp.shape} and jaw_pose {jaw.shape} do not fit (T, E) and (T, 3)")
    if rate is None:
        raise MedtalkError(f"{shown}: no 'fps' in the file; pass the frame rate")
    return Curves(np.concatenate([exp, jaw], axis=1), list(flame_channels(exp.shape[1])), rate, meta=meta)
