"""Small file-system helpers: atomic writes, hashing and printable paths.

Every output that a later step reads is written to a temporary name in the same directory and
renamed into place, so a crash or Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def display_path(path: str | os.PathLike[str]) -> str:
    """Printable form of a path, also when its name holds bytes that are not UTF-8."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashed(src: str | os.PathLike[str], dst: Path, link: bool = False) -> tuple[str, bool]:
    """Copy (or hard-link) ``src`` to ``dst`` and return (its sha256, whether it was linked).

    The file is read once: the copy and the hash come from the same chunks. A hard link that the
    file system refuses (another device, no link support) falls back to a copy.
    """
    if link:
        try:
            os.link(src, dst)
            return sha256_file(dst), True
        except OSError:
            pass
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest(), False


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the user's usual permissions
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(final: Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(final: Path, obj: Any) -> None:
    atomic_write_text(final, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def ensure_writable_dir(path: Path) -> None:
    """Create ``path`` if needed and prove it is writable, with a one-line error otherwise."""
    from ..errors import MedtalkError

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe."):
            pass
    except OSError as err:
        raise MedtalkError(
            f"{display_path(path)}: output folder is not writable ({err.strerror or err}); "
            "choose another --out or fix its permissions"
        ) from err
