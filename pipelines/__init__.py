"""Dataset recipes (installed as ``medtalk_pipelines``): how to read labels from a dataset's layout.

Each recipe turns a clip's relative path into labels (speaker, emotion, …). ``auto`` picks the
first recipe whose ``matches`` accepts the path, falling back to ``generic``.
"""

from .registry import RECIPES, Recipe, get_recipe, labels_for_path

__all__ = ["RECIPES", "Recipe", "get_recipe", "labels_for_path"]
