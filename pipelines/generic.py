"""Generic: any folder of videos, and every file that matches no dataset grammar.

* speaker: the first sub-folder under the folder given to ``extract`` (``alice/take1.mp4`` → ``alice``);
  None for files at the top level.
* emotion: an emotion word in the file name (rule in :func:`medtalk_data.emotions.emotion_word_in_name`:
  whole words, or a word glued to a plain noun such as ``sadgirl``; none when two emotions are named).
  ``emotion_raw`` keeps the word as written (``furious``), ``emotion`` its canonical form (``angry``).
* intensity, content_id, transcript, language, sex: unknown (None) — give them in a labels CSV.

Re-hosted copies of dataset files whose names lost the dataset grammar land here on purpose, e.g.
EmoTalk's ``emotalk_ravdess_angry1.wav`` is RAVDESS speech, but its name carries neither actor,
statement nor intensity: ``auto`` labels it generic with emotion angry (from the word), and nothing
else is guessed.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from medtalk_data.emotions import canonical_emotion, emotion_word_in_name

from .registry import Recipe, base_labels, stem


def matches(_relpath: str) -> bool:
    return True


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
    description="any folder of videos; first sub-folder = speaker, an emotion word in the name (happy, "
    "furious, sadgirl…) = emotion",
    matches=matches,
    labels=labels,
    priority=0,
    example="alice/happy_take1.mp4",
)
