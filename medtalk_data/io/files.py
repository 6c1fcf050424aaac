"""Small file-system helpers: atomic writes, hashing and printable paths.

Every output that a later step reads is written to a temporary name in the same directory and
renamed into place, so a crash or Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
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


_HASHES: dict[tuple[str, int, int, int], str] = {}


def _stat_key(path: str | os.PathLike[str]) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino


def sha256_cached(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file`, remembered in this process per (file, size, mtime, inode): a file is read
    once however many steps ask (duplicate check, planning, model verification), and hashed again
    as soon as it is replaced or written to."""
    key = _stat_key(path)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def known_sha256(path: str | os.PathLike[str]) -> str | None:
    """The sha256 :func:`sha256_cached` already took of this very file, or None (nothing is read)."""
    try:
        return _HASHES.get(_stat_key(path))
    except OSError:
        return None


def copy_hashed(src: str | os.PathLike[str], dst: Path, link: bool = False) -> tuple[str, bool]:
    """Copy (or hard-link) ``src`` to ``dst`` and return (its sha256, whether it was linked).

    The file is read once: the copy and the hash come from the same chunks. A hard link that the
    file system refuses (another device, no link support) falls back to a copy.
    """
    if link and _try_link(src, dst):
        return sha256_file(dst), True
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest(), False


def link_or_copy(src: str | os.PathLike[str], dst: Path) -> bool:
    """Hard-link ``src`` to ``dst`` (no bytes copied), or copy it where that is refused; True when linked."""
    if _try_link(src, dst):
        return True
    shutil.copy2(src, dst)
    return False


def _try_link(src: str | os.PathLike[str], dst: Path) -> bool:
    """A hard link, where the file system allows one (same device, links supported)."""
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(final: Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    ``keep_suffix``: the temporary name ends in ``final``'s suffix too, for writers that pick the
    file format by it (USD)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{final.suffix}" if keep_suffix else ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
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


def swap_into_place(new: Path, final: Path, aside: Path) -> None:
    """Make the folder ``new`` appear at ``final``, never half there, and delete what was there before.

    With nothing at ``final``: one rename. Else an atomic exchange where the system has one (Linux
    renameat2), or two renames (``final`` → ``aside``, ``new`` → ``final``; between them ``final`` is
    absent, never mixed, and a crash there leaves the previous folder whole under ``aside``).
    """
    if not final.exists():
        os.rename(new, final)
        return
    if _exchange(new, final):
        old = new
    else:
        os.rename(final, aside)
        os.rename(new, final)
        old = aside
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))
