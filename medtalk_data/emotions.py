"""The canonical emotion set and how every dataset's own labels map onto it.

Canonical: MEDTalk's seven, in MEDTalk's id order — angry 0, disgust 1, fear 2, happy 3,
neutral 4, sad 5, surprise 6. The raw label is always kept beside the canonical one.

Mapping rule, for labels that are not simply a spelling of one of the seven:

* ``calm`` (RAVDESS) → ``neutral``: RAVDESS describes calm as a low-arousal, non-emotional
  delivery; it has no expression of its own among the seven.
* ``contempt`` (MEAD) → ``disgust``: the nearest of the seven in the facial-action literature
  (both raise the upper lip / wrinkle the nose, unilaterally for contempt), and the choice used
  by work that trains seven-class models on MEAD.
* ``furious``, ``anger``, ``mad`` → ``angry``; ``fearful``, ``scared`` → ``fear``;
  ``surprised``, ``surp`` → ``surprise``; ``disgusted``, ``disg`` → ``disgust``; ``sadness`` → ``sad``;
  ``happiness``, ``joy`` → ``happy``; three-letter codes (``ANG``, ``DIS``, ``FEA``, ``HAP``, ``NEU``,
  ``SAD``, ``SUR``) as in CREMA-D and MEDTalk's loaders.
* Anything else (``emotional``, ``song``…) → no canonical label (None); the raw label stays.
"""

from __future__ import annotations

import re

CANONICAL_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

_ALIASES: dict[str, str] = {
    **{e: e for e in CANONICAL_EMOTIONS},
    "anger": "angry",
    "furious": "angry",
    "mad": "angry",
    "ang": "angry",
    "disgusted": "disgust",
    "disg": "disgust",
    "dis": "disgust",
    "contempt": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "afraid": "fear",
    "fea": "fear",
    "happiness": "happy",
    "joy": "happy",
    "hap": "happy",
    "calm": "neutral",
    "neu": "neutral",
    "sadness": "sad",
    "surprised": "surprise",
    "surp": "surprise",
    "sur": "surprise",
}

# Words that, found as a whole token in a file name, name an emotion (short codes excluded: too ambiguous).
_NAME_WORDS = {k: v for k, v in _ALIASES.items() if len(k) >= 4 or k in CANONICAL_EMOTIONS or k == "sad"}


def canonical_emotion(raw: str | None) -> str | None:
    """The canonical label for a dataset's raw label, or None if it has none."""
    if raw is None:
        return None
    return _ALIASES.get(raw.strip().lower())


def emotion_id(emotion: str) -> int:
    """MEDTalk's integer id of a canonical emotion."""
    return CANONICAL_EMOTIONS.index(emotion)


def emotion_word_in_name(name: str) -> str | None:
    """The raw emotion word in a free-form file name (``sadtalker_happy.png`` → ``happy``), if exactly one."""
    tokens = {re.sub(r"\d+$", "", t) for t in re.split(r"[^A-Za-z0-9]+", name.lower()) if t}
    found = {t for t in tokens if t in _NAME_WORDS}
    return found.pop() if len(found) == 1 else None
