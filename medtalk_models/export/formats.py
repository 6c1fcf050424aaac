"""The export formats by name, which rigs each one fits, and writing several at once.

``write_all`` checks everything (format names, rig fit, existing files) before it writes anything,
so a refused export leaves no partial set of files behind; each file is written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import display_path

from .arkit_csv import TIME_COLUMN, read_arkit_csv, write_arkit_csv
from .curves import Curves, rig_kind
from .flame_npz import read_flame_npz, write_flame_npz
from .livelink_csv import read_livelink_csv, write_livelink_csv
from .medtalk_txt import read_medtalk_txt, write_medtalk_txt
from .npz import read_npz, write_npz


@dataclass(frozen=True)
class Format:
    """One export format: file suffix, writer, reader and the rig kinds (see ``rig_kind``) it holds."""

    name: str
    suffix: str
    write: Callable[..., Path]
    read: Callable[..., Curves]
    rigs: tuple[str, ...]
    description: str


FORMATS: dict[str, Format] = {
    "csv": Format("csv", ".arkit.csv", write_arkit_csv, read_arkit_csv, ("arkit",),
                  "time_s + one column per ARKit name (Apple order), 6 decimals"),
    "livelink": Format("livelink", ".livelink.csv", write_livelink_csv, read_livelink_csv, ("arkit",),
                       "Epic's Live Link Face app CSV (Timecode, BlendShapeCount, 61 columns)"),
    "npz": Format("npz", ".npz", write_npz, read_npz, ("arkit", "metahuman174", "flame", "custom"),
                  "curves + names + fps, lossless, any rig"),
    "flame": Format("flame", ".flame.npz", write_flame_npz, read_flame_npz, ("flame",),
                    "FLAME parameters with the keys EMOTE/DiffPoseTalk read: exp, jaw_pose, global_pose, shape, fps"),
    "txt": Format("txt", ".txt", write_medtalk_txt, read_medtalk_txt, ("metahuman174",),
                  "MEDTalk/EmoFace rig file: 174 comma-separated values per 60 fps frame"),
}  # fmt: skip


def formats_for(curves: Curves | Sequence[str]) -> list[str]:
    """The format names that can hold these curves (or curves with these channel names)."""
    kind = rig_kind(curves.names if isinstance(curves, Curves) else curves)
    return [name for name, fmt in FORMATS.items() if kind in fmt.rigs]


def _check_fits(fmt: Format, names: Sequence[str]) -> None:
    kind = rig_kind(names)
    if kind in fmt.rigs:
        return
    what = {"arkit": "ARKit blendshape", "metahuman174": "174-channel MetaHuman", "custom": "custom"}[kind]
    needs = " or ".join({"arkit": "ARKit-named", "metahuman174": "174-channel MetaHuman"}[r] for r in fmt.rigs)
    raise MedtalkError(
        f"format {fmt.name!r} needs {needs} curves, these are {len(names)} {what} channels; "
        f"valid formats for this rig: {', '.join(formats_for(names))}"
    )


def plan_files(
    out_dir: Path, stem: str, names: Sequence[str], formats: Sequence[str], overwrite: bool = False
) -> list[tuple[Format, Path]]:
    """The (format, file) pairs ``write_all`` would write, checked from the channel names alone.

    Refuses an unknown format, a format that does not fit the rig, or an existing file unless
    ``overwrite`` — so a caller can check a request before computing the curves.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise MedtalkError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    chosen = [FORMATS[f] for f in dict.fromkeys(formats)]
    for fmt in chosen:
        _check_fits(fmt, names)
    targets = [Path(out_dir) / f"{stem}{fmt.suffix}" for fmt in chosen]
    if not overwrite:
        existing = [p for p in targets if p.exists()]
        if existing:
            raise MedtalkError(
                f"{display_path(existing[0])} already exists; pass --overwrite to replace it"
                + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            )
    return list(zip(chosen, targets, strict=True))


def write_all(
    out_dir: Path,
    stem: str,
    curves: Curves,
    formats: Sequence[str],
    overwrite: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[Path]:
    """Write ``<out_dir>/<stem><suffix>`` for every format; returns the paths in ``formats`` order.

    Refuses (before writing anything, see :func:`plan_files`) an unknown format, a format that does
    not fit the rig, or an existing file unless ``overwrite``. ``options`` passes keyword arguments
    per format, e.g. ``{"livelink": {"head_rotation": rot}, "txt": {"names": names}}``.
    """
    planned = plan_files(out_dir, stem, curves.names, formats, overwrite)
    options = options or {}
    return [fmt.write(path, curves, **options.get(fmt.name, {})) for fmt, path in planned]


def format_of(path: Path) -> str:
    """The format a file is in: by suffix, and for a bare ``.csv`` by its header."""
    path = Path(path)
    name = path.name.lower()
    for fmt in sorted(FORMATS.values(), key=lambda f: -len(f.suffix)):  # ".livelink.csv" before ".csv"
        if name.endswith(fmt.suffix):
            return fmt.name
    if name.endswith(".csv"):
        try:
            with open(path, encoding="utf-8") as fh:
                first = fh.readline().lstrip("\ufeff")
        except (OSError, UnicodeDecodeError) as err:
            raise MedtalkError(f"{display_path(path)}: cannot read ({err})") from err
        if first.startswith("Timecode,BlendShapeCount"):
            return "livelink"
        if first.split(",")[0].strip() == TIME_COLUMN:
            return "csv"
        raise MedtalkError(
            f"{display_path(path)}: a CSV whose header is neither Live Link Face's (Timecode,BlendShapeCount,…) "
            f"nor an ARKit CSV's ({TIME_COLUMN},…)"
        )
    suffixes = ", ".join(sorted({f.suffix for f in FORMATS.values()} | {".csv"}))
    raise MedtalkError(f"{display_path(path)}: unknown curves file type; readable: {suffixes}")


def read_any(path: Path, **kwargs: Any) -> Curves:
    """Read any supported file; ``kwargs`` go to that format's reader (e.g. ``names_path`` for txt)."""
    return FORMATS[format_of(path)].read(Path(path), **kwargs)
