"""HDTF: ``WDA_BarackObama_000.mp4`` (subset RD/WDA/WRA + name + clip index) or ``BarackObama_0.mp4``.

* The subset form is specific enough to accept a re-hosting prefix (``hdtf_WDA_…``, ``x_RD_Radio31_000.wav``).
  The bare ``Name_0`` form is weak (two or more capitalised words, an index), so only ``hdtf_`` may
  precede it; a plain folder's ``clip_001.mp4`` or ``Obama_clip1.mp4`` is not HDTF.
* speaker: the person (``hdtf:BarackObama``); a trailing digit HDTF adds to tell videos of one person
  apart (``WRA_AdamKinzinger0_000``) is dropped, so one person is one speaker for the splits. RD clips
  are radio addresses named ``Radio<N>`` with no person: each is its own speaker (``hdtf:Radio31``).
* No emotion, intensity, sex or sentence labels (None); language en.
* pair_key ``hdtf:WDA_BarackObama_000``: the video and a separately hosted wav of the same clip pair up.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import REHOST_PREFIX, Recipe, base_labels, stem

_SUBSET = re.compile(REHOST_PREFIX + r"(RD|WDA|WRA)_([A-Za-z][A-Za-z0-9]*)_(\d+)$")
_CAMEL = re.compile(r"^(?:hdtf_)?([A-Z][a-z]+(?:[A-Z][a-z]*)+\d?)_(\d+)$")


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
    person = name if subset == "RD" else re.sub(r"\d+$", "", name) or name
    return base_labels(
        "hdtf",
        speaker=f"hdtf:{person}",
        language="en",
        pair_key=f"hdtf:{subset + '_' if subset else ''}{name}_{index}",
        subset=subset,
        clip_index=int(index),
    )


RECIPE = Recipe(
    "hdtf",
    "HDTF (WDA_BarackObama_000.mp4 or BarackObama_0.mp4): speaker; no emotion labels",
    matches,
    labels,
    priority=60,
    example="WDA_BarackObama_000.mp4",
)
