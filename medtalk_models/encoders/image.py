"""Frozen reference-image encoders: our own MediaPipe blendshape fitter (offline, bundled) or a local CLIP.

``encode`` takes an image file (PNG/JPEG, read with PyAV) or an ``H×W×3`` uint8 RGB array and returns one
float32 vector describing the face's expression.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data import assets
from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path

from ._common import (
    FEATURES_VERSION,
    Closeable,
    brief,
    check_keys,
    clip_tower_config,
    hf_fingerprint,
    hf_model_dir,
    l2_normalise,
    quiet_transformers,
    require,
    safe_key,
    torch_device,
)

IMAGE_KINDS = ("blendshapes", "clip")
ONE_FACE_FIX = "use a frontal photo with one visible face"
_MAX_FACES = 8  # detect up to this many, so the error can say how many faces there are


class ImageEncoder(Closeable):
    """Base class: ``encode(image) -> (dim,)`` float32."""

    kind: str = ""
    dim: int = 0

    def cache_key(self) -> str:
        """Stable, filesystem-safe name; changes whenever the features for the same image would change."""
        raise NotImplementedError

    def encode(self, image: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cache_key()} dim {self.dim}>"


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the first picture of an image file as ``H×W×3`` uint8 RGB (PyAV: PNG, JPEG, WebP, BMP…)."""
    import av

    file = Path(path)
    if not file.is_file():
        raise MedtalkError(f"{display_path(file)}: image file does not exist")
    try:
        with av.open(str(file)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as err:
        raise MedtalkError(
            f"{display_path(file)}: cannot read it as an image ({brief(err)}); use a PNG or JPEG"
        ) from err


def load_rgb(image: str | os.PathLike[str] | np.ndarray) -> tuple[np.ndarray, str]:
    """(``H×W×3`` uint8 RGB array, name for messages) from a file path or an array."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise MedtalkError(
                f"<array>: image arrays must be H×W×3 uint8 RGB, got shape {image.shape} {image.dtype}; "
                "convert it (e.g. drop alpha, scale floats to 0..255)"
            )
        if min(image.shape[:2]) < 2:
            raise MedtalkError(f"<array>: image of {image.shape[1]}×{image.shape[0]} pixels is too small")
        return np.ascontiguousarray(image), "<array>"
    if isinstance(image, (str, os.PathLike)):
        return read_image(image), display_path(image)
    raise MedtalkError(f"images are a file path or an H×W×3 uint8 array, got {type(image).__name__}")


class BlendshapeImageEncoder(ImageEncoder):
    """The 52 MediaPipe blendshape scores of the one face in the image (FaceLandmarker, IMAGE mode).

    Same model and order (:data:`medtalk_data.rigs.MEDIAPIPE_BLENDSHAPES`) as the data pipeline's face
    fitter, so a reference photo and the training clips live in one expression space.
    """

    kind = "blendshapes"

    def __init__(self, model_path: str | os.PathLike[str] | None = None, min_detection_confidence: float = 0.5) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        require("mediapipe", "the blendshapes image encoder")
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        from medtalk_data.io.native import native_stderr_silenced
        from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

        self._mp = mp
        self._names = MEDIAPIPE_BLENDSHAPES
        self.dim = len(MEDIAPIPE_BLENDSHAPES)
        self.model_path = assets.resolve("face_landmarker", model_path)  # sha256-pinned, offline
        self.min_detection_confidence = float(min_detection_confidence)
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=_MAX_FACES,
            min_face_detection_confidence=self.min_detection_confidence,
            min_face_presence_confidence=0.5,
            output_face_blendshapes=True,
        )
        with native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._silence = native_stderr_silenced
        self._first = True
        try:
            self._mp_version = version("mediapipe")
        except PackageNotFoundError:
            self._mp_version = getattr(mp, "__version__", "unknown")

    def cache_key(self) -> str:
        return safe_key(
            "blendshapes",
            assets.FACE_LANDMARKER.sha256[:12],
            f"mp{self._mp_version}",
            f"d{self.min_detection_confidence:g}",
            FEATURES_VERSION,
        )

    def encode(self, image: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
        if self._landmarker is None:
            raise MedtalkError("this blendshapes image encoder was closed; build a new one")
        rgb, name = load_rgb(image)
        picture = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if self._first:  # the first inference logs from native threads
            self._first = False
            with self._silence():
                result = self._landmarker.detect(picture)
        else:
            result = self._landmarker.detect(picture)
        faces = len(result.face_blendshapes)
        if faces == 0:
            raise MedtalkError(f"{name}: no face found; {ONE_FACE_FIX}")
        if faces > 1:
            count = f"{faces} or more" if faces >= _MAX_FACES else str(faces)
            raise MedtalkError(f"{name}: {count} faces found; crop the image to one face ({ONE_FACE_FIX})")
        categories = result.face_blendshapes[0]
        names = tuple(c.category_name for c in categories)
        if names != self._names:
            raise MedtalkError(
                f"{display_path(self.model_path)}: FaceLandmarker gave {len(names)} blendshapes that differ from the "
                "expected 52 MediaPipe names; use the official face_landmarker.task"
            )
        return np.array([c.score for c in categories], dtype=np.float32)

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


class CLIPImageEncoder(ImageEncoder):
    """CLIP's vision tower from a local folder: ``get_image_features`` (projected), L2-normalised."""

    kind = "clip"

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu") -> None:
        torch = require("torch", "the clip image encoder")
        transformers = require("transformers", "the clip image encoder")
        from transformers import CLIPVisionModelWithProjection

        self.path = hf_model_dir(path, "clip image encoder")
        if not (self.path / "preprocessor_config.json").is_file():
            raise MedtalkError(
                f"{display_path(self.path)}: no preprocessor_config.json (CLIP image processor settings) in the folder"
            )
        self.device = torch_device(device)
        self._torch = torch
        # the PIL backend when transformers has it: torchvision is optional and resizes slightly differently
        processor_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        tower = clip_tower_config(self.path, "vision")
        try:
            with quiet_transformers():
                self._processor = processor_cls.from_pretrained(self.path, local_files_only=True)
                model = CLIPVisionModelWithProjection.from_pretrained(self.path, config=tower, local_files_only=True)
        except Exception as err:  # third-party folders fail in many ways; report one line
            raise MedtalkError(
                f"{display_path(self.path)}: transformers cannot load a CLIP vision model "
                f"and image processor ({brief(err)})"
            ) from err
        self._model = model.eval().to(self.device)
        self.dim = int(self._model.config.projection_dim)
        self._fingerprint = hf_fingerprint(self.path)
        self._processor_name = processor_cls.__name__

    def cache_key(self) -> str:
        return safe_key("clip", self._fingerprint, self._processor_name, FEATURES_VERSION)

    def encode(self, image: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
        rgb, _ = load_rgb(image)
        pixels = self._processor(images=rgb, return_tensors="pt")["pixel_values"].to(self.device)
        with self._torch.inference_mode():
            embeds = self._model(pixel_values=pixels, return_dict=True).image_embeds[0]
        return l2_normalise(embeds.float().cpu().numpy())


def build_image_encoder(cfg: Mapping[str, Any]) -> ImageEncoder:
    """An image encoder from a config mapping: ``kind`` one of :data:`IMAGE_KINDS`, plus its settings."""
    cfg = dict(cfg or {})
    kind = cfg.get("kind")
    if kind == "blendshapes":
        check_keys(cfg, "image", ("model", "path", "min_detection_confidence", "device"))
        if cfg.get("model") and cfg.get("path"):
            raise MedtalkError("image encoder (blendshapes): give the model file as 'model' or 'path', not both")
        return BlendshapeImageEncoder(cfg.get("model") or cfg.get("path"), cfg.get("min_detection_confidence") or 0.5)
    if kind == "clip":
        check_keys(cfg, "image", ("path", "device"))
        if not cfg.get("path"):
            raise MedtalkError("image encoder (clip): set 'path' to a local CLIP model folder (nothing is downloaded)")
        return CLIPImageEncoder(cfg["path"], cfg.get("device") or "cpu")
    raise MedtalkError(f"image encoder kind {kind!r} is unknown; valid kinds: {', '.join(IMAGE_KINDS)}")


__all__ = [
    "IMAGE_KINDS",
    "BlendshapeImageEncoder",
    "CLIPImageEncoder",
    "ImageEncoder",
    "build_image_encoder",
    "load_rgb",
    "read_image",
]
