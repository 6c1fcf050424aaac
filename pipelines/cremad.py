"""CREMA-D: ``AAAA_SSS_EEE_LL.ext``, e.g. ``AudioWAV/1001_DFA_ANG_XX.wav`` or ``VideoFlash/1001_DFA_ANG_XX.flv``.

Fields: actor 1001–1091, sentence code (12 fixed sentences, below), emotion (ANG DIS FEA HAP NEU
SAD), level (LO, MD, HI, XX = unspecified). A re-hosting prefix is accepted (``cremad_1001_…``).

* emotion: the codes map to angry, disgust, fear, happy, neutral, sad (raw code kept).
* intensity (0–1): LO 1/3, MD 2/3, HI 1.0 — CREMA-D's three named levels spread evenly like MEAD's;
  XX (unspecified, most of the corpus) None, not a guess; NEU 0.0.
* sex: not in the file name. CREMA-D ships it in ``VideoDemographics.csv`` (``ActorID,Age,Sex,…``);
  when that file lies in the clip's folder or any folder above it (up to the folder given to
  ``extract``), its Male/Female column fills ``sex``. Otherwise None (or give it in a labels CSV).
* content_id: ``cremad:DFA`` — the sentence code, the same for every actor, emotion and level.
* transcript: the sentence. pair_key: ``cremad:<stem>`` (the WAV, MP3 and FLV of one take pair up).
"""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path
from typing import Any

from medtalk_data.emotions import canonical_emotion

from .registry import REHOST_PREFIX, Recipe, base_labels, find_upward, stem

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
EMOTION_CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
LEVELS: dict[str, float | None] = {"LO": 1 / 3, "MD": 2 / 3, "HI": 1.0, "XX": None, "X": None}
DEMOGRAPHICS_FILE = "VideoDemographics.csv"
_PATTERN = re.compile(
    REHOST_PREFIX
    + r"(\d{4})_("
    + "|".join(SENTENCES)
    + r")_("
    + "|".join(EMOTION_CODES)
    + r")_("
    + "|".join(LEVELS)
    + r")$"
)


def _parse(relpath: str) -> tuple[str, str, str, str] | None:
    m = _PATTERN.match(stem(relpath))
    if m is None or not 1001 <= int(m.group(1)) <= 1091:
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4)


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a CREMA-D file name")
    actor, sentence, emotion, level = parsed
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
        pair_key=f"cremad:{actor}_{sentence}_{emotion}_{level}",
    )


@functools.lru_cache(maxsize=8)
def read_demographics(path: str) -> dict[str, str]:
    """actor id → "M"/"F" from CREMA-D's VideoDemographics.csv (rows it cannot read are skipped)."""
    sexes: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                sex = (row.get("Sex") or "").strip().lower()
                actor = (row.get("ActorID") or "").strip()
                if actor and sex in ("male", "female"):
                    sexes[actor] = "M" if sex == "male" else "F"
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return sexes


def resolve(labels: dict[str, Any], relpath: str, root: Path) -> dict[str, Any]:
    """Fill ``sex`` from a VideoDemographics.csv beside the data, if there is one."""
    table = find_upward(root, relpath, [DEMOGRAPHICS_FILE])
    if table is not None and labels.get("sex") is None:
        actor = str(labels["speaker"]).split(":", 1)[1]
        labels["sex"] = read_demographics(str(table)).get(actor)
    return labels


RECIPE = Recipe(
    "cremad",
    "CREMA-D (AudioWAV/1001_DFA_ANG_XX.wav): actor, 6 emotions, LO/MD/HI/XX, 12 sentences; sex from "
    "VideoDemographics.csv if present",
    matches,
    labels,
    priority=90,
    example="AudioWAV/1001_DFA_ANG_XX.wav",
    resolve=resolve,
)
