"""Generic: any folder of videos, and every file that matches no dataset grammar.

* speaker, by the rule ``--speaker-from`` names (:data:`SPEAKER_RULES`):
  ``folder``: the first sub-folder under the folder given to ``extract`` (``alice/take1.mp4`` → ``alice``);
  ``file``: the file name up to its first ``_``, ``-``, space or dot (``alice_take1.mp4`` → ``alice``);
  ``none``: no speaker (each clip counts as its own speaker in the splits);
  ``auto`` (default): ``folder``, except for folders whose name says what the files are rather than
  who speaks (``video/``, ``video_noaudio/``, ``clips/``, …: :func:`is_media_folder`), whose clips get
  no speaker — 25 people in ``video/`` must not become one speaker ``video``. Files at the top level
  have no folder speaker.
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

import re
from pathlib import PurePosixPath
from typing import Any

from medtalk_data.emotions import canonical_emotion, emotion_word_in_name
from medtalk_data.settings import SPEAKER_RULES

from .registry import Recipe, base_labels, stem

# words that name what a folder holds, not who is in it
MEDIA_FOLDER_WORDS = frozenset((
    "video", "videos", "vid", "vids", "audio", "audios", "clip", "clips", "data", "dataset", "raw", "media",
    "movie", "movies", "mp4", "mov", "wav", "m4a", "input", "inputs", "output", "outputs", "noaudio",
    "emotional", "talking", "speech", "recordings", "recording", "samples", "files", "source", "sources",
    "test", "train", "val", "all",
))  # fmt: skip


def is_media_folder(name: str) -> bool:
    """``video``, ``video_noaudio``, ``Raw-Clips``: a folder named for its contents, not for a person."""
    words = [w for w in re.split(r"[_\-\s.]+", name.lower()) if w]
    return bool(words) and all(w in MEDIA_FOLDER_WORDS for w in words)


def speaker_of(relpath: str, rule: str = "auto") -> str | None:
    """The speaker a generic clip gets by ``rule`` (one of :data:`SPEAKER_RULES`)."""
    if rule not in SPEAKER_RULES:
        raise ValueError(f"speaker rule {rule!r}: use one of {', '.join(SPEAKER_RULES)}")
    parts = PurePosixPath(relpath).parts
    if rule == "none":
        return None
    if rule == "file":
        return re.split(r"[_\-\s.]", stem(relpath), maxsplit=1)[0] or None
    folder = parts[0] if len(parts) > 1 else None
    if rule == "auto" and folder is not None and is_media_folder(folder):
        return None
    return folder


def matches(_relpath: str) -> bool:
    return True


def labels(relpath: str, speaker_from: str = "auto") -> dict[str, Any]:
    raw = emotion_word_in_name(stem(relpath))
    return base_labels(
        "generic",
        speaker=speaker_of(relpath, speaker_from),
        emotion=canonical_emotion(raw),
        emotion_raw=raw,
    )


RECIPE = Recipe(
    name="generic",
    description="any folder of videos; first sub-folder = speaker (--speaker-from), an emotion word in the name "
    "(happy, furious, sadgirl…) = emotion",
    matches=matches,
    labels=labels,
    priority=0,
    example="alice/happy_take1.mp4",
)
