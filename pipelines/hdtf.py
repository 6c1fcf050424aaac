"""HDTF: ``WDA_BarackObama_000.mp4`` (subset RD/WDA/WRA + name + clip index) or ``BarackObama_0.mp4``.

Speaker = the person's name. HDTF has no emotion labels (emotion None).
"""

from __future__ import annotations

import re
from typing import Any

from .registry import Recipe, base_labels, stem

_SUBSET = re.compile(r"^(?:hdtf_)?(RD|WDA|WRA)_([A-Za-z][A-Za-z0-9]*)_(\d+)$")
_CAMEL = re.compile(r"^(?:hdtf_)?([A-Z][a-z]+(?:[A-Z][a-z]*)+)_(\d+)$")


def _parse(relpath: str) -> tuple[str | None, str, str] | None:
    name = stem(relpath)
    if m := _SUBSET.match(name):
        return m.group(1), m.group(2), m.group(3)
    if m := _CAMEL.match(name):
        return None, m.group(1), m.group(2)
    return None


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not an HDTF name")
    subset, name, index = parsed
    return base_labels("hdtf", speaker=f"hdtf:{name}", language="en", subset=subset, clip_index=int(index))


RECIPE = Recipe("hdtf", "HDTF (WDA_BarackObama_000.mp4)", matches, labels, priority=60)
