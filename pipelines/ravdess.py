"""RAVDESS: ``MM-VC-EE-II-SS-RR-AA.ext``, e.g. ``Actor_24/01-01-03-02-01-01-24.mp4``.

Fields: modality (01 audio-video, 02 video-only, 03 audio-only) - vocal channel (01 speech, 02 song)
- emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised)
- intensity (01 normal, 02 strong) - statement (01 "Kids are talking by the door", 02 "Dogs are
sitting by the door") - repetition (01, 02) - actor (01–24; odd male, even female).

* Only codes RAVDESS uses match: song has no disgust/surprised, neutral has no strong intensity,
  actors are 01–24. Anything else is not RAVDESS (and falls to the next recipe).
* A re-hosting prefix is accepted (``ravdess_01-01-03-02-01-01-24.png``).
* emotion: calm → neutral and fearful/surprised spelled canonically (``medtalk_data.emotions``); raw kept.
* intensity (0–1): normal 0.5, strong 1.0; neutral, which RAVDESS records at normal only, 0.0. Calm
  keeps its level (0.5 / 1.0): intensity describes the raw label, filter on ``emotion_raw`` to tell
  calm from neutral.
* content_id: ``ravdess:speech:01`` — the statement and whether it is spoken or sung (the same words
  sung are a different face motion). The same for every actor, emotion, intensity and repetition.
* transcript: the statement. pair_key: the take without the modality, so the audio-video, the
  video-only and the audio-only files of one take pair up.
"""

from __future__ import annotations

import re
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import REHOST_PREFIX, Recipe, base_labels, basename

_PATTERN = re.compile(REHOST_PREFIX + r"(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.[A-Za-z0-9]+$")
EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
CHANNEL = {"01": "speech", "02": "song"}
LEVELS = {"01": ("normal", 0.5), "02": ("strong", 1.0)}


def _parse(relpath: str) -> tuple[str, ...] | None:
    m = _PATTERN.match(basename(relpath))
    if m is None:
        return None
    modality, channel, emotion, level, statement, repetition, actor = m.groups()
    if not 1 <= int(actor) <= 24:
        return None
    if channel == "02" and emotion in ("07", "08"):  # no sung disgust or surprise in RAVDESS
        return None
    if emotion == "01" and level == "02":  # neutral is recorded at normal intensity only
        return None
    return modality, channel, emotion, level, statement, repetition, actor


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a RAVDESS file name")
    modality, channel, emotion, level, statement, repetition, actor = parsed
    raw = EMOTIONS[emotion]
    level_name, intensity = LEVELS[level]
    return base_labels(
        "ravdess",
        speaker=f"ravdess:actor{actor}",
        sex="M" if int(actor) % 2 else "F",
        emotion=canonical_emotion(raw),
        emotion_raw=raw,
        emotion_level_raw=level_name,
        intensity=0.0 if raw == "neutral" else intensity,
        content_id=f"ravdess:{CHANNEL[channel]}:{statement}",
        transcript=STATEMENTS[statement],
        language="en",
        pair_key=f"ravdess:{actor}:{channel}-{emotion}-{level}-{statement}-{repetition}",
        modality=MODALITY[modality],
        vocal_channel=CHANNEL[channel],
        repetition=int(repetition),
    )


RECIPE = Recipe(
    "ravdess",
    "RAVDESS (Actor_24/01-01-03-02-01-01-24.mp4): actor, sex, 8 emotions, normal/strong, 2 statements",
    matches,
    labels,
    priority=90,
    example="Actor_24/01-01-03-02-01-01-24.mp4",
)
