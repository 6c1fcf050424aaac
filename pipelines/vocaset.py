"""VOCASET: ``FaceTalk_170728_03272_TA_sentence01.wav`` (subject + sentence 01–40), 60 fps, neutral reading.

VOCASET has no emotion labels (emotion None). content_id: ``vocaset:NN`` per sentence number.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import Recipe, base_labels, stem

_PATTERN = re.compile(r"^(FaceTalk_\d{6}_\d{5}_TA)_sentence(\d\d)$")


def matches(relpath: str) -> bool:
    return _PATTERN.match(stem(relpath)) is not None


def labels(relpath: str) -> dict[str, Any]:
    m = _PATTERN.match(stem(relpath))
    if m is None:
        raise ValueError(f"{relpath}: not a VOCASET name")
    return base_labels("vocaset", speaker=f"vocaset:{m.group(1)}", content_id=f"vocaset:{m.group(2)}", language="en")


RECIPE = Recipe("vocaset", "VOCASET (FaceTalk_170728_03272_TA_sentence01.wav)", matches, labels, priority=90)
