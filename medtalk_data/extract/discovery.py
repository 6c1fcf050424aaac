"""Find media files under a folder and give each a stable clip id.

Clip ids come from the path relative to the scanned folder, so they are the same on every run and
every machine: ``speaker1/take 2.mp4`` → ``speaker1__take_2-<hash8>``. Paths made only of
``[A-Za-z0-9._-]`` map to themselves (``/`` → ``__``); anything else is replaced by ``_`` and
gets the first 8 hex digits of the sha1 of the raw relative path appended, so two different paths
never share an id. Files with the same stem and different extensions in one folder get the
extension appended. Identical files (same size, same sha256) are found by :func:`find_duplicates`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io.files import sha256_cached

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".flv", ".m4v", ".mpg", ".mpeg"})
AUDIO_EXTENSIONS = frozenset({".wav", ".m4a", ".flac", ".mp3", ".ogg", ".opus", ".aac"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_ID = 120


@dataclass(frozen=True)
class ClipSource:
    clip_id: str
    path: Path  # absolute
    relpath: str  # POSIX, relative to the scanned folder (may hold surrogate-escaped bytes)
    kind: str  # "video" or "audio", by extension; the streams decide at extraction


@dataclass
class Discovery:
    root: Path
    clips: list[ClipSource]
    ignored: list[str]  # relative paths of files that are not media


def clip_id_for(relpath: str) -> str:
    """Deterministic, file-system-safe id for a relative path."""
    p = PurePosixPath(relpath)
    parts = [*p.parent.parts, p.stem] if str(p.parent) != "." else [p.stem]
    slugs = [_UNSAFE.sub("_", part).strip("._") or "_" for part in parts]
    slug = "__".join(slugs)
    faithful = slugs == parts and not any("__" in part for part in parts) and len(slug) <= _MAX_ID
    if faithful:
        return slug
    digest = hashlib.sha1(os.fsencode(relpath)).hexdigest()[:8]
    return f"{slug[: _MAX_ID - 9]}-{digest}"


def discover(root: Path, exclude: tuple[Path, ...] = ()) -> Discovery:
    """Walk ``root`` recursively (sorted, hidden entries skipped, symlinked dirs not followed)."""
    root = root.resolve()
    excluded = {e.resolve() for e in exclude}
    found: list[tuple[str, Path]] = []
    ignored: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in excluded)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() in MEDIA_EXTENSIONS:
                found.append((rel, path))
            else:
                ignored.append(rel)
    by_id: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for rel, path in found:
        by_id[clip_id_for(rel)].append((rel, path))
    clips = []
    for cid, members in by_id.items():
        for rel, path in members:
            final = cid if len(members) == 1 else f"{cid}-{path.suffix.lower().lstrip('.')}"
            kind = "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "audio"
            clips.append(ClipSource(final, path, rel, kind))
    clips.sort(key=lambda c: c.relpath)
    return Discovery(root, clips, ignored)


def find_duplicates(clips: list[ClipSource]) -> dict[str, str]:
    """Map clip_id → clip_id of an identical earlier file. Only same-size files are hashed."""
    by_size: dict[int, list[ClipSource]] = defaultdict(list)
    for clip in clips:
        try:
            by_size[clip.path.stat().st_size].append(clip)
        except OSError:
            continue
    duplicates: dict[str, str] = {}
    for size, group in by_size.items():
        if len(group) < 2 or size == 0:
            continue
        first_by_hash: dict[str, str] = {}
        for clip in group:
            try:
                digest = sha256_cached(clip.path)
            except OSError:
                continue
            if digest in first_by_hash:
                duplicates[clip.clip_id] = first_by_hash[digest]
            else:
                first_by_hash[digest] = clip.clip_id
    return duplicates
