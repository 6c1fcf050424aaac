"""The frozen backbones a config asks for, built once and shared by data loading and animate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError


def _audio_cfg(section: dict[str, Any], device: str) -> dict[str, Any]:
    cfg = {"kind": section["kind"], "device": device}
    if section["kind"] == "whisper":
        cfg["model"] = section["model"]
    elif section["kind"] == "hf":
        cfg.update(path=section["path"], layer=section["layer"])
    else:
        cfg["n_mels"] = section["n_mels"]
    return cfg


@dataclass
class Backbones:
    audio: dict[str, Any]
    text: Any
    image: Any

    def close(self) -> None:
        """Release native resources (the face landmarker) before interpreter shutdown."""
        for encoder in (*self.audio.values(), self.text, self.image):
            if encoder is not None and hasattr(encoder, "close"):
                encoder.close()

    def reference_features(self, manifest: Any, row: Any) -> np.ndarray:
        """Image features of a clip's reference frame, from what the manifest holds.

        The blendshape encoder runs our own face fitter; `medtalk-data extract` already ran it on every
        frame, so the stored scores of the reference frame are read instead of fitting again. Other
        encoders read the reference JPEG that `build-manifest` stored."""
        if self.image.kind == "blendshapes":
            return manifest.reference_blendshapes(row)
        path = manifest.reference_image(row)
        if path is None:
            raise MedtalkError(
                f"{row.clip_id}: the manifest holds no reference image (rebuild it with the source videos "
                "present and --reference-images)"
            )
        return self.image.encode(path)


def build_backbones(cfg: dict[str, Any], device: str = "cpu", needs: set[str] | None = None) -> Backbones:
    """Build only what the stages in ``needs`` read (a text or image encoder costs seconds to load)."""
    from .encoders import build_audio_extractor, build_image_encoder, build_text_encoder

    needs = needs or {"audio", "text", "image"}
    audio: dict[str, Any] = {}
    if "audio" in needs:
        audio["content"] = build_audio_extractor(_audio_cfg(cfg["audio"]["content"], device))
        if cfg["audio"]["emotion"] == cfg["audio"]["content"]:
            audio["emotion"] = audio["content"]
        else:
            audio["emotion"] = build_audio_extractor(_audio_cfg(cfg["audio"]["emotion"], device))
    text = None
    if "text" in needs or "descriptions" in needs:
        text = build_text_encoder({"kind": cfg["text"]["kind"], "path": cfg["text"]["path"], "device": device})
    image = None
    if "image" in needs:
        image = build_image_encoder({"kind": cfg["image"]["kind"], "path": cfg["image"]["path"], "device": device})
    return Backbones(audio, text, image)
