"""BIWI 3D audiovisual corpus: ``F2_e01.npy`` / ``M3_40.wav`` (subject F1–F8 / M1–M6 + sentence 01–40), 25 fps.

The ``e`` marks the emotional take of a sentence (BIWI records each neutral and emotional, without
naming the emotion): emotion_raw "emotional", canonical emotion None.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import Recipe, base_labels, stem

_PATTERN = re.compile(r"^([FM][1-8])_(e?)(\d\d)$")


def matches(relpath: str) -> bool:
    return _PATTERN.match(stem(relpath)) is not None


def labels(relpath: str) -> dict[str, Any]:
    m = _PATTERN.match(stem(relpath))
    if m is None:
        raise ValueError(f"{relpath}: not a BIWI name")
    subject, emotional, sentence = m.groups()
    return base_labels(
        "biwi",
        speaker=f"biwi:{subject}",
        sex="F" if subject.startswith("F") else "M",
        emotion_raw="emotional" if emotional else "neutral",
        emotion="neutral" if not emotional else None,
        content_id=f"biwi:{sentence}",
        language="en",
    )


RECIPE = Recipe("biwi", "BIWI (F2_e01.npy)", matches, labels, priority=90)
