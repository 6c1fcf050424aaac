"""Recipe interface and registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

# Every recipe returns these keys (None where the dataset does not say).
LABEL_KEYS = (
    "dataset",
    "speaker",
    "sex",
    "emotion",
    "emotion_raw",
    "emotion_level_raw",
    "intensity",
    "content_id",
    "transcript",
    "language",
)


@dataclass(frozen=True)
class Recipe:
    """A dataset layout: ``matches(relpath)`` says if a path belongs to it, ``labels(relpath)`` reads it.

    ``priority``: higher is tried first by ``auto`` (specific grammars before loose ones).
    """

    name: str
    description: str
    matches: Callable[[str], bool]
    labels: Callable[[str], dict[str, Any]]
    priority: int = 50


def base_labels(dataset: str, **values: Any) -> dict[str, Any]:
    """All label keys present, so every recipe's output has the same shape."""
    labels: dict[str, Any] = dict.fromkeys(LABEL_KEYS)
    labels["dataset"] = dataset
    labels.update(values)
    return labels


def basename(relpath: str) -> str:
    return PurePosixPath(relpath).name


def stem(relpath: str) -> str:
    return PurePosixPath(relpath).stem
