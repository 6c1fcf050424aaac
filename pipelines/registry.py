"""Recipe interface and registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """A dataset layout: ``matches(relpath)`` says if a path belongs to it, ``labels(relpath)`` reads it."""

    name: str
    description: str
    matches: Callable[[str], bool]
    labels: Callable[[str], dict[str, Any]]


def _generic_labels(relpath: str) -> dict[str, Any]:
    """A plain folder of videos: the first sub-folder, if any, names the speaker."""
    parts = PurePosixPath(relpath).parts
    return {"dataset": "generic", "speaker": parts[0] if len(parts) > 1 else None}


GENERIC = Recipe(
    name="generic",
    description="any folder of talking-face videos; a first-level sub-folder names the speaker",
    matches=lambda _relpath: True,
    labels=_generic_labels,
)

RECIPES: dict[str, Recipe] = {GENERIC.name: GENERIC}


def get_recipe(name: str) -> Recipe | None:
    """The recipe called ``name``; None for ``auto`` (decided per file)."""
    if name == "auto":
        return None
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; choose auto or one of {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def labels_for_path(recipe_name: str) -> Callable[[str], dict[str, Any]]:
    """A function relpath → labels for the chosen recipe (``auto``: first matching recipe)."""
    fixed = get_recipe(recipe_name)

    def labels(relpath: str) -> dict[str, Any]:
        candidates = [r for r in RECIPES.values() if r is not GENERIC] + [GENERIC]
        recipe = fixed or next(r for r in candidates if r.matches(relpath))
        return {"recipe": recipe.name, **recipe.labels(relpath)}

    return labels
