"""Geometry the tests measure with, written independently of the code under test."""

from __future__ import annotations

import numpy as np


def rotation_deg(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per frame, the angle of the best rotation of ``target`` (P, 3) onto ``points`` (T, P, 3) (Kabsch)."""
    a = points - points.mean(axis=1, keepdims=True)
    b = target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(np.einsum("tpi,pj->tij", a, b))
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ (np.stack([np.ones_like(d), np.ones_like(d), d], -1)[:, :, None] * vt)
    return np.degrees(np.arccos(np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)))
