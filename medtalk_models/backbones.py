"""The frozen backbones a config asks for, built once and shared by data loading and animate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from medtalk_data.errors import MedtalkError
from medtalk_data.frames_io import fixed_size_numpy


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

    def image_features_of_frame(self, clip: Any, frame: int, fps: float) -> np.ndarray:
        """Image features of one frame of a clip's source video.

        The blendshape encoder runs our own face fitter; for the training frames it was already run
        by `medtalk-data extract`, so its stored scores are read instead of fitting again."""
        if self.image.kind == "blendshapes":
            return stored_blendshapes(clip, frame, fps)
        return self.image.encode(_decode_frame(clip, frame / fps))


def stored_blendshapes(clip: Any, frame: int, fps: float) -> np.ndarray:
    """The blendshape scores `medtalk-data extract` stored for a clip's rig frame ``frame`` (at ``fps``)."""
    frames_path = clip.folder / "frames.parquet"
    if not frames_path.is_file():
        raise MedtalkError(
            f"{frames_path}: extracted frames of clip {clip.clip_id} are missing (needed for its reference "
            f"image); re-run `medtalk-data extract`"
        )
    table = pq.read_table(frames_path, columns=["blendshapes"])
    source_fps = float(json.loads(table.schema.metadata[b"medtalk"])["fps"])
    scores = fixed_size_numpy(table["blendshapes"])
    k = int(np.clip(round(frame / fps * source_fps), 0, len(scores) - 1))
    return np.nan_to_num(scores[k].astype(np.float32))


def _decode_frame(clip: Any, time_s: float) -> np.ndarray:
    import av

    status = json.loads((clip.folder / "status.json").read_text(encoding="utf-8"))
    source = status["source"]["path"]
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        best = None
        for frame in container.decode(stream):
            best = frame
            if frame.time is not None and frame.time >= time_s:
                break
        if best is None:
            raise MedtalkError(f"{source}: no video frame to take a reference image from")
        return best.to_ndarray(format="rgb24")


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
