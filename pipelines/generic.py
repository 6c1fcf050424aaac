"""A plain folder of videos: a first-level sub-folder names the speaker; an emotion word in the name is read."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from medtalk_data.emotions import canonical_emotion, emotion_word_in_name

from .registry import Recipe, base_labels, stem


def labels(relpath: str) -> dict[str, Any]:
    parts = PurePosixPath(relpath).parts
    raw = emotion_word_in_name(stem(relpath))
    return base_labels(
        "generic",
        speaker=parts[0] if len(parts) > 1 else None,
        emotion=canonical_emotion(raw),
        emotion_raw=raw,
    )


RECIPE = Recipe(
    name="generic",
    description="any folder of videos; a first-level sub-folder names the speaker, an emotion word in the "
    "file name (happy, furious, …) gives the emotion",
    matches=lambda _relpath: True,
    labels=labels,
    priority=0,
)
