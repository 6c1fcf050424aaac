"""The head-stabilised face: landmarks of a frame mapped onto MediaPipe's canonical head frame.

A weighted similarity fit (Umeyama) on the canonical model's rigid points removes head rotation,
translation and distance from the camera, so what remains is the face's own deformation in the
canonical model's units (cm, +y up, +z towards the viewer). The blendshape basis fit and the
Audio2Face-3D export both start from these shapes.
"""

from __future__ import annotations

import numpy as np

from .canonical_mesh import N_VERTICES, CanonicalMesh


def similarity_transform(
    points: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Umeyama: for each of N point sets (N, P, 3) the scale (N,), rotation (N, 3, 3) and
    shift (N, 3) of its best ``s·R·x + t`` onto ``target`` (P, 3), float64."""
    w = (weights / weights.sum()).astype(np.float64)[None, :, None]
    x = points.astype(np.float64)
    mu_x = (w * x).sum(axis=1, keepdims=True)
    mu_y = (w[0] * target).sum(axis=0)
    xc = x - mu_x
    yc = target - mu_y
    cov = np.einsum("npi,npj->nij", w * yc[None], xc)  # Σ w y xᵀ
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((len(x), 3))
    d[:, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ (d[:, :, None] * vt)
    var_x = (w * xc**2).sum(axis=(1, 2))
    scale = (sig * d).sum(axis=1) / var_x
    shift = mu_y - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_x[:, 0])
    return scale, rot, shift


def similarity_align(points: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each of the (N, P, 3) point sets mapped by its best s·R·x + t onto ``target`` (P, 3)."""
    scale, rot, shift = similarity_transform(points, target, weights)
    aligned = scale[:, None, None] * np.einsum("nij,npj->npi", rot, points.astype(np.float64)) + shift[:, None]
    return aligned.astype(np.float32)


def landmarks_to_metric(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised image landmarks → pixel-scaled xyz with +y up and +z towards the camera (a rotation)."""
    size = np.array([width, -height, -width], dtype=np.float32)  # z is on x's scale; flips y and z together
    return landmarks[..., :N_VERTICES, :] * size


def canonical_shapes(
    landmarks: np.ndarray, mesh: CanonicalMesh, width: int = 1, height: int = 1, weights: str = "procrustes"
) -> np.ndarray:
    """(T, ≥468, 3) normalised landmarks → (T, 468, 3) in the canonical head frame, cm.

    ``weights``: "procrustes" (MediaPipe's 33 rigid points, the default) or "all" (uniform).
    """
    if weights == "procrustes":
        w = np.zeros(N_VERTICES, dtype=np.float64)
        w[mesh.procrustes_ids] = mesh.procrustes_weights
    elif weights == "all":
        w = np.ones(N_VERTICES, dtype=np.float64)
    else:
        raise ValueError(f"unknown alignment weights {weights!r}")
    return similarity_align(landmarks_to_metric(landmarks, width, height), mesh.vertices, w)
