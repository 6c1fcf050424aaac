"""Ground-truth rig files of datasets (MEDTalk/EmoFace: one row of 174 comma-separated controller
values per 60 fps frame) and their channel-name files (one name per line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MedtalkError
from .io.files import display_path

METAHUMAN174 = "metahuman174"
METAHUMAN_FPS = 60.0
METAHUMAN_CHANNELS = 174


def read_rig_txt(path: Path, n_channels: int = METAHUMAN_CHANNELS) -> np.ndarray:
    """(T, n_channels) float32; a clear error for a wrong width, NaN or an unreadable file."""
    try:
        data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as err:
        raise MedtalkError(f"{display_path(path)}: cannot read rig file ({err})") from err
    if data.shape[1] != n_channels:
        raise MedtalkError(f"{display_path(path)}: {data.shape[1]} values per row, expected {n_channels}")
    if not np.isfinite(data).all():
        raise MedtalkError(f"{display_path(path)}: NaN or inf in rig values")
    return data


def read_rig_names(path: Path | None, n_channels: int = METAHUMAN_CHANNELS) -> list[str]:
    """Channel names from a names file, or ``ctrl_000``… when there is none."""
    if path is None or not Path(path).is_file():
        return [f"ctrl_{i:03d}" for i in range(n_channels)]
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != n_channels:
        raise MedtalkError(f"{display_path(path)}: {len(names)} names, expected {n_channels}")
    return names
