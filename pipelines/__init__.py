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

from medtalk_data.discovery import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

from . import biwi, cremad, emoface, generic, hdtf, mead, ravdess, vocaset
from .registry import LABEL_KEYS, Recipe

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in sorted(
        (m.RECIPE for m in (ravdess, cremad, vocaset, biwi, emoface, mead, hdtf, generic)),
        key=lambda r: -r.priority,
    )
}


def get_recipe(name: str) -> Recipe | None:
    """The recipe called ``name``; None for ``auto`` (decided per file). KeyError names the choices."""
    if name == "auto":
        return None
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; choose auto or one of {', '.join(RECIPES)}")
    return RECIPES[name]


def detect_recipe(relpath: str) -> Recipe:
    """The most specific recipe whose grammar matches ``relpath`` (generic if none)."""
    return next(r for r in RECIPES.values() if r.matches(relpath))


def labels_for_path(recipe_name: str, root: Path | None = None) -> Callable[[str], dict[str, Any]]:
    """A function relpath → labels for the chosen recipe (or ``auto``).

    ``root`` (the folder the relative paths start from) lets a recipe read files beside a clip: the
    EmoFace rig file and channel names, CREMA-D's demographics table. A file that a forced recipe
    does not match gets generic labels and ``recipe_mismatch: True`` rather than wrong ones.
    """
    fixed = get_recipe(recipe_name)
    base = None if root is None else Path(root)

    def labels(relpath: str) -> dict[str, Any]:
        recipe = fixed or detect_recipe(relpath)
        if fixed is not None and not fixed.matches(relpath):
            out = {"recipe": fixed.name, **generic.labels(relpath), "recipe_mismatch": True}
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
    "detect_recipe",
    "find_pairs",
    "get_recipe",
    "labels_for_path",
]
