"""face-alignment's FAN on the face MediaPipe tracks: 68 iBUG points per decoded frame.

The network and its pre/post-processing are face-alignment's own (``pip install 'medtalk[fan]'``:
``face_alignment.models.FAN``/``ResNetDepth``, ``utils.crop``, ``get_preds_fromhm``,
``draw_gaussian``); only its face detector is replaced: the box is the extent of the MediaPipe
points nearest the 68 iBUG points (:mod:`..ibug68`), turned into FAN's crop centre and scale by
face-alignment's own rule for a detector box (centre raised by ``CENTER_Y_OFFSET`` of the height,
scale = (width + height) / ``REFERENCE_SCALE``).

The weights are the user's: face-alignment downloads them into the torch hub cache the first time
it runs online (``2DFAN4-11f355bf06.pth.tar``, ``3DFAN4-7835d9f11d.pth.tar``,
``depth-2a464da4ea.pth.tar``), and that is where they are looked for unless ``--fan-model`` /
``$MEDTALK_FAN_MODEL`` (and ``--fan-depth-model`` / ``$MEDTALK_FAN_DEPTH_MODEL``) say otherwise.
They are read with ``torch.load(weights_only=True)`` and must fit the architecture exactly; a file
under its download name must also match the sha256 prefix that name carries.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...assets import UserFile
from ...errors import MedtalkError
from ...io.files import display_path, sha256_cached
from ..ibug68 import MEDIAPIPE_FOR_IBUG68, N_IBUG
from ..weights import load_fitted, read_weights
from .settings import FanSettings

FAN_MODEL_ENV = "MEDTALK_FAN_MODEL"
FAN_DEPTH_ENV = "MEDTALK_FAN_DEPTH_MODEL"
FAN_SOURCE = (
    "https://github.com/1adrianb/face-alignment (run face-alignment once online and it saves them in the torch hub "
    "cache; code BSD-3-Clause, see its README for the weights' terms)"
)
# face_alignment.api.models_urls' file names (a test checks them against the installed package)
DOWNLOAD_NAMES = {
    "2D": "2DFAN4-11f355bf06.pth.tar",
    "3D": "3DFAN4-7835d9f11d.pth.tar",
    "depth": "depth-2a464da4ea.pth.tar",
}
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torch hub's convention: the name carries a sha256 prefix
MIN_FACE_PX = 16.0  # a box smaller than this is not worth FAN's 256 x 256 crop

FAN_MODEL = UserFile("face-alignment's FAN weights (2DFAN4/3DFAN4 .pth.tar)", "the fan backend", "--fan-model",
                     FAN_MODEL_ENV, FAN_SOURCE)  # fmt: skip
FAN_DEPTH = UserFile("face-alignment's depth network (depth-2a464da4ea.pth.tar)", "the fan backend's 3D landmarks",
                     "--fan-depth-model", FAN_DEPTH_ENV, FAN_SOURCE)  # fmt: skip


@dataclass
class FanSummary:
    """What the fan backend did for one clip (status.json ``fan``)."""

    landmarks: str = "2D"
    model_sha256: str = ""
    device: str = ""
    n_located: int = 0  # decoded frames with a face that FAN located
    score_mean: float = 0.0  # mean heatmap peak over those frames' points (FAN's own confidence)
    seconds: float = 0.0


def hub_checkpoint(name: str) -> Path:
    """Where face-alignment's own download put ``name`` (torch hub's checkpoints folder)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / name


def find_fan_path(explicit: str | os.PathLike[str] | None, kind: str) -> Path:
    """The option's or variable's file, else face-alignment's cached download; one line otherwise.

    ``kind``: "2D" or "3D" (the landmark network) or "depth"."""
    spec = FAN_DEPTH if kind == "depth" else FAN_MODEL
    if explicit or os.environ.get(spec.env_var):
        return spec.find(explicit)
    cached = hub_checkpoint(DOWNLOAD_NAMES[kind])
    if cached.is_file():
        return cached
    try:
        return spec.find(None)
    except MedtalkError as err:
        raise type(err)(f"{err} (looked for {display_path(cached)} too)") from None


def _load_state(path: Path, what: str) -> dict[str, Any]:

    shown = display_path(path)
    match = _HASH_IN_NAME.search(path.name)
    if path.name in DOWNLOAD_NAMES.values() and match and not sha256_cached(path).startswith(match.group(1)):
        raise MedtalkError(f"{shown}: damaged download (its sha256 does not start with {match.group(1)}); delete it "
                           "and let face-alignment fetch it again, or pass the file with --fan-model")  # fmt: skip
    state = read_weights(path, f"{what} weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise MedtalkError(f"{shown}: not {what} weights (holds a {type(state).__name__}, not a state dict)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _face_alignment() -> tuple[Any, Any]:
    try:
        from face_alignment import models, utils
    except ImportError as err:
        raise MedtalkError("the fan backend needs face-alignment: pip install 'medtalk[fan]'") from err
    return models, utils


def fan_box(landmarks: np.ndarray, width: int, height: int, utils: Any) -> tuple[np.ndarray, float] | None:
    """FAN's crop (centre in pixels, scale) for the face whose MediaPipe landmarks are given, or None
    for a face under MIN_FACE_PX."""
    pts = landmarks[list(MEDIAPIPE_FOR_IBUG68), :2].astype(np.float64) * np.array([width, height])
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    if not np.isfinite([x0, y0, x1, y1]).all() or min(x1 - x0, y1 - y0) < MIN_FACE_PX:
        return None
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 - (y1 - y0) * utils.CENTER_Y_OFFSET])
    return centre, float((x1 - x0 + y1 - y0) / utils.REFERENCE_SCALE)


class FanLandmarker:
    """FAN on one device; :meth:`locate` takes a frame and the followed face's MediaPipe landmarks."""

    def __init__(self, settings: FanSettings) -> None:
        import torch

        if settings.device == "cuda" and not torch.cuda.is_available():
            raise MedtalkError("face.fan.device is cuda, but torch sees no CUDA device; use --fan-device cpu")
        models, utils = _face_alignment()
        path = find_fan_path(settings.model_path, settings.landmarks)
        what = f"FAN ({settings.landmarks}FAN4)"
        self.net = load_fitted(models.FAN(4), _load_state(path, what), path, f"{what} weights").to(settings.device)
        self.depth = None
        if settings.landmarks == "3D":
            depth_path = find_fan_path(settings.depth_model_path, "depth")
            state = _load_state(depth_path, "FAN's depth network")
            depth = load_fitted(models.ResNetDepth(), state, depth_path, "FAN's depth network weights")
            self.depth = depth.to(settings.device)
        self._torch, self._utils = torch, utils
        self.settings = settings
        self.summary = FanSummary(settings.landmarks, sha256_cached(path), settings.device)
        self._score_sum = 0.0

    def locate(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """(68, 4) float32 per iBUG point: x / width, y / height, z / width (NaN for 2D) and FAN's heatmap
        peak; None when the face is too small."""
        torch, utils = self._torch, self._utils
        height, width = rgb.shape[:2]
        box = fan_box(landmarks, width, height, utils)
        if box is None:
            return None
        started = time.perf_counter()
        centre, scale = box
        crop = utils.crop(rgb, centre, scale).astype(np.float32) / 255.0
        # channels-last, the layout face-alignment's own stacking of HWC crops hands to torch, copied so that the
        # batch dimension's stride is a whole image's: a view of the crop gives it stride 3 (or 0), and with that
        # the network ran 1.25x slower on CPU (benchmarks/bench_flame.py, section 5)
        inp = torch.from_numpy(crop).permute(2, 0, 1)[None].clone(memory_format=torch.channels_last)
        inp = inp.to(self.settings.device)
        with torch.no_grad():
            out = self.net(inp)
            heatmaps = (out[-1] if isinstance(out, list | tuple) else out).float().cpu().numpy()
            pts, pts_img, scores = utils.get_preds_fromhm(heatmaps, centre, scale)
            result = np.full((N_IBUG, 4), np.nan, dtype=np.float32)
            result[:, 0] = pts_img[0, :, 0] / width
            result[:, 1] = pts_img[0, :, 1] / height
            result[:, 3] = scores[0]
            if self.depth is not None:
                result[:, 2] = self._depth(inp, pts[0] * 4, scale) / width
        self.summary.n_located += 1
        self._score_sum += float(scores.mean())
        self.summary.score_mean = self._score_sum / self.summary.n_located
        self.summary.seconds += time.perf_counter() - started
        return result

    def _depth(self, inp: Any, crop_pts: np.ndarray, scale: float) -> np.ndarray:
        """Per-point depth in pixels, as face-alignment computes it: the depth network on the crop and a
        Gaussian drawn at each point."""
        torch, utils = self._torch, self._utils
        size = utils.CROP_RESOLUTION
        maps = np.zeros((N_IBUG, size, size), dtype=np.float32)
        for j in range(N_IBUG):
            if crop_pts[j, 0] > 0 and crop_pts[j, 1] > 0:
                maps[j] = utils.draw_gaussian(maps[j], crop_pts[j], 2)
        depth_in = torch.cat([inp, torch.from_numpy(maps)[None].to(inp.device)], dim=1)
        depth = self.depth(depth_in).float().cpu().numpy().reshape(N_IBUG)  # type: ignore[misc]
        return depth * (utils.SCALE_FACTOR * scale / size)

    def start_clip(self) -> None:
        self.summary = FanSummary(self.settings.landmarks, self.summary.model_sha256, self.settings.device)
        self._score_sum = 0.0


def fan_columns() -> dict[str, int]:
    """frames.parquet column → width: the points (x, y, z flattened) and FAN's score per point."""
    return {"fan_landmarks": N_IBUG * 3, "fan_scores": N_IBUG}
