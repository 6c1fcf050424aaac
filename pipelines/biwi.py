"""BIWI 3D audiovisual corpus: ``F2_e01.npy`` / ``M3_40.wav`` (subject F1–F8 / M1–M6 + sentence 01–40), 25 fps.

Every subject reads the same 40 English sentences twice, once neutral and once emotional; the ``e``
marks the emotional take. BIWI does not name the emotion of that take.

* speaker ``biwi:F2``; sex from the subject id (F / M).
* emotion: neutral take → ``neutral`` (raw "neutral"); emotional take → None (raw "emotional"):
  an emotion is claimed only where the dataset names one.
* intensity: neutral 0.0, emotional None.
* content_id ``biwi:01``: the sentence number, shared by all subjects and by the neutral and
  emotional takes — BIWI's built-in same-sentence/different-delivery pairs.
* The grammar is short, so only a ``biwi_`` prefix is accepted before it (a plain ``take_M1_01.mp4``
  stays generic). pair_key ``biwi:F2:e01``: the audio and vertex files of one take.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import Recipe, base_labels, stem

_PATTERN = re.compile(r"^(?:biwi_)?(F[1-8]|M[1-6])_(e?)(\d\d)$")


def _parse(relpath: str) -> tuple[str, str, str] | None:
    m = _PATTERN.match(stem(relpath))
    if m is None or not 1 <= int(m.group(3)) <= 40:
        return None
    return m.group(1), m.group(2), m.group(3)


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a BIWI name")
    subject, emotional, sentence = parsed
    return base_labels(
        "biwi",
        speaker=f"biwi:{subject}",
        sex=subject[0],
        emotion=None if emotional else "neutral",
        emotion_raw="emotional" if emotional else "neutral",
        intensity=None if emotional else 0.0,
        content_id=f"biwi:{sentence}",
        language="en",
        pair_key=f"biwi:{subject}:{emotional}{sentence}",
    )


RECIPE = Recipe(
    "biwi",
    "BIWI (F2_e01.npy, M3_40.wav): subject, sex, neutral/emotional take, 40 sentences",
    matches,
    labels,
    priority=90,
    example="F2_e01.wav",
)
