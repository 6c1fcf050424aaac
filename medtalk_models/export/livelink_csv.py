"""The CSV that Epic's Live Link Face iOS app saves with every take, written and read by name.

What real files contain (checked on four recordings in alexdjulin/LiveLinkFace-CSV-Retarget-For-
Motionbuilder, ``anim/*.csv``, and against Epic's importer, the LiveLinkFaceImporter plugin's
``LiveLinkFaceImporterFactory.cpp`` in Unreal Engine's source):

* Header: ``Timecode,BlendShapeCount`` then 61 columns: the 52 ARKit blendshapes with a capital first
  letter (``EyeBlinkLeft``) and then ``HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,
  RightEyeYaw,RightEyePitch,RightEyeRoll``. The blendshape order is Apple's (the Live Link UDP /
  ``EARFaceBlendShape`` order) except two swapped pairs: ``JawForward,JawRight,JawLeft,JawOpen`` and
  ``MouthPucker,MouthRight,MouthLeft,MouthSmileLeft`` (0-based blendshape positions 15/16 and 21/22).
  The same header appears in nmfisher/blender_livelinkface ``bpylivelinkface.py``.
* ``BlendShapeCount`` is 61 on every tracked row. Rows where tracking was lost hold only
  ``<timecode>,0`` (seen in ``anim/S88-001.csv``); this reader fills them by interpolation and counts them.
* ``Timecode`` is ``HH:MM:SS:FF.fff`` (e.g. ``12:27:47:47.169``): wall-clock time with ``FF`` counted
  at the timecode rate and ``.fff`` the *fraction of a frame* (sub-frame), not milliseconds. Epic's
  importer parses the last field as a fractional frame number and divides it by the rate; in the real
  files the fraction is up to .999 and drifts by a thousandth every few rows, which milliseconds
  within a 1/60 s frame (at most 16) cannot do.
* No frame rate is stored. Epic's importer assumes 60 if any frame number exceeds 30, else 30. The
  real files count frames 00–59 (60 fps timecode) while rows advance by 2 frames (30 samples/s), so
  the timecode rate and the sample rate can differ: this reader finds the timecode rate where a second
  boundary is crossed (else Epic's rule) and the sample rate from the median row step.
* Values have 10 decimals; lines end with LF. Epic's importer names the subject from the file name
  ``<Slate>_<Take>_<Subject>[_cal|_raw|_neutral].csv``.
* Head/eye rotation units are not documented. In the real files eye yaw stays within about ±0.63 and
  eye pitch within ±0.41 (plausible as radians, not as degrees), and the Maya importer
  aronamao/Maya-Live-Link-CSV-Import (``csvImport.cpp``) keys them unchanged onto angle curves
  (radians internally). Unreal's own ARKit face support (``AppleARKitConversion.h``, ``ToBlendShapeMap``)
  sends the same-named Live Link properties as degrees / 180 instead. So rotations are taken and
  written as given ("the app's units", radians as far as the evidence goes); the head columns were all
  zero in the recordings checked.

Unverified report: nmfisher/blender_livelinkface PR #1 says the app's ``MouthLeft``/``MouthRight``
columns hold each other's values. That importer maps its UDP stream through the CSV header order too,
so the report may describe its own mix-up; Epic's importer uses the header names as they are, and so
does this module (by name, never by position).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path
from medtalk_data.rigs import ARKIT52

from .curves import NEUTRAL, Curves, is_arkit_like, snap_fps, to_uniform_grid

# The app's 52 blendshape columns: Apple's names capitalised, in Apple's order but with the Jaw and
# the Mouth Left/Right pairs swapped (JawRight before JawLeft, MouthRight before MouthLeft).
_APP_SWAPS = {"jawLeft": "jawRight", "jawRight": "jawLeft", "mouthLeft": "mouthRight", "mouthRight": "mouthLeft"}
LLF_BLENDSHAPES: tuple[str, ...] = tuple(
    (name := _APP_SWAPS.get(apple, apple))[0].upper() + name[1:] for apple in ARKIT52
)
HEAD_ROTATION = ("HeadYaw", "HeadPitch", "HeadRoll")
LEFT_EYE_ROTATION = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll")
RIGHT_EYE_ROTATION = ("RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LLF_ROTATIONS = (*HEAD_ROTATION, *LEFT_EYE_ROTATION, *RIGHT_EYE_ROTATION)
LLF_HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount", *LLF_BLENDSHAPES, *LLF_ROTATIONS)
BLEND_SHAPE_COUNT = len(LLF_BLENDSHAPES) + len(LLF_ROTATIONS)  # 61, as the app writes it
ROTATION_KEYS = {"head_rotation": HEAD_ROTATION, "left_eye_rotation": LEFT_EYE_ROTATION,
                 "right_eye_rotation": RIGHT_EYE_ROTATION}  # fmt: skip

_ARKIT = frozenset(ARKIT52)
_BY_LOWER = {n.lower(): n for n in ARKIT52}
_TIMECODE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}):(\d+(?:\.\d*)?)$")
_RATES = (24, 25, 30, 48, 50, 60, 100, 120)


def arkit_name(app_name: str) -> str:
    """``EyeBlinkLeft`` → ``eyeBlinkLeft`` (the app capitalises Apple's names)."""
    return _BY_LOWER.get(app_name.lower(), app_name)


def _rotation(name: str, given: np.ndarray | None, curves: Curves) -> np.ndarray:
    if given is None:
        given = curves.meta.get(name)
    if given is None:
        return np.zeros((curves.n_frames, 3), dtype=np.float64)
    arr = np.asarray(given, dtype=np.float64)
    if arr.shape != (curves.n_frames, 3):
        raise MedtalkError(f"{name} must be ({curves.n_frames}, 3) (yaw, pitch, roll per frame), got {arr.shape}")
    return arr


def format_timecodes(n_frames: int, fps: float, timecode_fps: int, start_s: float = 0.0) -> list[str]:
    """``HH:MM:SS:FF.fff`` of frames ``start_s + k / fps`` at ``timecode_fps`` (``.fff`` = sub-frame)."""
    milli = np.rint((start_s + np.arange(n_frames, dtype=np.float64) / fps) * timecode_fps * 1000).astype(np.int64)
    out = []
    for m in milli.tolist():
        frames, sub = divmod(m, 1000)
        secs, ff = divmod(frames, timecode_fps)
        out.append(f"{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{ff:02d}.{sub:03d}")
    return out


def write_livelink_csv(
    path: Path,
    curves: Curves,
    *,
    head_rotation: np.ndarray | None = None,
    left_eye_rotation: np.ndarray | None = None,
    right_eye_rotation: np.ndarray | None = None,
    timecode_fps: int | None = None,
    start_s: float = 0.0,
) -> Path:
    """Write ARKit-like curves as a Live Link Face take (atomically), columns matched by name.

    Rotations are (T, 3) yaw/pitch/roll in the app's units (see module doc); default: the reader's
    ``meta`` entries, else zeros. ``timecode_fps`` defaults to the curves' rate when it is 30 or 60
    (the app's two rates, the only ones Epic's importer recognises), else 60 with sub-frames.
    """
    path = Path(path)
    if not is_arkit_like(curves.names):
        raise MedtalkError(
            f"{display_path(path)}: a Live Link Face CSV holds ARKit blendshapes, but these {len(curves.names)} "
            "channels are not ARKit names; write this rig as npz (or txt for the 174 MetaHuman controllers)"
        )
    unknown = [n for n in curves.names if n not in _ARKIT and n != NEUTRAL]
    if unknown:
        raise MedtalkError(
            f"{display_path(path)}: the Live Link Face CSV has no column for {unknown[:5]}; "
            "select the ARKit channels first (curves.select(ARKIT52)) or write csv/npz"
        )
    if timecode_fps is None:
        timecode_fps = int(curves.fps) if curves.fps in (30.0, 60.0) else 60
    if int(timecode_fps) != timecode_fps or timecode_fps <= 0:
        raise MedtalkError(f"timecode_fps must be a whole positive frame rate, got {timecode_fps!r}")
    out = curves.select([arkit_name(n) for n in LLF_BLENDSHAPES])
    rotations = [_rotation(key, given, curves) for key, given in
                 (("head_rotation", head_rotation), ("left_eye_rotation", left_eye_rotation),
                  ("right_eye_rotation", right_eye_rotation))]  # fmt: skip
    table = np.column_stack([out.values.astype(np.float64), *rotations])
    timecodes = format_timecodes(out.n_frames, out.fps, int(timecode_fps), start_s)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(LLF_HEADER) + "\n")
        for tc, row in zip(timecodes, table, strict=True):
            fh.write(f"{tc},{BLEND_SHAPE_COUNT}," + ",".join(f"{v:.10f}" for v in row.tolist()) + "\n")
    return path


def _infer_timecode_fps(seconds: np.ndarray, frames: np.ndarray) -> int:
    """The rate ``FF`` counts at: found where a second boundary is crossed, else Epic's 30/60 rule."""
    max_ff = float(frames.max())
    feasible = [r for r in _RATES if r > max_ff]
    if not feasible:
        raise MedtalkError(f"timecode frame numbers reach {max_ff:.0f}; pass timecode_fps")
    crossing = np.diff(seconds) == 1
    same = np.diff(seconds) == 0
    if crossing.any() and same.any():
        step = float(np.median(np.diff(frames)[same]))
        jumps = frames[1:][crossing] - frames[:-1][crossing]
        return min(feasible, key=lambda r: float(np.median(np.abs(r + jumps - step))))
    return next(r for r in (30, 60, 120) if r > max_ff)


def read_livelink_csv(path: Path, timecode_fps: int | None = None) -> Curves:
    """Curves of the 52 blendshapes (ARKit lower-camel names, Apple order) from a Live Link Face CSV.

    ``fps`` is the sample rate measured from the timecodes; dropped frames and untracked rows are
    interpolated onto the frame grid and counted in ``meta`` (``filled_frames``, ``untracked_rows``).
    Head and eye rotations come back as ``meta["head_rotation"]`` etc. (T, 3). Pass ``timecode_fps``
    for a clip that never crosses a second boundary at a rate other than Epic's 30/60 guess.
    """
    path = Path(path)
    shown = display_path(path)
    try:
        lines = path.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise MedtalkError(f"{shown}: cannot read Live Link Face CSV ({err})") from err
    header = [h.strip() for h in lines[0].split(",")] if lines else []
    if header[:2] != ["Timecode", "BlendShapeCount"]:
        raise MedtalkError(f"{shown}: not a Live Link Face CSV (the header must start with Timecode,BlendShapeCount)")
    columns = header[2:]
    clock: list[int] = []  # whole seconds of each tracked row
    frames: list[float] = []  # FF.fff of each tracked row
    rows: list[list[float]] = []
    line_of: list[int] = []
    untracked, first_timecode = 0, ""
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        match = _TIMECODE.match(fields[0].strip())
        if match is None:
            raise MedtalkError(f"{shown}: line {number}: timecode {fields[0]!r} is not HH:MM:SS:FF.fff")
        if len(fields) == 2 or (len(fields) > 1 and fields[1].strip() == "0"):
            untracked += 1  # the app writes "<timecode>,0" while it has lost the face
            continue
        if len(fields) != len(header):
            raise MedtalkError(f"{shown}: line {number} has {len(fields)} fields, the header {len(header)}")
        try:
            rows.append([float(v) for v in fields[2:]])
        except ValueError as err:
            raise MedtalkError(f"{shown}: line {number}: {err}") from err
        h, m, s, ff = match.groups()
        first_timecode = first_timecode or fields[0].strip()
        clock.append(int(h) * 3600 + int(m) * 60 + int(s))
        line_of.append(number)
        frames.append(float(ff))
    if not rows:
        raise MedtalkError(f"{shown}: no tracked frames (every row has BlendShapeCount 0 or there are none)")
    seconds = np.asarray(clock, dtype=np.float64)
    seconds += 86400.0 * np.concatenate([[0], np.cumsum(np.diff(seconds) < -43200)])  # past midnight
    ff = np.asarray(frames, dtype=np.float64)
    rate = int(timecode_fps) if timecode_fps else _infer_timecode_fps(seconds, ff)
    times = seconds + ff / rate
    steps = np.diff(times)
    if (steps <= 0).any():
        line = line_of[int(np.where(steps <= 0)[0][0]) + 1]
        raise MedtalkError(f"{shown}: line {line}: the timecode does not increase; rows must be in time order")
    fps = snap_fps(rate / float(np.median(steps * rate)), rel_tol=1e-3) if len(times) > 1 else float(rate)
    values, filled = to_uniform_grid(times, np.asarray(rows, dtype=np.float64), fps)
    meta: dict[str, Any] = {"start_timecode": first_timecode, "timecode_fps": rate}
    if filled:
        meta["filled_frames"] = filled
    if untracked:
        meta["untracked_rows"] = untracked
    index = {name: i for i, name in enumerate(columns)}
    for key, cols in ROTATION_KEYS.items():
        if all(c in index for c in cols):
            meta[key] = values[:, [index[c] for c in cols]]
    shapes = [i for i, c in enumerate(columns) if c not in LLF_ROTATIONS]
    curves = Curves(values[:, shapes], [arkit_name(columns[i]) for i in shapes], fps, meta=meta)
    extras = [n for n in curves.names if n not in _ARKIT]
    return curves.select([*ARKIT52, *extras])
