"""Head pose from the facial transformation matrix, and rotation interpolation.

The 4×4 matrix maps MediaPipe's canonical face model (centimetres) into camera space. Angles are
intrinsic X (pitch), Y (yaw), Z (roll) in degrees, i.e. R = Rz · Ry · Rx.
"""

from __future__ import annotations

import numpy as np


def euler_xyz_deg(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation → (..., 3) pitch, yaw, roll in degrees (R = Rz·Ry·Rx)."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.degrees(np.stack([pitch, yaw, roll], axis=-1))


def orthonormalise(m: np.ndarray) -> np.ndarray:
    """Nearest rotation to a 3×3 matrix (removes the scale MediaPipe's fit may carry)."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def head_pose(transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4×4 transform → (rotation pitch/yaw/roll in degrees, translation in cm)."""
    rot = orthonormalise(np.asarray(transform[:3, :3], dtype=np.float64))
    return euler_xyz_deg(rot).astype(np.float32), np.asarray(transform[:3, 3], dtype=np.float32)


def _quat_from_matrix(r: np.ndarray) -> np.ndarray:
    w = np.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2
    x = np.copysign(x, r[2, 1] - r[1, 2])
    y = np.copysign(y, r[0, 2] - r[2, 0])
    z = np.copysign(z, r[1, 0] - r[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of a rotation matrix: the axis scaled by the angle in radians."""
    q = _quat_from_matrix(r)
    if q[0] < 0:
        q = -q
    sin_half = float(np.linalg.norm(q[1:]))
    if sin_half < 1e-12:
        return np.zeros(3)
    return q[1:] / sin_half * (2.0 * np.arctan2(sin_half, q[0]))


def _matrix_from_quat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def slerp_rotation(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Spherical interpolation between two 3×3 rotations (w=0 → a, w=1 → b)."""
    qa, qb = _quat_from_matrix(orthonormalise(a)), _quat_from_matrix(orthonormalise(b))
    dot = float(np.dot(qa, qb))
    if dot < 0:
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + w * (qb - qa)
    else:
        theta = np.arccos(dot)
        q = (np.sin((1 - w) * theta) * qa + np.sin(w * theta) * qb) / np.sin(theta)
    return _matrix_from_quat(q / np.linalg.norm(q))


def interpolate_transform(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Blend two 4×4 rigid transforms: slerp for rotation (scale kept linear), lerp for translation."""
    out = np.eye(4, dtype=np.float64)
    sa = np.linalg.norm(a[:3, :3], axis=0).mean()
    sb = np.linalg.norm(b[:3, :3], axis=0).mean()
    out[:3, :3] = slerp_rotation(a[:3, :3], b[:3, :3], w) * ((1 - w) * sa + w * sb)
    out[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
    return out.astype(np.float32)
