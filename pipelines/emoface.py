"""MEDTalk / EmoFace rig data: ``angry_gd04_001_021.{wav,txt,mov}``.

Emotion word (``disg``/``surp`` short forms too), actor (``gd04``, ``sp03``), two 3-digit numbers.
A sibling ``.txt`` with the same stem (or ``<stem>_rig174.txt``) holding one row of 174
comma-separated controller values per 60 fps frame becomes ``rig_curves_path``; a
``metahuman_attr_names.txt`` in the same folder names the channels (``rig_names_path``).
Suffixes added by re-hosting (``_actor``, ``_render``, ``_actor_with_wav``; a ``medtalk_``
prefix) are accepted. content_id assumes the two numbers identify the script line, as the official
loaders pair takes by their position across emotion folders; override with a labels CSV if not.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import Recipe, base_labels

_EMO = "angry|anger|disgust|disg|fear|happy|neutral|sad|surprise|surp|contempt"
_PATTERN = re.compile(
    rf"(?:^|/)(?:medtalk_|emoface_)?({_EMO})_([a-z]{{2}}\d\d)_(\d{{3}})_(\d{{3}})"
    r"(?:_(?:actor|render|actor_with_wav|rig174|video))*\.\w+$"
)
RIG_NAMES_FILE = "metahuman_attr_names.txt"


def matches(relpath: str) -> bool:
    return _PATTERN.search(relpath) is not None


def labels(relpath: str, root: str | None = None) -> dict[str, Any]:
    m = _PATTERN.search(relpath)
    if m is None:
        raise ValueError(f"{relpath}: not a MEDTalk/EmoFace name")
    emotion, actor, a, b = m.groups()
    stem = f"{emotion}_{actor}_{a}_{b}"
    folder = PurePosixPath(relpath).parent
    return base_labels(
        "emoface",
        speaker=f"emoface:{actor}",
        emotion=canonical_emotion(emotion),
        emotion_raw=emotion,
        content_id=f"emoface:{a}_{b}",
        language="zh",
        rig_candidates=[str(folder / f"{stem}.txt"), str(folder / f"{stem}_rig174.txt")],
        rig_names_candidate=str(folder / RIG_NAMES_FILE),
    )


RECIPE = Recipe("emoface", "MEDTalk / EmoFace rig data (angry_gd04_001_021.wav + .txt rig)", matches, labels, 85)
