"""VOCASET: ``FaceTalk_170728_03272_TA_sentence01.wav`` or ``FaceTalk_170728_03272_TA/sentence01.wav``.

Subject ``FaceTalk_<date>_<id>_TA`` + sentence 01–40; captured at 60 fps (FaceFormer-style copies are
often 30 fps). Any re-hosting prefix before ``FaceTalk_`` is accepted (the subject id is distinctive).

* speaker ``vocaset:FaceTalk_170728_03272_TA``; sex not in the name (None).
* emotion: None — VOCASET is read speech without emotion labels (not claimed to be neutral).
* content_id ``vocaset:FaceTalk_170728_03272_TA:01`` — scoped to the subject: each subject reads 40
  sentences drawn from a larger pool (255 distinct sentences over the corpus, per the VOCA paper),
  so ``sentence01`` of two subjects is not known to be the same sentence. Nothing is lost for
  MEDTalk, which pairs contents across emotions and VOCASET has none.
* transcript None (the sentence lists are not part of the file names); language en.
* pair_key: the subject and sentence (audio, vertices and video of one take).
"""

from __future__ import annotations

import re
from typing import Any

from .registry import Recipe, base_labels

_PATTERN = re.compile(r"(?:^|^.*[_\-./])(FaceTalk_\d{6}_\d{5}_TA)[_/]sentence(\d\d)\.\w+$")


def _parse(relpath: str) -> tuple[str, str] | None:
    m = _PATTERN.match(relpath)
    if m is None or not 1 <= int(m.group(2)) <= 40:
        return None
    return m.group(1), m.group(2)


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a VOCASET name")
    subject, sentence = parsed
    return base_labels(
        "vocaset",
        speaker=f"vocaset:{subject}",
        content_id=f"vocaset:{subject}:{sentence}",
        language="en",
        pair_key=f"vocaset:{subject}:{sentence}",
    )


RECIPE = Recipe(
    "vocaset",
    "VOCASET (FaceTalk_170728_03272_TA_sentence01.wav): subject, sentence; no emotion labels",
    matches,
    labels,
    priority=90,
    example="FaceTalk_170728_03272_TA/sentence01.wav",
)
