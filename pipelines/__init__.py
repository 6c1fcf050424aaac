"""Dataset recipes (installed as ``medtalk_pipelines``): how to read labels from a dataset's layout.

Each recipe turns a clip's relative path into labels (speaker, sex, emotion, intensity,
content_id, transcript, …; the keys are :data:`LABEL_KEYS`). ``auto`` tries the recipes from the
most specific grammar to the loosest (:data:`RECIPES` is in that order) and falls back to
``generic``, which matches everything. A user's labels CSV (:mod:`.labels_csv`) goes on top.

>>> labels_for_path("auto")("Actor_24/01-01-03-02-01-01-24.mp4")["emotion"]
'happy'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from medtalk_data.errors import MedtalkError
from medtalk_data.extract.discovery import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

from . import biwi, cremad, emoface, generic, hdtf, mead, ravdess, vocaset
from .registry import LABEL_KEYS, Recipe

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in sorted(
        (m.RECIPE for m in (ravdess, cremad, vocaset, biwi, emoface, mead, hdtf, generic)),
        key=lambda r: -r.priority,
    )
}


class UnknownRecipe(MedtalkError, KeyError):
    """A recipe name that is not one of :data:`RECIPES` (the message names the choices)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_recipe(name: str) -> Recipe | None:
    """The recipe called ``name``; None for ``auto`` (decided per file). UnknownRecipe names the choices."""
    if name == "auto":
        return None
    if name not in RECIPES:
        raise UnknownRecipe(f"unknown recipe {name!r}; choose auto or one of {', '.join(RECIPES)}")
    return RECIPES[name]


def detect_recipe(relpath: str) -> Recipe:
    """The most specific recipe whose grammar matches ``relpath`` (generic if none)."""
    return next(r for r in RECIPES.values() if r.matches(relpath))


def labels_for_path(
    recipe_name: str, root: Path | None = None, speaker_from: str = "auto"
) -> Callable[[str], dict[str, Any]]:
    """A function relpath → labels for the chosen recipe (or ``auto``).

    ``root`` (the folder the relative paths start from) lets a recipe read files beside a clip: the
    EmoFace rig file and channel names, CREMA-D's demographics table. A file that a forced recipe
    does not match gets generic labels and ``recipe_mismatch: True`` rather than wrong ones.
    ``speaker_from``: how generic clips get their speaker (:data:`generic.SPEAKER_RULES`); dataset
    recipes read it from the dataset's own names.
    """
    fixed = get_recipe(recipe_name)
    base = None if root is None else Path(root)
    generic.speaker_of("x", speaker_from)  # an unknown rule fails here, not per clip

    def labels(relpath: str) -> dict[str, Any]:
        recipe = fixed or detect_recipe(relpath)
        if fixed is not None and not fixed.matches(relpath):
            out = {"recipe": fixed.name, **generic.labels(relpath, speaker_from), "recipe_mismatch": True}
        elif recipe is generic.RECIPE:
            out = {"recipe": recipe.name, **generic.labels(relpath, speaker_from)}
        else:
            out = {"recipe": recipe.name, **recipe.labels(relpath)}
            if base is not None and recipe.resolve is not None:
                out = recipe.resolve(out, relpath, base)
        return {k: v for k, v in out.items() if not k.startswith("_")}

    return labels


@dataclass
class Take:
    """The files of one take (same ``pair_key``), by kind."""

    video: list[str] = field(default_factory=list)
    audio: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # rig files, vertex arrays, …


@dataclass
class PairReport:
    """Files grouped into takes by their recipe's ``pair_key``."""

    takes: dict[str, Take]
    no_pair_key: list[str]  # files whose recipe gives no pair_key (generic files, …)

    @property
    def paired(self) -> list[str]:
        return [k for k, t in self.takes.items() if t.video and t.audio]

    @property
    def video_only(self) -> list[str]:
        return [k for k, t in self.takes.items() if t.video and not t.audio]

    @property
    def audio_only(self) -> list[str]:
        return [k for k, t in self.takes.items() if t.audio and not t.video]


def media_folder_note(relpaths: Iterable[str], recipe_name: str = "auto", speaker_from: str = "auto") -> str | None:
    """With ``--speaker-from auto``: which folders of generic clips were not taken as speakers, and how to
    say otherwise (a warning for the user); None when there are none."""
    if speaker_from != "auto":
        return None
    fixed = get_recipe(recipe_name)
    folders: dict[str, int] = {}
    for rel in relpaths:
        parts = PurePosixPath(rel).parts
        recipe = fixed if fixed is not None and fixed.matches(rel) else (None if fixed else detect_recipe(rel))
        if (recipe is None or recipe is generic.RECIPE) and len(parts) > 1 and generic.is_media_folder(parts[0]):
            folders[parts[0]] = folders.get(parts[0], 0) + 1
    if not folders:
        return None
    named = ", ".join(f"{name}/ ({n} clips)" for name, n in sorted(folders.items()))
    return (
        f"{named}: the folder name says what the files are, not who speaks, so these clips get no speaker "
        "(each counts as its own speaker in the splits); pass --speaker-from folder if each folder is one "
        "person, --speaker-from file if file names start with the speaker, or name speakers in a labels CSV"
    )


def find_pairs(relpaths: Iterable[str], recipe: str = "auto") -> PairReport:
    """Group files into takes (MEAD's views and m4a, RAVDESS's AV / video-only / audio-only, EmoFace's
    wav, videos and rig), and show the holes: takes with video but no audio and the reverse."""
    label = labels_for_path(recipe)
    takes: dict[str, Take] = {}
    no_key: list[str] = []
    for rel in relpaths:
        key = label(rel).get("pair_key")
        if key is None:
            no_key.append(rel)
            continue
        take = takes.setdefault(key, Take())
        ext = PurePosixPath(rel).suffix.lower()
        (take.video if ext in VIDEO_EXTENSIONS else take.audio if ext in AUDIO_EXTENSIONS else take.other).append(rel)
    return PairReport(takes, no_key)


__all__ = [
    "LABEL_KEYS",
    "RECIPES",
    "PairReport",
    "Recipe",
    "Take",
    "UnknownRecipe",
    "detect_recipe",
    "find_pairs",
    "get_recipe",
    "labels_for_path",
    "media_folder_note",
]
