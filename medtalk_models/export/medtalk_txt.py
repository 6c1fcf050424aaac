"""MEDTalk/EmoFace rig text files: one row of 174 comma-separated controller values per 60 fps frame.

This is what the official code writes (``np.savetxt``) and what its Maya scripts read: column ``i``
is line ``i`` of ``metahuman_attr_names.txt``. The file itself carries neither names nor fps, so the
writer puts columns in names-file order by *name* and the reader takes the names file and fps as
arguments. That names file repeats two tongue controllers; repeats become ``name#2`` here, as in
``medtalk_models.rig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigfile import METAHUMAN_CHANNELS, METAHUMAN_FPS, read_rig_names, read_rig_txt

from .curves import Curves, unique_names


def write_medtalk_txt(path: Path, curves: Curves, names: Sequence[str] | None = None) -> Path:
    """Write one row per frame, 6 decimals, atomically; columns in ``names`` order (default: the curves').

    ``names`` is the names-file order (repeats allowed, matched as ``name#2``); every one of them must
    be in the curves, since a missing MetaHuman controller would silently become 0 on the rig.
    """
    path = Path(path)
    if names is not None:
        order = unique_names(list(names))
        absent = [n for n in order if n not in set(curves.names)]
        if absent:
            raise MedtalkError(
                f"{display_path(path)}: the curves lack {len(absent)} of the {len(order)} rig channels "
                f"(e.g. {absent[:3]}); pass the names file that matches this rig"
            )
        curves = curves.select(order)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        np.savetxt(fh, curves.values.astype(np.float64), fmt="%.6f", delimiter=",")
    return path


def read_medtalk_txt(
    path: Path,
    names_path: Path | None = None,
    fps: float = METAHUMAN_FPS,
    n_channels: int = METAHUMAN_CHANNELS,
) -> Curves:
    """Curves from a rig txt; names from ``names_path`` (``ctrl_000``… without one), fps given (default 60)."""
    if names_path is not None and not Path(names_path).is_file():
        # read_rig_names would fall back to placeholder names; a wrong path must not do that silently.
        raise MedtalkError(f"{display_path(names_path)}: names file not found; pass the rig's names file or none")
    values = read_rig_txt(Path(path), n_channels)
    names = unique_names(read_rig_names(Path(names_path) if names_path is not None else None, n_channels))
    return Curves(values, names, fps)
