"""RAVDESS: ``MM-VC-EE-II-SS-RR-AA.ext`` (modality, vocal channel, emotion, intensity, statement, repetition, actor).

Intensity: normal → 0.5, strong → 1.0; neutral has only "normal" and gets 0.0 (no emotion to be
intense about). Actors with odd numbers are male, even female. content_id: the statement (and
whether it is spoken or sung), e.g. ``ravdess:speech:01``.
"""

from __future__ import annotations

import re
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import Recipe, base_labels, basename

_PATTERN = re.compile(r"(?:^|[_\-.])(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.[A-Za-z0-9]+$")
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


def matches(relpath: str) -> bool:
    m = _PATTERN.search(basename(relpath))
    return bool(m) and 1 <= int(m.group(7)) <= 24


def labels(relpath: str) -> dict[str, Any]:
    m = _PATTERN.search(basename(relpath))
    if m is None:
        raise ValueError(f"{relpath}: not a RAVDESS file name")
    modality, channel, emotion, level, statement, repetition, actor = m.groups()
    raw = EMOTIONS[emotion]
    canonical = canonical_emotion(raw)
    strong = level == "02"
    return base_labels(
        "ravdess",
        speaker=f"ravdess:actor{actor}",
        sex="M" if int(actor) % 2 else "F",
        emotion=canonical,
        emotion_raw=raw,
        emotion_level_raw="strong" if strong else "normal",
        intensity=0.0 if canonical == "neutral" and raw == "neutral" else (1.0 if strong else 0.5),
        content_id=f"ravdess:{'song' if channel == '02' else 'speech'}:{statement}",
        transcript=STATEMENTS[statement],
        language="en",
        modality=MODALITY[modality],
        repetition=int(repetition),
    )


RECIPE = Recipe("ravdess", "RAVDESS (01-01-03-02-01-01-24.mp4)", matches, labels, priority=90)
