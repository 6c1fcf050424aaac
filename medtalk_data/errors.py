"""Errors that carry a one-line, user-facing explanation and a fix.

Expected per-clip failures (no face, undecodable file) are :class:`ClipError`: the batch records
them and goes on. Anything else is a bug and surfaces with its traceback.
"""

from __future__ import annotations


def brief(err: BaseException, limit: int = 200) -> str:
    """First line of an exception's text, shortened: our messages stay one line."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MedtalkError(Exception):
    """Base class: ``str(err)`` is a complete one-line message for the user."""


class ClipError(MedtalkError):
    """An expected failure of one clip; ``reason`` is a short stable code for scripts."""

    def __init__(self, reason: str, message: str, fix: str = "") -> None:
        self.reason = reason
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; {fix}" if fix else message)


class AssetNotFoundError(MedtalkError):
    """A model file could not be found by any of the documented routes."""


class AssetIntegrityError(MedtalkError):
    """A model file was found but its sha256 does not match the pinned one."""


class ConfigError(MedtalkError):
    """A settings file or option is invalid; lists every problem at once."""


class OutputError(MedtalkError):
    """The output folder cannot be written (permissions, read-only or full disk): it stops the whole run,
    since every further clip would fail the same way."""


def output_error(path: object, err: OSError) -> OutputError:
    from .io.files import display_path

    return OutputError(
        f"{display_path(path)}: cannot write the output ({err.strerror or err}); make the folder writable "  # type: ignore[arg-type]
        "(or free disk space) and run the same command again: finished clips are kept"
    )
