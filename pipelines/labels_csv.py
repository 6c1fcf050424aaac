"""A user's CSV of labels, which overrides every recipe.

Format: UTF-8 (a BOM is fine), comma-separated (semicolon- or tab-separated files are recognised
from the header line), a header row, one row per clip::

    clip_id,speaker,sex,emotion,intensity,content_id,transcript,language
    speaker1__take1,alice,F,furious,0.8,s01,Kids are talking by the door,en

* ``clip_id`` (required): the id ``extract`` gives the clip (``speaker1/take1.mp4`` → ``speaker1__take1``;
  ``medtalk-data extract … --dry-run`` lists them).
* any of :data:`COLUMNS`; header names are matched without regard to case or surrounding blanks.
* an empty cell keeps the recipe's value; the word ``none`` clears it (sets None).
* emotion: any label :func:`medtalk_data.emotions.canonical_emotion` knows (``furious``, ``calm``…);
  the canonical form goes to ``emotion``, the cell as written to ``emotion_raw``.
* intensity: a number in [0, 1]. sex: M/F (also male/female, m/f). language: a code such as en, zh, pt-BR.

:func:`read_labels_csv` checks every row and raises one :class:`~medtalk_data.errors.ConfigError`
that counts every problem and quotes the first twenty with their row numbers (the header is row 1;
``--labels-problems FILE`` writes them all): missing clip_id column, unknown
columns, empty / duplicate / unknown clip ids (with the clip id meant, where a file path was given),
unknown emotions, intensities outside [0, 1], bad sex or language values, rows with more cells than
the header, a file that is not UTF-8 or not readable. Nothing is applied unless the whole file is
valid, so a bad CSV never leaves half-relabelled clips. :func:`apply_overrides` puts one clip's
overrides on top of its recipe labels.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medtalk_data.emotions import CANONICAL_EMOTIONS, canonical_emotion
from medtalk_data.errors import ConfigError
from medtalk_data.extract.discovery import clip_id_for
from medtalk_data.io.files import atomic_write_text, display_path

COLUMNS = (
    "speaker",
    "sex",
    "emotion",
    "emotion_level_raw",
    "intensity",
    "content_id",
    "transcript",
    "language",
    "dataset",
    "view",
    "pair_key",
)
_ALIASES = {"emotion_level": "emotion_level_raw", "level": "emotion_level_raw", "gender": "sex", "text": "transcript"}
_SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
CLEAR = "none"
MAX_LISTED = 20  # problems quoted in the one-line error


def _decode(path: Path) -> str:
    where = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{where}: cannot read labels CSV ({err.strerror or err})") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{where}: not UTF-8 (line {line}, byte {err.start}); save the CSV as UTF-8 (e.g. 'CSV UTF-8' in Excel)"
        ) from err


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return next((d for d in (";", "\t") if d in header), ",")


class _IdHints:
    """'did you mean …' for clip ids that are not known: a file path or bare file name given instead
    of the clip id, or a typo (close matches are looked up for the first few only: they are slow)."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.by_base: dict[str, list[str]] = {}
        for cid in known:
            base = re.sub(r"-[A-Za-z0-9]+$", "", cid)  # "take1-wav" (same stem, other extension)
            self.by_base.setdefault(base, []).append(cid)
            if base.rsplit("__", 1)[-1] != base:  # "speaker1__take1" from "take1"
                self.by_base.setdefault(base.rsplit("__", 1)[-1], []).append(cid)
        self.fuzzy_left = 20

    def __call__(self, cell: str) -> str:
        as_id = clip_id_for(cell.strip("/"))
        meant = sorted({as_id} & self.known) or sorted(set(self.by_base.get(as_id, [])))
        if meant:
            shown = " or ".join(repr(m) for m in meant[:3]) + (" …" if len(meant) > 3 else "")
            return f"; did you mean {shown} (the clip id of that file)?"
        if self.fuzzy_left > 0:
            self.fuzzy_left -= 1
            close = difflib.get_close_matches(cell, self.known, n=1, cutoff=0.8)
            if close:
                return f"; did you mean {close[0]!r}?"
        return ""


def _check_cell(column: str, cell: str, values: dict[str, Any]) -> str | None:
    """Put the typed value of one cell into ``values``; return a problem, if any."""
    if cell.lower() == CLEAR:
        values[column] = None
        if column == "emotion":
            values["emotion_raw"] = None
        return None
    if column == "emotion":
        canonical = canonical_emotion(cell)
        if canonical is None:
            return f"unknown emotion {cell!r} (use one of {', '.join(CANONICAL_EMOTIONS)}, or a known alias)"
        values["emotion"], values["emotion_raw"] = canonical, cell
    elif column == "intensity":
        try:
            number = float(cell)
        except ValueError:
            number = float("nan")
        if not 0.0 <= number <= 1.0:
            return f"intensity {cell!r} is not a number in [0, 1]"
        values["intensity"] = number
    elif column == "sex":
        if cell.lower() not in _SEX:
            return f"sex {cell!r} is not M or F"
        values["sex"] = _SEX[cell.lower()]
    elif column == "language":
        if not _LANGUAGE.match(cell):
            return f"language {cell!r} is not a language code such as en, zh or pt-BR"
        values["language"] = cell
    else:
        values[column] = cell
    return None


def read_labels_csv(
    path: Path, known_clip_ids: Iterable[str] | None = None, *, problems_file: Path | None = None
) -> dict[str, dict[str, Any]]:
    """clip_id → label overrides (only the non-empty cells, typed); raises ConfigError on any problem.

    ``known_clip_ids``: the clips of the run; ids outside it are reported (None: not checked).
    The error names the first :data:`MAX_LISTED` problems and counts the rest; ``problems_file``
    receives every one, a line each.
    """
    path = Path(path)
    where = display_path(path)
    text = _decode(path)
    if not text.strip():
        raise ConfigError(f"{where}: empty file; expected a header row with clip_id and label columns")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise ConfigError(f"{where}: not a readable CSV (line {reader.line_num}: {err})") from err
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    if "clip_id" not in header:
        shown = ", ".join(repr(h) for h in rows[0]) or "none"
        raise ConfigError(f"{where}: no 'clip_id' column (header: {shown}); the first row must name the columns")
    problems: list[str] = []
    for name in header:
        if name != "clip_id" and name not in COLUMNS:
            close = difflib.get_close_matches(name, ("clip_id", *COLUMNS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"unknown column {name!r} (allowed: clip_id, {', '.join(COLUMNS)}){hint}")
    for name in sorted({h for h in header if header.count(h) > 1}):
        problems.append(f"column {name!r} appears twice")
    known = set(known_clip_ids) if known_clip_ids is not None else None
    id_hint = _IdHints(known) if known is not None else None
    overrides: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for row_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) > len(header):
            problems.append(f"row {row_number}: {len(row)} cells but the header has {len(header)} columns")
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))  # short rows: missing cells are empty
        clip_id = cells.get("clip_id", "")
        if not clip_id:
            problems.append(f"row {row_number}: empty clip_id")
            continue
        if clip_id in first_row:
            problems.append(f"row {row_number}: clip_id {clip_id!r} appears twice (first on row {first_row[clip_id]})")
            continue
        first_row[clip_id] = row_number
        if known is not None and id_hint is not None and clip_id not in known:
            meant = id_hint(clip_id)
            problems.append(f"row {row_number}: unknown clip_id {clip_id!r} (not among the clips found){meant}")
            continue
        values: dict[str, Any] = {}
        for column in COLUMNS:
            cell = cells.get(column, "")
            if cell and (problem := _check_cell(column, cell, values)):
                problems.append(f"row {row_number}: {problem}")
        overrides[clip_id] = values
    if problems:
        raise ConfigError(_problems_message(where, problems, problems_file))
    return overrides


def _problems_message(where: str, problems: list[str], problems_file: Path | None) -> str:
    """One line: the count, the first :data:`MAX_LISTED` problems, and where the whole list went (if asked)."""
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    listed = "; ".join(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        listed += f"; … and {len(problems) - MAX_LISTED} more"
    if problems_file is not None:
        try:
            atomic_write_text(Path(problems_file), "".join(f"{p}\n" for p in problems))
            listed += f" (all {len(problems)} in {display_path(problems_file)})"
        except OSError as err:
            listed += f" (could not write {display_path(problems_file)}: {err.strerror or err})"
    elif len(problems) > MAX_LISTED:
        listed += " (--labels-problems FILE writes them all)"
    return f"{where}: {count}, nothing applied: {listed}"


def apply_overrides(labels: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recipe labels with the CSV's values on top; ``overridden_by_csv`` lists the keys the CSV set."""
    if not overrides:
        return labels
    return {**labels, **overrides, "overridden_by_csv": sorted(overrides)}
