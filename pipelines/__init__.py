"""Dataset recipes (installed as ``medtalk_pipelines``): how to read labels from a dataset's layout.

Each recipe turns a clip's relative path into labels (speaker, sex, emotion, intensity,
content_id, transcript, …). ``auto`` tries the recipes from the most specific grammar to the
loosest and falls back to ``generic``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import biwi, cremad, emoface, generic, hdtf, mead, ravdess, vocaset
from .registry import LABEL_KEYS, Recipe

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in sorted(
        (m.RECIPE for m in (ravdess, cremad, mead, emoface, hdtf, vocaset, biwi, generic)),
        key=lambda r: -r.priority,
    )
}


def get_recipe(name: str) -> Recipe | None:
    """The recipe called ``name``; None for ``auto`` (decided per file)."""
    if name == "auto":
        return None
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; choose auto or one of {', '.join(RECIPES)}")
    return RECIPES[name]


def detect_recipe(relpath: str) -> Recipe:
    """The most specific recipe whose grammar matches ``relpath`` (generic if none)."""
    return next(r for r in RECIPES.values() if r.matches(relpath))


def _resolve_files(labels: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """Turn a recipe's relative candidate files (e.g. a rig file beside a clip) into absolute paths."""
    rig_candidates = labels.pop("rig_candidates", None)
    names_candidate = labels.pop("rig_names_candidate", None)
    if root is None:
        return labels
    for rel in rig_candidates or []:
        if (root / rel).is_file():
            labels["rig_curves_path"] = str((root / rel).resolve())
            break
    if names_candidate and (root / names_candidate).is_file():
        labels["rig_names_path"] = str((root / names_candidate).resolve())
    return labels


def labels_for_path(recipe_name: str, root: Path | None = None) -> Callable[[str], dict[str, Any]]:
    """A function relpath → labels for the chosen recipe; ``root`` lets it find files beside a clip."""
    fixed = get_recipe(recipe_name)

    def labels(relpath: str) -> dict[str, Any]:
        recipe = fixed or detect_recipe(relpath)
        if fixed is not None and not recipe.matches(relpath):
            return {"recipe": recipe.name, **generic.labels(relpath), "recipe_mismatch": True}
        return {"recipe": recipe.name, **_resolve_files(recipe.labels(relpath), root)}

    return labels


__all__ = ["LABEL_KEYS", "RECIPES", "Recipe", "detect_recipe", "get_recipe", "labels_for_path"]
