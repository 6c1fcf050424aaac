"""MEAD: the official tree and flattened copies of it.

* video: ``M003/video/front/angry/level_1/001.mp4`` (second component sometimes ``1`` or ``2``)
* audio: ``M003/audio/angry/level_1/001.m4a``
* flattened: ``mead_W009_front_angry_level3_001.mp4`` or ``W009_front_angry_level_3_001.mp4``

Actors ``M###`` are male, ``W###`` female. Levels 1–3 → intensity 1/3, 2/3, 1; neutral (level 1
only) → 0.0. ``pair_key`` is the same for the video of every view and the audio of one take.

content_id: MEAD's script gives every actor three *common* sentences spoken in all emotions and
other sentences that differ between emotions. Only the first three utterance numbers are
treated as the same sentence across emotions (``mead:001``–``mead:003``); any other utterance
gets an emotion-scoped id (``mead:angry:017``), so no cross-emotion pair is claimed that the
dataset does not guarantee. A labels CSV can override this where a user knows better.
"""

from __future__ import annotations

import re
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import Recipe, base_labels

VIEWS = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
_V = "|".join(VIEWS)
_E = "|".join(EMOTIONS)
_TREE_VIDEO = re.compile(rf"(?:^|/)([MW]\d{{3}})/(?:video|1|2)/({_V})/({_E})/level_(\d)/(\d{{3}})\.\w+$")
_TREE_AUDIO = re.compile(rf"(?:^|/)([MW]\d{{3}})/audio/({_E})/level_(\d)/(\d{{3}})\.\w+$")
_FLAT = re.compile(rf"(?:^|/)(?:mead_)?([MW]\d{{3}})_({_V})_({_E})_level_?(\d)_(\d{{3}})\.\w+$")
COMMON_UTTERANCES = {"001", "002", "003"}


def _parse(relpath: str) -> tuple[str, str | None, str, str, str] | None:
    if m := _TREE_VIDEO.search(relpath):
        return m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
    if m := _TREE_AUDIO.search(relpath):
        return m.group(1), None, m.group(2), m.group(3), m.group(4)
    if m := _FLAT.search(relpath):
        return m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
    return None


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a MEAD path")
    actor, view, emotion, level, utterance = parsed
    canonical = canonical_emotion(emotion)
    content = f"mead:{utterance}" if utterance in COMMON_UTTERANCES else f"mead:{emotion}:{utterance}"
    return base_labels(
        "mead",
        speaker=f"mead:{actor}",
        sex="M" if actor.startswith("M") else "F",
        emotion=canonical,
        emotion_raw=emotion,
        emotion_level_raw=f"level_{level}",
        intensity=0.0 if emotion == "neutral" else min(1.0, int(level) / 3),
        content_id=content,
        language="en",
        view=view,
        pair_key=f"mead:{actor}:{emotion}:{level}:{utterance}",
    )


RECIPE = Recipe("mead", "MEAD (M003/video/front/angry/level_1/001.mp4, or flattened names)", matches, labels, 80)
