"""Settings of the deca backend (``face.deca`` in the extract config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DecaSettings:
    model_path: str | None = None  # deca_model.tar; None: $MEDTALK_DECA_MODEL
    device: str = "cpu"  # cpu or cuda
