"""Errors that carry a one-line, user-facing explanation and a fix.

Expected per-clip failures (no face, undecodable file) are :class:`ClipError`: the batch records
them and goes on. Anything else is a bug and surfaces with its traceback.
"""

from __future__ import annotations


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
