"""CREMA-D: ``AAAA_SSS_EEE_LL.ext`` (actor 1001–1091, sentence code, emotion, level).

Intensity: LO 1/3, MD 2/3, HI 1.0, XX (unspecified) None; NEU → 0.0. Sex is not in the file
name (it is in CREMA-D's VideoDemographics.csv: pass it with a labels CSV). content_id: the
sentence code, e.g. ``cremad:DFA``.
"""

from __future__ import annotations

import re
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import Recipe, base_labels, stem

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
_PATTERN = re.compile(r"^(10[0-9]\d)_(" + "|".join(SENTENCES) + r")_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)$")
LEVELS = {"LO": 1 / 3, "MD": 2 / 3, "HI": 1.0, "XX": None, "X": None}


def matches(relpath: str) -> bool:
    return _PATTERN.match(stem(relpath)) is not None


def labels(relpath: str) -> dict[str, Any]:
    m = _PATTERN.match(stem(relpath))
    if m is None:
        raise ValueError(f"{relpath}: not a CREMA-D file name")
    actor, sentence, emotion, level = m.groups()
    canonical = canonical_emotion(emotion)
    return base_labels(
        "cremad",
        speaker=f"cremad:{actor}",
        emotion=canonical,
        emotion_raw=emotion,
        emotion_level_raw=level,
        intensity=0.0 if canonical == "neutral" else LEVELS[level],
        content_id=f"cremad:{sentence}",
        transcript=SENTENCES[sentence],
        language="en",
    )


RECIPE = Recipe("cremad", "CREMA-D (1001_DFA_ANG_XX.wav)", matches, labels, priority=90)
