"""The user's ``deca_model.tar``, loaded without unpickling code, and the crop DECA expects.

DECA (https://deca.is.tue.mpg.de) is licence-gated: the user downloads ``deca_model.tar`` and points
``--deca-model`` or ``$MEDTALK_DECA_MODEL`` at it. It is read with ``torch.load(weights_only=True)``
(tensors and plain containers only) and its ``E_flame`` state dict must fit DECA's coarse encoder
exactly, so a file of another architecture is refused with one line.

The crop follows DECA's landmark crop: a square around the 68-point face (jaw contour, chin, brows —
here their MediaPipe counterparts), 1.1 × the mean of its width and height, scaled by 1.25, resampled
to 224 × 224, RGB in [0, 1].
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...assets import UserFile
from ...errors import MedtalkError
from ...io.files import display_path, sha256_cached
from ..weights import load_fitted, read_weights
from .params import INPUT_SIZE, param_slices

DECA_MODEL_ENV = "MEDTALK_DECA_MODEL"
DECA_URL = "https://deca.is.tue.mpg.de (free registration; DECA licence)"
# MediaPipe points at the extremes of the 68-point face DECA crops around: cheek contour at the ears,
# chin, and the tops of both brows
BOX_POINTS = (234, 454, 152, 105, 334, 70, 300)
BOX_GROW, BOX_SCALE = 1.1, 1.25


@dataclass
class DecaSummary:
    """What the deca backend did for one clip (status.json ``deca``)."""

    model_sha256: str = ""
    device: str = ""
    n_encoded: int = 0  # decoded frames with a face that were encoded
    seconds: float = 0.0


DECA_MODEL = UserFile("DECA's deca_model.tar", "the deca backend", "--deca-model", DECA_MODEL_ENV, DECA_URL)


def find_deca_path(explicit: str | os.PathLike[str] | None) -> Path:
    return DECA_MODEL.find(explicit)


def deca_box(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float] | None:
    """(centre x, centre y, side) in pixels of DECA's square crop, or None for a face under 8 px."""
    pts = landmarks[list(BOX_POINTS), :2] * np.array([width, height], dtype=np.float64)
    left, top = pts.min(axis=0)
    right, bottom = pts.max(axis=0)
    side = (right - left + bottom - top) / 2 * BOX_GROW * BOX_SCALE
    if not np.isfinite(side) or side < 8:
        return None
    return (left + right) / 2, (top + bottom) / 2, side


class DecaEncoder:
    """DECA's coarse encoder on one device; :meth:`encode` takes a frame and the face's landmarks."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, device: str = "cpu") -> None:
        import torch

        from .network import DecaCoarseEncoder

        if device == "cuda" and not torch.cuda.is_available():
            raise MedtalkError("face.deca.device is cuda, but torch sees no CUDA device; use --deca-device cpu")
        path = find_deca_path(model_path)
        shown = display_path(path)
        checkpoint = read_weights(path, "DECA model")
        if not isinstance(checkpoint, dict) or "E_flame" not in checkpoint:
            keys = sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise MedtalkError(f"{shown}: not DECA's deca_model.tar (no 'E_flame' encoder; it holds {keys})")
        what = "DECA's coarse encoder in 'E_flame' (ResNet-50 + 2048-1024-236 head)"
        self._torch = torch
        self.net = load_fitted(DecaCoarseEncoder(), checkpoint["E_flame"], path, what).to(device)
        self.device = device
        self.size = INPUT_SIZE
        self.summary = DecaSummary(model_sha256=sha256_cached(path), device=device)

    def encode(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """(236,) float32 DECA parameters of the face in ``rgb`` (H, W, 3 uint8), or None when it is too small."""
        torch = self._torch
        height, width = rgb.shape[:2]
        box = deca_box(landmarks, width, height)
        if box is None:
            return None
        started = time.perf_counter()
        cx, cy, side = box
        image = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        # sampling grid of the square crop, in grid_sample's [-1, 1] image coordinates (pixel centres)
        steps = (torch.arange(self.size, device=self.device, dtype=torch.float32) + 0.5) / self.size - 0.5
        xs = (cx + steps * side) / width * 2 - 1
        ys = (cy + steps * side) / height * 2 - 1
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)[None]
        with torch.no_grad():
            crop = torch.nn.functional.grid_sample(
                image, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            params = self.net(crop)[0].cpu().numpy().astype(np.float32)
        self.summary.n_encoded += 1
        self.summary.seconds += time.perf_counter() - started
        return params

    def start_clip(self) -> None:
        self.summary = DecaSummary(model_sha256=self.summary.model_sha256, device=self.device)


def deca_columns() -> dict[str, tuple[str, int]]:
    """frames.parquet column → (DECA parameter, width); texture and lighting are not kept."""
    return {"deca_shape": ("shape", 100), "deca_expression": ("exp", 50), "deca_pose": ("pose", 6),
            "deca_camera": ("cam", 3)}  # fmt: skip


def split_params(params: np.ndarray) -> dict[str, Any]:
    slices = param_slices()
    return {column: params[..., slices[name]] for column, (name, _w) in deca_columns().items()}
