"""MEDTalk / EmoFace rig data: ``angry_gd04_001_021.{wav,txt,mov}``.

Grammar: emotion word - actor - one or two numbers. Emotion words as the datasets write them:
angry, disg/disgust, fear, happy, neutral, sad, surp/surprise; actors ``gdNN``, ``spNN``, ``speNN``,
``zrNN``; neutral takes sometimes carry one number (``neutral_gd01_008``). Accepted around it:
a re-hosting prefix (``medtalk_disg_sp03_001_031.wav``) and the suffixes the shared copies add
(``_actor``, ``_actor_with_wav``, ``_render``, ``_rig174``).

EmoFace's own layout is ``<split>/WAV/<stem>.wav`` (audio), ``<split>/ACTOR/<stem>.mov`` (the actor's
head-mounted camera), ``<split>/VIDEO/<stem>.mov`` (a MetaHuman *render* of the rig — not a real face)
and ``<split>/VALID_CTR/<stem>.txt`` (the rig).

Labels:

* speaker ``emoface:gd04``; sex unknown (None); language ``zh`` (a Mandarin corpus).
* emotion: canonical (disg → disgust, surp → surprise), raw kept. No intensity levels (None).
* variant: ``actor`` (real video), ``render`` (MetaHuman render, from ``_render`` or a ``VIDEO`` folder),
  ``audio`` or None.
* pair_key ``emoface:gd04:angry:001_021``: wav, actor video, render and rig of one take.
* rig_curves_path: a file with one row of 174 comma-separated controller values per 60 fps frame,
  found as ``<stem>.txt`` or ``<stem>_rig174.txt`` beside the clip, or ``<stem>.txt`` in a sibling
  ``VALID_CTR``/``CTR`` folder; a candidate whose first row does not hold 174 numbers is not used
  (``rig_problem`` says why). rig_names_path: ``metahuman_attr_names.txt`` (or EmoFace's
  ``valid_attr_names.txt``) in the clip's folder, a folder above it, or a ``visualization/`` folder there.
* content_id: None. The numbers do **not** identify the sentence: in MEDTalk's own corpus listing
  (SJTU-Lucy/MEDTalk ``data/corpus_*.csv``, since removed from the repo) one sentence appears as
  ``angry_gd04_001_021``, ``disg_gd05_001_014``, ``happy_gd06_001_017`` …, and of 179 actor+number
  keys recorded in several emotions only 23 share their text. Give content ids (e.g. the sentence
  text) in a labels CSV to get cross-emotion pairs.
* transcript: None (not in the file name).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from medtalk_data.emotions import canonical_emotion
from medtalk_data.extract.discovery import AUDIO_EXTENSIONS
from medtalk_data.rigfile import METAHUMAN_CHANNELS

from .registry import REHOST_PREFIX, Recipe, base_labels, basename, find_upward

_EMO = "angry|anger|disgust|disg|fear|happy|neutral|sad|surprise|surp"
_SUFFIX = r"(?:_(actor_with_wav|actor|render|rig174|video|audio))?"
_PATTERN = re.compile(rf"{REHOST_PREFIX}({_EMO})_([a-z]{{2,3}}\d\d)_(\d{{3}})(?:_(\d{{3}}))?{_SUFFIX}\.\w+$")
RIG_NAMES_FILES = ("metahuman_attr_names.txt", "valid_attr_names.txt")
RIG_FOLDERS = ("VALID_CTR", "CTR")


def _parse(relpath: str) -> tuple[str, str, str, str | None] | None:
    m = _PATTERN.match(basename(relpath))
    if m is None:
        return None
    emotion, actor, first, second, suffix = m.groups()
    numbers = first if second is None else f"{first}_{second}"
    parent = PurePosixPath(relpath).parent.name.upper()
    if suffix in ("actor", "actor_with_wav") or parent == "ACTOR":
        variant = "actor"
    elif suffix == "render" or parent == "VIDEO":
        variant = "render"
    elif PurePosixPath(relpath).suffix.lower() in AUDIO_EXTENSIONS:
        variant = "audio"
    else:
        variant = None
    return emotion, actor, numbers, variant


def matches(relpath: str) -> bool:
    return _parse(relpath) is not None


def labels(relpath: str) -> dict[str, Any]:
    parsed = _parse(relpath)
    if parsed is None:
        raise ValueError(f"{relpath}: not a MEDTalk/EmoFace name")
    emotion, actor, numbers, variant = parsed
    return base_labels(
        "emoface",
        speaker=f"emoface:{actor}",
        emotion=canonical_emotion(emotion),
        emotion_raw=emotion,
        language="zh",
        pair_key=f"emoface:{actor}:{canonical_emotion(emotion)}:{numbers}",
        variant=variant,
        _take=f"{emotion}_{actor}_{numbers}",
    )


def rig_candidates(relpath: str, take: str) -> list[str]:
    """Relative paths where the take's rig file may lie, in order of preference."""
    folder = PurePosixPath(relpath).parent
    near = [str(folder / f"{take}.txt"), str(folder / f"{take}_rig174.txt")]
    return near + [str(folder.parent / sub / f"{take}.txt") for sub in RIG_FOLDERS]


def rig_width(path: Path) -> int | None:
    """Number of comma-separated numbers on the first row of a rig file, None if it is not numeric."""
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            first = fh.readline()
        return len([float(v) for v in first.strip().split(",")])
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def resolve(labels: dict[str, Any], relpath: str, root: Path) -> dict[str, Any]:
    """Find the take's 174-channel rig file and the rig's channel-name file beside the clip."""
    take = labels.get("_take")
    problems = []
    for rel in rig_candidates(relpath, take) if take else []:
        path = root / rel
        if not path.is_file():
            continue
        width = rig_width(path)
        if width == METAHUMAN_CHANNELS:
            labels["rig_curves_path"] = str(path.resolve())
            break
        problems.append(f"{rel}: {'not numeric' if width is None else f'{width} values per row'}, expected 174")
    if labels.get("rig_curves_path") is None and problems:
        labels["rig_problem"] = "; ".join(problems)
    names = find_upward(root, relpath, [*RIG_NAMES_FILES, *(f"visualization/{n}" for n in RIG_NAMES_FILES)])
    if names is not None:
        labels["rig_names_path"] = str(names.resolve())
    return labels


RECIPE = Recipe(
    "emoface",
    "MEDTalk / EmoFace rig data (angry_gd04_001_021.wav + 174-channel rig .txt): actor, 7 emotions, rig curves",
    matches,
    labels,
    priority=85,
    example="validation/WAV/angry_gd04_001_021.wav",
    resolve=resolve,
)
