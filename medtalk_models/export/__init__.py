"""Facial-animation curves to and from files, always by channel name, never by position.

Formats: ARKit CSV (``.arkit.csv``), Epic's Live Link Face CSV (``.livelink.csv``), npz (any rig) and
MEDTalk's 174-controller rig txt. :class:`Curves` carries values, names and fps together, and
:func:`write_all` / :func:`read_any` pick the format by name or file.
"""

from __future__ import annotations

from .arkit_csv import read_arkit_csv, write_arkit_csv
from .curves import Curves, arkit_export_names, is_arkit_like, is_metahuman174, rig_kind, unique_names
from .formats import FORMATS, Format, format_of, formats_for, read_any, write_all
from .livelink_csv import LLF_BLENDSHAPES, LLF_HEADER, read_livelink_csv, write_livelink_csv
from .medtalk_txt import read_medtalk_txt, write_medtalk_txt
from .npz import read_npz, write_npz

__all__ = [
    "FORMATS",
    "LLF_BLENDSHAPES",
    "LLF_HEADER",
    "Curves",
    "Format",
    "arkit_export_names",
    "format_of",
    "formats_for",
    "is_arkit_like",
    "is_metahuman174",
    "read_any",
    "read_arkit_csv",
    "read_livelink_csv",
    "read_medtalk_txt",
    "read_npz",
    "rig_kind",
    "unique_names",
    "write_all",
    "write_arkit_csv",
    "write_livelink_csv",
    "write_medtalk_txt",
    "write_npz",
]
