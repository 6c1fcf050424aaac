"""The user's FLAME model: found, read safely once, checked, cached as a plain ``.npz``.

FLAME (https://flame.is.tue.mpg.de) is licence-gated, so medtalk never ships or downloads it; the
user points ``--flame-model`` or ``$MEDTALK_FLAME_MODEL`` at ``generic_model.pkl`` (FLAME 2020) or
``flame2023.pkl`` (FLAME 2023). The pickle is read by :mod:`.safe_pickle` (nothing in it runs) and
converted once into ``<cache>/flame/<sha256>.npz``, which later runs load with
``allow_pickle=False``.

The layout read (FLAME's own keys): ``v_template`` (V, 3) metres, ``f`` (F, 3) triangles,
``shapedirs`` (V, 3, 300 + E) identity then expression bases, ``posedirs`` (V, 3, 36) pose
correctives, ``J_regressor`` (5, V), ``weights`` (V, 5) skinning weights, ``kintree_table``
(2, 5) with the joints global (root), neck, jaw, eye, eye.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...assets import UserFile
from ...errors import MedtalkError
from ...io.files import atomic_path, display_path, sha256_cached
from .safe_pickle import load_restricted

FLAME_MODEL_ENV = "MEDTALK_FLAME_MODEL"
FLAME_URL = "https://flame.is.tue.mpg.de (free registration; FLAME licence)"
N_JOINTS = 5  # global, neck, jaw, left/right eye
N_SHAPE_BASES = 300  # shapedirs holds the 300 identity bases first, then the expression bases
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
CACHE_FORMAT = 1


@dataclass(frozen=True)
class FlameModel:
    """FLAME's arrays as float32/int64 numpy (see the module docstring for shapes)."""

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray  # (V, 3, 300) identity
    expressiondirs: np.ndarray  # (V, 3, E)
    posedirs: np.ndarray  # (V, 3, 36)
    j_regressor: np.ndarray  # (5, V), dense
    weights: np.ndarray  # (V, 5)
    parents: np.ndarray  # (5,), -1 for the root
    version: str  # "2020", "2023" or "unknown"
    sha256: str  # of the user's original file
    source: str  # its path, for messages

    @property
    def n_vertices(self) -> int:
        return len(self.v_template)

    @property
    def n_expression(self) -> int:
        return self.expressiondirs.shape[2]

    def eye_joints(self) -> tuple[int, int]:
        """(left, right) eye joint indices: the subject's left eye has the larger x."""
        j = self.j_regressor @ self.v_template
        return (3, 4) if j[3, 0] > j[4, 0] else (4, 3)


def version_of(path: Path, setting: str = "auto") -> str:
    """FLAME release of a model file: the setting, else read from the official file names."""
    if setting != "auto":
        return setting
    name = path.name.lower()
    if "2023" in name:
        return "2023"
    if "2020" in name or name == "generic_model.pkl":
        return "2020"
    return "unknown"


FLAME_MODEL = UserFile(
    "the FLAME model file (generic_model.pkl of FLAME 2020 or flame2023.pkl)",
    "the flame backend",
    "--flame-model",
    FLAME_MODEL_ENV,
    FLAME_URL,
)


def find_model_path(explicit: str | os.PathLike[str] | None) -> Path:
    return FLAME_MODEL.find(explicit)


def _cache_path(sha256: str) -> Path:
    from ...assets import cache_dir

    return cache_dir() / "flame" / f"{sha256[:32]}.npz"


def load_flame_model(explicit: str | os.PathLike[str] | None = None, version: str = "auto") -> FlameModel:
    """The user's FLAME model, from its cached ``.npz`` when this file was converted before."""
    path = find_model_path(explicit)
    digest = sha256_cached(path)
    cached = _cache_path(digest)
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as data:
                if int(data["cache_format"]) == CACHE_FORMAT:
                    return _from_arrays({k: data[k] for k in data.files}, path, digest, version)
        except (OSError, ValueError, KeyError):
            pass  # a damaged or older cache is converted again below
    arrays = _read_pickle(path)
    model = _from_arrays(arrays, path, digest, version)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, cache_format=np.int64(CACHE_FORMAT), **arrays)
    except OSError:
        pass  # no writable cache: the pickle is read again next time
    return model


def _read_pickle(path: Path) -> dict[str, np.ndarray]:
    raw = load_restricted(path, "FLAME model")
    if not isinstance(raw, dict):
        raise MedtalkError(f"{display_path(path)}: not a FLAME model (the pickle holds a {type(raw).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise MedtalkError(
            f"{display_path(path)}: not a FLAME model (no {', '.join(missing)}); "
            f"pass generic_model.pkl or flame2023.pkl from {FLAME_URL}"
        )
    try:
        return {
            k: np.asarray(raw[k], dtype=np.int64 if k in ("f", "kintree_table") else np.float32) for k in REQUIRED_KEYS
        }
    except (TypeError, ValueError) as err:
        raise MedtalkError(f"{display_path(path)}: FLAME arrays unreadable ({err})") from err


def _from_arrays(arrays: dict[str, np.ndarray], path: Path, digest: str, version: str) -> FlameModel:
    """Check shapes and the kinematic tree; MedtalkError naming the file and what is off."""

    def bad(why: str) -> MedtalkError:
        return MedtalkError(f"{display_path(path)}: not a FLAME model ({why})")

    v = np.asarray(arrays["v_template"], dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3:
        raise bad(f"v_template has shape {v.shape}, expected (vertices, 3)")
    n = len(v)
    faces = np.asarray(arrays["f"]).astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= n:
        raise bad("triangles 'f' missing or indexing outside the mesh")
    dirs = np.asarray(arrays["shapedirs"], dtype=np.float32)
    if dirs.ndim != 3 or dirs.shape[:2] != (n, 3) or dirs.shape[2] <= N_SHAPE_BASES:
        raise bad(f"shapedirs has shape {dirs.shape}, expected ({n}, 3, {N_SHAPE_BASES} + expression bases)")
    posedirs = np.asarray(arrays["posedirs"], dtype=np.float32)
    if posedirs.shape != (n, 3, (N_JOINTS - 1) * 9):
        raise bad(f"posedirs has shape {posedirs.shape}, expected ({n}, 3, 36)")
    regressor = np.asarray(arrays["J_regressor"], dtype=np.float32)
    weights = np.asarray(arrays["weights"], dtype=np.float32)
    if regressor.shape != (N_JOINTS, n) or weights.shape != (n, N_JOINTS):
        raise bad(f"J_regressor {regressor.shape} / weights {weights.shape}, expected (5, {n}) / ({n}, 5)")
    tree = np.asarray(arrays["kintree_table"]).astype(np.int64)
    if tree.shape != (2, N_JOINTS):
        raise bad(f"kintree_table has shape {tree.shape}, expected (2, 5)")
    parents = tree[0].copy()
    parents[0] = -1  # stored as 2**32 - 1
    if any(not 0 <= p < i for i, p in enumerate(parents) if i > 0):
        raise bad("kintree_table is not a tree rooted at joint 0")
    return FlameModel(
        v_template=v,
        faces=faces,
        shapedirs=np.ascontiguousarray(dirs[:, :, :N_SHAPE_BASES]),
        expressiondirs=np.ascontiguousarray(dirs[:, :, N_SHAPE_BASES:]),
        posedirs=posedirs,
        j_regressor=regressor,
        weights=weights,
        parents=parents,
        version=version_of(path, version),
        sha256=digest,
        source=display_path(path),
    )
