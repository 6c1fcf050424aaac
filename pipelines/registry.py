"""Recipe interface and shared helpers.

A recipe is a dataset's file-name grammar: ``matches(relpath)`` says whether a path (relative to
the folder given to ``extract``, POSIX separators) belongs to the dataset, ``labels(relpath)``
reads the labels from it, and the optional ``resolve(labels, relpath, root)`` looks at files beside
the clip (a rig file, a demographics table) when the dataset folder is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from medtalk_data.clip_labels import LABEL_KEYS

# Every recipe returns the keys of medtalk_data.clip_labels.LABEL_KEYS (None where the dataset does not
# say). Recipes may add their own (``modality``, ``repetition``, ``variant``…); keys starting with "_"
# never leave the registry.

# A re-hosting prefix before a distinctive grammar: "emotalk_", "ravdess_", "mead_"… (any run of
# characters ending in _ - or .). Only used where the grammar itself is specific enough.
REHOST_PREFIX = r"(?:^|^.*[_\-.])"


@dataclass(frozen=True)
class Recipe:
    """A dataset layout.

    ``priority``: higher is tried first by ``auto`` (specific grammars before loose ones; generic is 0).
    ``example``: one real-looking relative path the recipe reads (listed by ``medtalk-data recipes``).
    ``resolve``: optional ``(labels, relpath, root) → labels`` that reads files beside the clip.
    """

    name: str
    description: str
    matches: Callable[[str], bool]
    labels: Callable[[str], dict[str, Any]]
    priority: int = 50
    example: str = ""
    resolve: Callable[[dict[str, Any], str, Path], dict[str, Any]] | None = None


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


def find_upward(root: Path, relpath: str, candidates: Iterable[str]) -> Path | None:
    """The first existing ``candidate`` (relative path) in the clip's folder or any parent up to ``root``."""
    candidates = list(candidates)
    folder = PurePosixPath(relpath).parent
    while True:
        for name in candidates:
            path = root / folder / name
            if path.is_file():
                return path
        if str(folder) in ("", "."):
            return None
        folder = folder.parent
