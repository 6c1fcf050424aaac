"""MEAD: the official tree and flattened copies of it.

* video: ``M003/video/front/angry/level_1/001.mp4`` (second component sometimes ``1`` or ``2``);
  views front, down, top, left_30, left_60, right_30, right_60
* audio: ``M003/audio/angry/level_1/001.m4a`` (no view)
* flattened: ``mead_W009_front_angry_level3_001.mp4``, ``W009_front_angry_level_3_001.mp4``,
  ``W009_angry_level_3_001.m4a`` (any re-hosting prefix before the actor)

Labels:

* speaker ``mead:M003``; sex from the actor id (``M`` male, ``W`` female).
* emotion: angry, contempt, disgusted, fear, happy, neutral, sad, surprised → canonical (contempt →
  disgust, raw kept).
* intensity (0–1): level_1 1/3, level_2 2/3, level_3 1.0 (three evenly spaced steps); neutral, which
  MEAD records at level_1 only, 0.0.
* view: the camera for video, None for audio. pair_key ``mead:M003:angry:1:001``: every view of a take
  and its m4a share it (see ``medtalk_pipelines.find_pairs``).
* transcript: None — MEAD ships no transcripts (the sentence lists are in the paper's supplement).

content_id — what the utterance number does and does not mean:

* MEAD's script has per actor 30 sentences per emotion and level (40 for neutral): a few *common*
  sentences spoken in every emotion, the rest different between emotions. So ``angry/…/017`` and
  ``happy/…/017`` are in general different sentences: the number alone never pairs emotions.
* The maintainers confirm that numbers were meant to follow the script order but do not always
  (uniBruce/Mead issue #12: in M003 one clip was lost, so 001 of disgusted and of neutral differ).
* Checked here on the real clips in shared/data: utterance 001 of W009 and W011 in all eight
  emotions (level 3; neutral level 1) is one sentence. The mouth blendshapes of two clips,
  dynamic-time-warped, match much better forwards than with one clip reversed when the sentence
  is the same: forward/reversed DTW cost 0.80 median over the 120 pairs of these 16 clips, every
  pair below 1, against 1.00 (half below 1) for 4-s windows of other English speech (PC-AVS,
  StyleTalk, HDTF, EDTalk clips). ``tests/test_recipes.py`` repeats a smaller version on W009.

Choice: utterances 001–003 (the common sentences) get ``mead:001``…``mead:003`` across emotions,
levels and actors — 001 verified as above, 002–003 taken from the same script design; any other
utterance gets an emotion-scoped id (``mead:angry:017``, the same sentence at each level and for each
actor, by the script); actors whose numbering is known to be shifted (M003) get a take-scoped id
(``mead:M003:disgusted:level_1:001``) so no pair is claimed for them. A labels CSV overrides all of it.

Known holes (field notes): M041 sad level_2 020–023 may lack audio (the videos then have no audio
partner under their pair_key); W017, M019 and M011 miss some views or emotions (nothing to label —
``find_pairs`` lists what is there).
"""

from __future__ import annotations

import re
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import REHOST_PREFIX, Recipe, base_labels, basename

VIEWS = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
# other spellings seen in re-hosted copies; read as the official label
_SPELLINGS = {"disgust": "disgusted", "surprise": "surprised", "fearful": "fear"}
COMMON_UTTERANCES = ("001", "002", "003")
SHIFTED_NUMBERING = ("M003",)  # uniBruce/Mead issue #12
_V = "|".join(VIEWS)
_E = "|".join((*EMOTIONS, *_SPELLINGS))
_TREE_VIDEO = re.compile(rf"(?:^|/)([MW]\d{{3}})/(?:video|1|2)/({_V})/({_E})/level_([1-3])/(\d{{3}})\.\w+$")
_TREE_AUDIO = re.compile(rf"(?:^|/)([MW]\d{{3}})/audio/({_E})/level_([1-3])/(\d{{3}})\.\w+$")
_FLAT = re.compile(rf"{REHOST_PREFIX}([MW]\d{{3}})_(?:({_V})_)?({_E})_level_?([1-3])_(\d{{3}})\.\w+$")


def _parse(relpath: str) -> tuple[str, str | None, str, str, str, str] | None:
    """(actor, view, emotion, level, utterance, modality)"""
    if m := _TREE_VIDEO.search(relpath):
        actor, view, emotion, level, utterance = m.groups()
        modality = "video"
    elif m := _TREE_AUDIO.search(relpath):
        actor, emotion, level, utterance = m.groups()
        view, modality = None, "audio"
    elif m := _FLAT.match(basename(relpath)):
        actor, view, emotion, level, utterance = m.groups()
        modality = "audio" if view is None else "video"
    else:
        return None
    return actor, view, _SPELLINGS.get(emotion, emotion), level, utterance, modality


def content_id(actor: str, emotion: str, level: str, utterance: str) -> str:
    """The content rule above, as a function (emotion: MEAD's raw label)."""
    if actor in SHIFTED_NUMBERING:
        return f"mead:{actor}:{emotion}:level_{level}:{utterance}"
    if utterance in COMMON_UTTERANCES:
        return f"mead:{utterance}"
    return f"mead:{emotion}:{utterance}"


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a MEAD path")
    actor, view, emotion, level, utterance, modality = parsed
    return base_labels(
        "mead",
        speaker=f"mead:{actor}",
        sex="M" if actor.startswith("M") else "F",
        emotion=canonical_emotion(emotion),
        emotion_raw=emotion,
        emotion_level_raw=f"level_{level}",
        intensity=0.0 if emotion == "neutral" else int(level) / 3,
        content_id=content_id(actor, emotion, level, utterance),
        language="en",
        view=view,
        pair_key=f"mead:{actor}:{emotion}:{level}:{utterance}",
        modality=modality,
        utterance=utterance,
    )


RECIPE = Recipe(
    "mead",
    "MEAD (M003/video/front/angry/level_1/001.mp4, M003/audio/…/001.m4a, mead_W009_front_angry_level3_001.mp4): "
    "actor, sex, 8 emotions, level 1-3, view",
    matches,
    labels,
    priority=80,
    example="M003/video/front/angry/level_1/001.mp4",
)
