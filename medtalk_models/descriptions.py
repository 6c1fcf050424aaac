"""Free-text emotion descriptions generated from a clip's label and intensity (stage 4 training text).

No captioning model runs offline, so descriptions are composed from templates: an intensity
adverb, an emotion word (several synonyms each), and a description of the facial actions that
express the emotion (FACS-style, from the psychology literature: e.g. happiness = cheek raiser +
lip-corner puller). A user's own descriptions at inference land in the same sentence-embedding
space, so "a furious face" finds angry without the word "angry" ever being seen.
"""

from __future__ import annotations

import numpy as np

WORDS: dict[str, tuple[str, ...]] = {
    "angry": ("angry", "furious", "irritated", "enraged", "annoyed", "mad", "hostile"),
    "disgust": ("disgusted", "repulsed", "revolted", "grossed out", "contemptuous"),
    "fear": ("afraid", "scared", "frightened", "terrified", "anxious", "fearful"),
    "happy": ("happy", "joyful", "cheerful", "delighted", "glad", "amused"),
    "neutral": ("neutral", "calm", "relaxed", "expressionless", "composed"),
    "sad": ("sad", "unhappy", "sorrowful", "gloomy", "miserable", "downcast"),
    "surprise": ("surprised", "astonished", "amazed", "startled", "shocked"),
}

ACTIONS: dict[str, tuple[str, ...]] = {
    "angry": ("brows lowered and drawn together", "eyes glaring, lips pressed tight", "a tense jaw and narrowed eyes"),
    "disgust": ("a wrinkled nose and raised upper lip", "the upper lip curled, nose scrunched", "a sneer"),
    "fear": ("brows raised and pulled together", "eyes wide open, lips stretched back", "a tense, wide-eyed look"),
    "happy": ("a broad smile with raised cheeks", "mouth corners pulled up, eyes crinkled", "a warm smile"),
    "neutral": ("a relaxed face", "no particular expression", "a still, even face"),
    "sad": ("inner brows raised, mouth corners down", "drooping eyelids and a downturned mouth", "a frown"),
    "surprise": ("eyebrows raised high, eyes wide open", "raised brows and a dropped jaw", "wide eyes"),
}

ADVERBS: tuple[tuple[str, ...], ...] = (
    ("slightly", "a little", "mildly", "faintly"),  # intensity < 0.4
    ("", "clearly", "visibly", "noticeably"),  # 0.4 .. 0.75
    ("very", "extremely", "intensely", "deeply"),  # > 0.75
)

TEMPLATES: tuple[str, ...] = (
    "a {adv}{word} face",
    "the speaker looks {adv}{word}",
    "a {adv}{word} expression with {action}",
    "{action}; the person seems {adv}{word}",
    "someone talking while {adv}{word}",
    "a face showing {action}",
)


def _adverb_set(intensity: float | None) -> tuple[str, ...]:
    level = 0.6 if intensity is None else float(intensity)
    return ADVERBS[0] if level < 0.4 else ADVERBS[1] if level <= 0.75 else ADVERBS[2]


def describe(emotion: str, intensity: float | None, rng: np.random.Generator) -> str:
    """One description of ``emotion`` at ``intensity`` (0..1, None = medium)."""
    adv = str(rng.choice(_adverb_set(intensity)))
    text = str(rng.choice(TEMPLATES)).format(
        adv=f"{adv} " if adv else "", word=str(rng.choice(WORDS[emotion])), action=str(rng.choice(ACTIONS[emotion]))
    )
    return text[0].upper() + text[1:]


def descriptions_for(emotion: str, intensity: float | None, count: int, seed: int) -> list[str]:
    """``count`` distinct-as-possible descriptions, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for _ in range(count * 4):
        text = describe(emotion, intensity, rng)
        if text not in out:
            out.append(text)
        if len(out) == count:
            break
    return out
