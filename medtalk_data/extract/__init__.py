"""The batch runner: discovery of media files (discovery), each clip's folder and status (layout), one
clip through every stage (clip), many clips over a worker pool (batch).

``extract_videos`` is loaded on first use, so that readers of the clip layout (``build-manifest``)
do not import the extraction machinery."""

from __future__ import annotations

from typing import Any

__all__ = ["ExtractReport", "extract_videos"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import batch

        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
