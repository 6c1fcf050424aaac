"""The canonical emotion set and how every dataset's own labels map onto it.

Canonical: MEDTalk's seven, in MEDTalk's id order (the ``Embedding(7, …)`` index of its label
path) — angry 0, disgust 1, fear 2, happy 3, neutral 4, sad 5, surprise 6. Recipes always keep
the dataset's raw label beside the canonical one (``emotion_raw``), so any mapping below can be
undone or redone downstream.

Mapping rule: a raw label maps to a canonical emotion when it is a spelling, inflection,
abbreviation or code of that emotion as the datasets write it; two labels that are *not* one of
the seven are mapped to their nearest neighbour, for the reasons given:

* ``calm`` (RAVDESS) → ``neutral``. RAVDESS records calm as a second low-arousal baseline beside
  neutral, with no facial display of its own among the seven; neutral is the nearest face.
  (Neutral and calm stay separable through ``emotion_raw``; calm keeps its own normal/strong level.)
* ``contempt`` (MEAD) → ``disgust``. Of the seven, disgust is the nearest in meaning and in face:
  both express rejection of something or someone, and both raise the upper lip (AU10 — one-sided
  in contempt, together with a one-sided lip-corner tightening, AU14). Angry shares only the
  negative valence; dropping contempt would discard an eighth of MEAD. Keep ``emotion_raw`` if
  you want to train on contempt separately.
* Spellings and codes: RAVDESS ``fearful``, ``surprised``; MEAD ``disgusted``, ``surprised``;
  CREMA-D ``ANG DIS FEA HAP NEU SAD``; EmoFace/MEDTalk file names ``disg``, ``surp`` and EmoFace's
  three-letter keys (``ang dis fea hap neu sad sur``); the StyleTalk clip name ``furious`` → angry;
  common nouns (``anger``, ``fright``, ``happiness``, ``joy``, ``sadness``, ``surprise``) and
  speech-emotion tags (``fearful``, ``disgusted``). Case and surrounding blanks are ignored.
* Anything else — BIWI's ``emotional`` (an unnamed emotion), ``bored``, ``emo_unknown`` … — has no
  canonical label (None); the raw label is still kept.

:func:`emotion_word_in_name` reads an emotion from a free-form file name (the generic recipe):
whole words only (``sadtalker_happy`` is happy: "sadtalker" is not the word "sad"), a word glued
to a plain noun is split off (``sadgirl``, ``happyenglish``, ``surprisegirl``, ``angry1``), and a
name that names two different emotions gives none.
"""

from __future__ import annotations

import re

CANONICAL_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
EMOTION_IDS: dict[str, int] = {e: i for i, e in enumerate(CANONICAL_EMOTIONS)}

# raw label (lower case) → canonical; see the module docstring for why each is chosen
_ALIASES: dict[str, str] = {
    **{e: e for e in CANONICAL_EMOTIONS},
    # angry
    "anger": "angry",
    "furious": "angry",
    "ang": "angry",
    # disgust
    "disgusted": "disgust",
    "disg": "disgust",
    "dis": "disgust",
    "contempt": "disgust",  # MEAD; nearest of the seven
    # fear
    "fearful": "fear",
    "fright": "fear",
    "scared": "fear",
    "afraid": "fear",
    "fea": "fear",
    # happy
    "happiness": "happy",
    "joy": "happy",
    "hap": "happy",
    # neutral
    "calm": "neutral",  # RAVDESS; nearest of the seven
    "neu": "neutral",
    # sad
    "sadness": "sad",
    # surprise
    "surprised": "surprise",
    "surp": "surprise",
    "sur": "surprise",
}

# Words that name an emotion inside a free-form file name: three-letter codes are too ambiguous
# there ("dis", "sur", "hap"…), and "calm"/"contempt" are kept (they are dataset labels).
_NAME_WORDS = {k: v for k, v in _ALIASES.items() if len(k) >= 4 or k == "sad"}
# Nouns that file names glue to an emotion word ("sadgirl", "happyenglish"): split off when the rest is one of them.
_GLUED_NOUNS = {
    "girl",
    "boy",
    "man",
    "woman",
    "lady",
    "guy",
    "face",
    "talk",
    "speech",
    "voice",
    "english",
    "chinese",
    "clip",
    "video",
    "audio",
}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def canonical_emotion(raw: str | None) -> str | None:
    """The canonical label for a dataset's raw label (``"fearful"`` → ``"fear"``), or None if it has none."""
    if raw is None:
        return None
    return _ALIASES.get(str(raw).strip().lower())


def emotion_id(emotion: str) -> int:
    """MEDTalk's integer id (0–6) of an emotion; raw labels are mapped first (``"calm"`` → 4).

    Raises ValueError for a label that has no canonical emotion.
    """
    canonical = canonical_emotion(emotion)
    if canonical is None:
        raise ValueError(f"{emotion!r} is not one of {', '.join(CANONICAL_EMOTIONS)} (nor a known alias)")
    return EMOTION_IDS[canonical]


def _name_tokens(name: str) -> list[str]:
    tokens = []
    for part in re.split(r"[^A-Za-z0-9]+", _CAMEL.sub("_", name)):
        token = re.sub(r"\d+$", "", part.lower())
        if token:
            tokens.append(token)
    return tokens


def emotion_word_in_name(name: str) -> str | None:
    """The raw emotion word in a free-form file name (``styletalk_sadgirl_clip1`` → ``sad``), if exactly one emotion.

    Whole words first; only if there are none, words glued to a plain noun (``sadgirl``). Two words
    for the same emotion (``happy_joy``) count as one; two different emotions give None.
    """
    tokens = _name_tokens(name)
    found = [t for t in tokens if t in _NAME_WORDS]
    if not found:
        for token in tokens:
            for word in _NAME_WORDS:
                if token.startswith(word) and token[len(word) :] in _GLUED_NOUNS:
                    found.append(word)
    if len({_NAME_WORDS[w] for w in found}) != 1:
        return None
    return found[0]
