"""A PNG of the main blendshape curves over time, with the spoken words as spans underneath.

One glance tells whether the mouth opens on the syllables, the brows move with emphasis and the
blinks look natural; the words share the time axis so lip sync can be judged without a player.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path

DEFAULT_CHANNELS = (
    "jawOpen",
    "mouthSmileLeft",
    "browInnerUp",
    "eyeBlinkLeft",
    "mouthFunnel",
    "browDownLeft",
    "mouthPucker",
    "mouthClose",
)


def plot_curves_png(
    path: str | os.PathLike[str],
    values: np.ndarray,
    names: Sequence[str],
    fps: float,
    channels: Sequence[str] | None = None,
    words: Sequence[Mapping[str, Any]] | None = None,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Plot ``values`` (T, C) named ``names`` at ``fps``; ``words``: dicts with text, start_s, end_s.

    ``channels`` default to :data:`DEFAULT_CHANNELS` that exist in ``names``. Written atomically.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state, renders with Agg

    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"values of shape {values.shape} do not match {len(names)} channel names")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    wanted = list(channels) if channels is not None else [c for c in DEFAULT_CHANNELS if c in names]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise MedtalkError(f"channels not in the curves: {', '.join(missing)}")
    if not wanted:
        wanted = list(names[: min(6, len(names))])
    t = np.arange(len(values)) / fps
    duration = max(len(values) / fps, 1e-3)
    spans = [w for w in (words or []) if w.get("start_s") is not None and w.get("end_s") is not None]

    fig = Figure(figsize=(max(8.0, min(24.0, 2.0 + duration * 1.2)), 4.2 if spans else 3.4), dpi=dpi)
    grid = fig.add_gridspec(2 if spans else 1, 1, height_ratios=[4, 1] if spans else [1], hspace=0.08)
    ax = fig.add_subplot(grid[0])
    for name in wanted:
        ax.plot(t, values[:, list(names).index(name)], label=name, linewidth=1.3)
    ax.set_xlim(0, duration)
    ax.set_ylabel("weight")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    if spans:
        ax.tick_params(labelbottom=False)
        _draw_words(fig.add_subplot(grid[1], sharex=ax), spans)
    else:
        ax.set_xlabel("time (s)")
    final = Path(path)
    with atomic_path(final) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return final


def _draw_words(ax: Any, words: Sequence[Mapping[str, Any]]) -> None:
    """Each word as a shaded span with its text, alternating rows so neighbours stay readable."""
    for i, word in enumerate(words):
        start, end = float(word["start_s"]), float(word["end_s"])
        row = i % 2
        ax.axvspan(start, end, ymin=0.52 - 0.5 * row, ymax=0.98 - 0.5 * row, color=f"C{i % 10}", alpha=0.25)
        ax.text((start + end) / 2, 0.75 - 0.5 * row, str(word.get("text", "")), ha="center", va="center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("words", fontsize=8)
    ax.set_xlabel("time (s)")
