"""Typed records to and from the JSON that status files hold.

Readers take the fields they know and leave the rest (a file written by a newer version still
reads); a field an older file lacks keeps its default.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def record_from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in (data or {}).items() if k in names})
