"""Facial-animation curves as one (T, C) array with channel names and a frame rate.

Every writer and reader in this package goes through :class:`Curves`, so channels are always matched
by *name*: the same ARKit names circulate in at least four orders (Apple/Live Link UDP, Live Link
Face CSV, MediaPipe's alphabetical one, UniTalker's), and a positional copy silently swaps
left and right. Frame ``k`` sits at ``k / fps`` seconds; changing the rate is an explicit
:meth:`Curves.resample`, never a dropped or repeated row.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.media import STANDARD_RATES
from medtalk_data.resample import frame_times, interpolate_rows
from medtalk_data.rigfile import METAHUMAN_CHANNELS
from medtalk_data.rigs import ARKIT52, MEDIAPIPE_BLENDSHAPES, is_flame

from ..rig import unique_names as rig_unique_names

NEUTRAL = "_neutral"
"""MediaPipe's extra "no expression" score: it has no ARKit counterpart and no exporter writes it."""

_ARKIT_SET = frozenset(ARKIT52)
_ARKIT_LIKE_SET = _ARKIT_SET | frozenset(MEDIAPIPE_BLENDSHAPES)


@dataclass(eq=False)
class Curves:
    """Per-frame channel values: ``values[k, c]`` is channel ``names[c]`` at ``k / fps`` seconds.

    ``missing`` lists the names that :meth:`select` had to fill (e.g. ``tongueOut`` for MediaPipe
    data); ``meta`` carries what a reader found beside the curves (start timecode, head rotation…).
    """

    values: np.ndarray
    names: list[str]
    fps: float
    missing: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        if values.ndim != 2:
            raise MedtalkError(f"curves must be a (frames, channels) array, got shape {values.shape}")
        self.values = values
        self.names = [str(n) for n in self.names]
        if len(self.names) != values.shape[1]:
            raise MedtalkError(f"{values.shape[1]} curve channels but {len(self.names)} channel names")
        dupes = sorted(n for n, count in Counter(self.names).items() if count > 1)
        if dupes:
            raise MedtalkError(
                f"repeated channel names {dupes[:5]}: curves are matched by name, so make them unique "
                "(e.g. with unique_names(), which appends #2, #3…)"
            )
        fps = float(self.fps)
        if not math.isfinite(fps) or fps <= 0:
            raise MedtalkError(f"fps must be a positive number, got {self.fps!r}")
        self.fps = fps

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        """Playback length: T frames, each shown for 1/fps s (the last frame starts at (T-1)/fps)."""
        return self.n_frames / self.fps

    def resample(self, fps: float) -> Curves:
        """Linear interpolation in time onto ``k / fps``, covering the same span as the input frames.

        ``n_out = floor((T-1) * fps / fps_in) + 1``: 30 → 60 fps gives 2T-1 frames, the even ones equal
        to the input and the odd ones their midpoints. Rates are converted, never matched by dropping rows.
        """
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise MedtalkError(f"cannot resample to fps {fps!r}; give a positive frame rate")
        if fps == self.fps or self.n_frames == 0:
            return Curves(self.values.copy(), list(self.names), fps, list(self.missing), dict(self.meta))
        t_in, t_out = frame_times(self.n_frames, self.fps, fps)
        values = interpolate_rows(t_in, self.values, t_out)
        # Per-frame side arrays (head/eye rotations) follow the curves onto the new grid.
        meta = {
            k: interpolate_rows(t_in, v, t_out) if _per_frame(v, self.n_frames) else v for k, v in self.meta.items()
        }
        return Curves(values, list(self.names), fps, list(self.missing), meta)

    def select(self, names: Sequence[str], fill: float = 0.0) -> Curves:
        """Reorder/subset channels by name; names this curve lacks are filled and listed in ``missing``."""
        where = {n: i for i, n in enumerate(self.names)}
        values = np.full((self.n_frames, len(names)), fill, dtype=np.float32)
        missing = []
        for j, name in enumerate(names):
            i = where.get(name)
            if i is None:
                missing.append(name)
            else:
                values[:, j] = self.values[:, i]
        return Curves(values, list(names), self.fps, missing, dict(self.meta))


def _per_frame(value: Any, n_frames: int) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[0] == n_frames


def unique_names(names: Sequence[str]) -> list[str]:
    """Make repeated names distinct as ``name#2``… with the rig spec's own rule, so curves and rig
    specs agree on names (MEDTalk's names file repeats two tongue controllers)."""
    return list(rig_unique_names(list(names)))


def is_arkit_like(names: Sequence[str]) -> bool:
    """At least half the channels are ARKit/MediaPipe blendshape names (same rule as the rig spec)."""
    return bool(names) and sum(n in _ARKIT_LIKE_SET for n in names) >= max(1, len(names) // 2)


def is_metahuman174(names: Sequence[str]) -> bool:
    """MEDTalk's 174 MetaHuman controllers: ``CTRL_…`` names, or the ``ctrl_NNN`` placeholders of a rig
    file read without its names file."""
    if len(names) != METAHUMAN_CHANNELS:
        return False
    return any(n.startswith("CTRL_") for n in names) or all(n.startswith("ctrl_") for n in names)


def arkit_export_names(names: Sequence[str]) -> list[str]:
    """Header for ARKit-like curves: Apple's 52 in Apple order, then any other channel, never ``_neutral``.

    MediaPipe's 51 + ``_neutral`` become the 52 (``tongueOut`` filled by :meth:`Curves.select`);
    unknown extra channels are kept at the end rather than silently dropped.
    """
    extras = [n for n in names if n not in _ARKIT_SET and n != NEUTRAL]
    return [*ARKIT52, *extras]


def rig_kind(names: Sequence[str]) -> str:
    """``"arkit"``, ``"metahuman174"``, ``"flame"`` or ``"custom"``: which export formats a set of curves fits."""
    if is_flame(names):
        return "flame"
    if is_metahuman174(names):
        return "metahuman174"
    if is_arkit_like(names):
        return "arkit"
    return "custom"


# Rates that files written with 6 decimals or with sub-frame timecodes snap back to: the standard
# rates (NTSC exactly, as extraction writes them) and their usual spellings (29.97, 23.976…).
_COMMON_FPS = tuple(sorted({*STANDARD_RATES, *(round(rate, 3) for rate in STANDARD_RATES)}))


def snap_fps(fps: float, rel_tol: float = 2e-4) -> float:
    """Snap a measured rate to a common or whole rate when within ``rel_tol`` (rounded timestamps)."""
    candidates = [*_COMMON_FPS, float(round(fps))]
    best = min(candidates, key=lambda c: abs(c - fps))
    if best > 0 and abs(best - fps) <= rel_tol * best:
        return best
    return round(fps, 6)


def to_uniform_grid(times: np.ndarray, values: np.ndarray, fps: float) -> tuple[np.ndarray, int]:
    """Put samples taken at ``times`` (s, increasing) onto ``times[0] + k / fps``.

    Returns the values and how many grid frames had no sample of their own (gaps, dropped frames),
    so a reader can report them. Samples already on the grid (within 1 % of a frame) pass unchanged.
    """
    rel = (times - times[0]) * fps
    k = np.rint(rel)
    n_out = int(k[-1]) + 1 if len(k) else 0
    on_grid = np.abs(rel - k).max(initial=0.0) < 0.01
    if on_grid and n_out == len(times) and np.array_equal(k, np.arange(len(times))):
        return values.astype(np.float32), 0
    t_out = times[0] + np.arange(n_out, dtype=np.float64) / fps
    filled = n_out - len(np.unique(k))
    return interpolate_rows(times, values, t_out), int(max(filled, 0))
