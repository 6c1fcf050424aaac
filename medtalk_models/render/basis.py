"""A linear blendshape basis on the canonical mesh, fitted by ridge least squares from real frames.

``vertices = neutral + Σ_k w_k · delta_k`` with the 52 MediaPipe channels. No 3DMM with an
expression basis may be bundled (licences), so the basis is learnt from the FaceLandmarker's own
(landmarks, blendshapes) pairs: per frame the 468 mesh landmarks are brought into the canonical
head frame, then the neutral shape and the 52 deltas are solved jointly for all frames. Each clip
gets its own free neutral (its person's face), so the deltas learn from motion within clips only:
fitted with one shared neutral, channels whose average differs between speakers (browDownRight)
absorbed 2 cm of face-shape difference and held-out clips were reproduced worse.

Head pose is removed by a per-frame similarity (Umeyama) alignment of the landmarks to the
canonical mesh, weighted by MediaPipe's own ``procrustes_landmark_basis`` (33 rigid points on the
forehead, nose bridge and eye corners). Why not the facial transformation matrix: it maps the
canonical model into MediaPipe's *perspective* camera (fixed 63° field of view), while the
normalised landmarks are close to orthographic (x, y in the image, z on x's scale); undoing it
needs the unknown camera and leaves scale and depth errors, and it was the noisier option on the
held-out clips. Aligning on all 468 points instead lets an opening jaw tilt the whole head (the
alignment absorbs part of the expression), which the rigid-point weights avoid.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.canonical_mesh import N_VERTICES, CanonicalMesh, load_canonical_mesh
from medtalk_data.face.head_frame import canonical_shapes
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

log = logging.getLogger(__name__)

BASIS_FORMAT_VERSION = 1
# Ridge per frame on the deltas: keeps rarely seen channels near zero instead of fitting noise (with none the
# solve blows up on them). Chosen by leave-one-clip-out error over 0…0.02, on the 5 bundled and 26 shared clips.
DEFAULT_RIDGE = 0.0005
DEFAULT_BASIS_RESOURCE = "assets/blendshape_basis.npz"
# channels that are not a shape change: their delta stays zero
_NOT_SHAPES = frozenset({"_neutral"})


@dataclass
class FitFrames:
    """Pose-free landmark shapes and their blendshape weights, ready for the solve."""

    shapes: np.ndarray  # (N, 468, 3) canonical cm
    weights: np.ndarray  # (N, 52)
    clip_of_frame: np.ndarray  # (N,) index into clip_ids
    clip_ids: list[str]


@dataclass
class BlendshapeBasis:
    """``neutral`` (468, 3) cm, ``deltas`` (52, 468, 3) cm per unit weight, channel ``names``."""

    neutral: np.ndarray
    deltas: np.ndarray
    names: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.neutral = np.asarray(self.neutral, dtype=np.float32)
        self.deltas = np.asarray(self.deltas, dtype=np.float32)
        self.names = [str(n) for n in self.names]
        if self.neutral.shape != (N_VERTICES, 3) or self.deltas.shape != (len(self.names), N_VERTICES, 3):
            raise ValueError(
                f"basis shapes neutral {self.neutral.shape}, deltas {self.deltas.shape}, {len(self.names)} names"
            )
        self._flat = self.deltas.reshape(len(self.names), -1)

    def vertices(self, weights: np.ndarray) -> np.ndarray:
        """(…, C) weights in ``names`` order → (…, 468, 3) vertices in cm."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape[-1] != len(self.names):
            raise ValueError(f"expected {len(self.names)} weights per frame, got {w.shape[-1]}")
        flat = w @ self._flat
        return self.neutral + flat.reshape(*w.shape[:-1], N_VERTICES, 3)

    def weights_from(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """(T, C) curves named ``names`` → (T, len(self.names)) by name; absent channels are 0."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(f"curves of shape {values.shape} do not match {len(names)} channel names")
        out = np.zeros((values.shape[0], len(self.names)), dtype=np.float32)
        index = {n: i for i, n in enumerate(names)}
        matched = [(j, index[n]) for j, n in enumerate(self.names) if n in index]
        if not matched:
            raise MedtalkError(
                f"none of the {len(names)} curve channels is a MediaPipe blendshape name; "
                "the mesh preview needs mediapipe52 curves"
            )
        for j, i in matched:
            out[:, j] = values[:, i]
        return np.nan_to_num(out)

    def save(self, path: str | os.PathLike[str]) -> None:
        """npz (atomic): neutral float32, deltas float16 (error < 0.001 cm), names, provenance JSON."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                format_version=np.int32(BASIS_FORMAT_VERSION),
                neutral=self.neutral.astype(np.float32),
                deltas=self.deltas.astype(np.float16),
                names=np.asarray(self.names),
                provenance=np.asarray(json.dumps(self.provenance, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Any) -> BlendshapeBasis:
        """Read a basis written by :meth:`save` (a path or a binary file object)."""
        label = display_path(path) if isinstance(path, (str, os.PathLike)) else "blendshape basis"
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != BASIS_FORMAT_VERSION:
                    raise MedtalkError(f"{label}: basis format {version}, this medtalk reads {BASIS_FORMAT_VERSION}")
                return cls(
                    neutral=data["neutral"],
                    deltas=data["deltas"].astype(np.float32),
                    names=[str(n) for n in data["names"]],
                    provenance=json.loads(str(data["provenance"])),
                )
        except (OSError, KeyError, ValueError) as err:
            raise MedtalkError(f"{label}: not a readable blendshape basis ({err}); rebuild it") from err


def default_basis() -> BlendshapeBasis:
    """The basis shipped with the package (fitted from the five bundled example clips)."""
    from importlib import resources

    resource = resources.files("medtalk_models").joinpath(DEFAULT_BASIS_RESOURCE)
    with resource.open("rb") as fh:
        return BlendshapeBasis.load(fh)


def frame_size(clip_dir: Path) -> tuple[int, int]:
    """The upright video size from the clip's status.json (landmark x, y are normalised by it)."""
    from medtalk_data.extract.layout import read_status

    status = read_status(clip_dir)
    size = status.media.upright_size if status is not None and status.media is not None else None
    if size is None:
        log.warning("%s: no frame size in status.json; assuming square frames", display_path(clip_dir))
        return 1, 1
    return size


def collect_fit_frames(
    clips: Iterable[tuple[str, Any, tuple[int, int]]], mesh: CanonicalMesh | None = None, weights: str = "procrustes"
) -> FitFrames:
    """(clip id, ClipFrames, (width, height)) triples → pose-free shapes of real face frames.

    Interpolated frames (filled across a short gap) are left out: they are not measured pairs.
    """
    mesh = mesh or load_canonical_mesh()
    shapes, ws, owner, ids = [], [], [], []
    for clip_id, frames, (width, height) in clips:
        names = list(frames.blendshape_names)
        if names != list(MEDIAPIPE_BLENDSHAPES):
            raise MedtalkError(f"{clip_id}: blendshape channels are not MediaPipe's 52; cannot fit the basis")
        keep = frames.face_found & ~frames.interpolated
        keep &= np.isfinite(frames.landmarks).all(axis=(1, 2)) & np.isfinite(frames.blendshapes).all(axis=1)
        if not keep.any():
            continue
        shapes.append(canonical_shapes(frames.landmarks[keep], mesh, width, height, weights))
        ws.append(frames.blendshapes[keep].astype(np.float32))
        owner.append(np.full(int(keep.sum()), len(ids)))
        ids.append(clip_id)
    if not ids:
        raise MedtalkError("no face frames to fit a blendshape basis from; extract clips with the face stage first")
    return FitFrames(np.concatenate(shapes), np.concatenate(ws), np.concatenate(owner), ids)


# -- the solve -----------------------------------------------------------------------------------


def solve_basis(
    shapes: np.ndarray,
    weights: np.ndarray,
    names: Sequence[str],
    ridge: float = DEFAULT_RIDGE,
    groups: np.ndarray | None = None,
) -> BlendshapeBasis:
    """Ridge least squares for all frames jointly: shapes ≈ neutral + weights @ deltas.

    The neutral is a free, unpenalised term (solved by centring); ``ridge`` × N on the deltas. With
    ``groups`` (a clip index per frame) every clip gets its own free neutral, so the deltas learn
    from motion within clips only: a channel whose average differs between people cannot soak up
    the difference in their face shapes. The returned neutral is then the frame-weighted mean.
    """
    n = len(shapes)
    y = shapes.reshape(n, -1).astype(np.float64)
    active = np.array([name not in _NOT_SHAPES for name in names])
    x = weights[:, active].astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    if groups is None:
        xc, yc = x - x_mean, y - y_mean
    else:
        xc, yc = x.copy(), y.copy()
        for g in np.unique(groups):
            rows = groups == g
            xc[rows] -= x[rows].mean(axis=0)
            yc[rows] -= y[rows].mean(axis=0)
    gram = xc.T @ xc + ridge * n * np.eye(x.shape[1])
    deltas_active = np.linalg.solve(gram, xc.T @ yc)
    deltas = np.zeros((len(names), y.shape[1]))
    deltas[active] = deltas_active
    neutral = y_mean - x_mean @ deltas_active
    return BlendshapeBasis(neutral.reshape(N_VERTICES, 3), deltas.reshape(len(names), N_VERTICES, 3), list(names))


def mean_vertex_error(basis: BlendshapeBasis, shapes: np.ndarray, weights: np.ndarray) -> float:
    """Mean Euclidean distance (cm) between the basis' vertices and the measured shapes."""
    return float(np.linalg.norm(basis.vertices(weights) - shapes, axis=-1).mean())


def fit_basis(
    frames_list: Iterable[Any],
    *,
    frame_sizes: Sequence[tuple[int, int]] | None = None,
    ridge: float = DEFAULT_RIDGE,
    mesh: CanonicalMesh | None = None,
) -> BlendshapeBasis:
    """Fit a basis from :class:`~medtalk_data.face.frames.ClipFrames` of one or more clips.

    ``frame_sizes`` gives each clip's upright (width, height) so x and y get their true aspect;
    without it frames are taken as square.
    """
    frames_list = list(frames_list)
    sizes = list(frame_sizes) if frame_sizes is not None else [(1, 1)] * len(frames_list)
    clips = [
        (str(f.metadata.get("clip_id", i)), f, size) for i, (f, size) in enumerate(zip(frames_list, sizes, strict=True))
    ]
    data = collect_fit_frames(clips, mesh)
    return fit_from_frames(data, ridge)


def fit_from_frames(data: FitFrames, ridge: float = DEFAULT_RIDGE) -> BlendshapeBasis:
    """Solve and record the provenance (clips, frames, training residual)."""
    basis = solve_basis(data.shapes, data.weights, MEDIAPIPE_BLENDSHAPES, ridge, data.clip_of_frame)
    basis.provenance = {
        "clips": list(data.clip_ids),
        "frames": len(data.shapes),
        "fit_residual_cm": round(mean_vertex_error(basis, data.shapes, data.weights), 5),
        "fit_residual_within_clip_cm": round(_within_clip_error(basis, data), 5),
        "alignment": "per-frame similarity to the canonical mesh on MediaPipe's procrustes landmarks",
        "neutral": "one per clip while fitting; the frame-weighted mean is stored",
        "ridge": ridge,
    }
    return basis


def _within_clip_error(basis: BlendshapeBasis, data: FitFrames) -> float:
    """Training residual with each clip's own neutral (its mean offset added): the expression part."""
    predicted = basis.vertices(data.weights)
    total = 0.0
    for k in range(len(data.clip_ids)):
        rows = data.clip_of_frame == k
        p = predicted[rows] + (data.shapes[rows] - predicted[rows]).mean(axis=0)
        total += float(np.linalg.norm(p - data.shapes[rows], axis=-1).sum())
    return total / (len(data.shapes) * N_VERTICES)
