"""Settings of the fan backend (``face.fan`` in the extract config)."""

from __future__ import annotations

from dataclasses import dataclass

LANDMARK_TYPES = ("2D", "3D")


@dataclass
class FanSettings:
    landmarks: str = "2D"  # 2D: 2DFAN4; 3D: 3DFAN4 (x, y of the 3-D points) + the depth network for z
    # 2DFAN4-11f355bf06.pth.tar / 3DFAN4-7835d9f11d.pth.tar; None: $MEDTALK_FAN_MODEL, else face-alignment's own
    # download in the torch hub cache
    model_path: str | None = None
    depth_model_path: str | None = None  # 3D only: depth-2a464da4ea.pth.tar; None: $MEDTALK_FAN_DEPTH_MODEL, else cache
    device: str = "cpu"

    def problems(self) -> list[str]:
        out = []
        if self.landmarks not in LANDMARK_TYPES:
            out.append(f"face.fan.landmarks: {self.landmarks!r}, choose from {list(LANDMARK_TYPES)}")
        if self.device not in ("cpu", "cuda"):
            out.append(f"face.fan.device: {self.device!r}, choose cpu or cuda")
        return out
