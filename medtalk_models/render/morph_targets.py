"""What the mesh exports (glTF, USD) carry: the face mesh, one displacement per ARKit name, the weights.

One place so that both files hold the same shapes: the fitted basis' deltas in ARKit order
(``tongueOut``, which the basis cannot fit, moves nothing), the curves read by ARKit name (absent
channels stay 0) and an optional head rotation as quaternions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.canonical_mesh import CanonicalMesh, load_canonical_mesh
from medtalk_data.rigs import ARKIT52

from ..export.curves import Curves
from .basis import BlendshapeBasis, default_basis


@dataclass(frozen=True)
class ArkitTargets:
    """The canonical face and its 52 ARKit displacements, in centimetres (+y up, +z towards the viewer)."""

    neutral: np.ndarray  # (V, 3) float32
    deltas: np.ndarray  # (52, V, 3) float32, ARKIT52 order
    triangles: np.ndarray  # (F, 3) int32, counter-clockwise seen from the front
    uv: np.ndarray  # (V, 2) float32
    names: tuple[str, ...] = tuple(ARKIT52)


def arkit_targets(basis: BlendshapeBasis | None = None, mesh: CanonicalMesh | None = None) -> ArkitTargets:
    basis = basis or default_basis()
    mesh = mesh or load_canonical_mesh()
    deltas = np.zeros((len(ARKIT52), *basis.neutral.shape), np.float32)
    for k, name in enumerate(ARKIT52):
        if name in basis.names:
            deltas[k] = basis.deltas[basis.names.index(name)]
    return ArkitTargets(basis.neutral.astype(np.float32), deltas, mesh.triangles, mesh.uv)


def arkit_weights(curves: Curves, file_kind: str) -> np.ndarray:
    """(T, 52) float32 weights by ARKit name; refused for an animation without frames."""
    weights = curves.select(ARKIT52).values.astype(np.float32)
    if weights.shape[0] < 1:
        raise MedtalkError(f"an animation without frames cannot be written as {file_kind}")
    return weights


def head_quaternions(pitch_yaw_roll_deg: np.ndarray, n_frames: int) -> np.ndarray:
    """(T, 3) pitch (x), yaw (y), roll (z) in degrees → (T, 4) quaternions (x, y, z, w), applied yaw·pitch·roll."""
    from scipy.spatial.transform import Rotation

    rotation = np.asarray(pitch_yaw_roll_deg, np.float64)
    if rotation.shape != (n_frames, 3):
        raise MedtalkError(f"head rotation must be ({n_frames}, 3) degrees, got {rotation.shape}")
    pitch, yaw, roll = np.radians(rotation).T
    return Rotation.from_euler("YXZ", np.stack([yaw, pitch, roll], axis=1)).as_quat().astype(np.float32)
