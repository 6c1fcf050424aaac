"""Grid frame-rate choice for constant- and variable-rate sources."""

from __future__ import annotations

import pytest

from medtalk_data.face.framerate import FALLBACK_FPS, choose_grid_fps


@pytest.mark.parametrize(
    ("average", "guessed", "expected"),
    [
        (25.0, 25.0, 25.0),  # constant rate keeps its rate
        (30000 / 1001, 30000 / 1001, 30000 / 1001),
        (29.95, 30.0, 30000 / 1001),  # within 1 % of NTSC
        (60.0, 60.0, 60.0),
        (1350 / 61, 30.0, 30.0),  # retalking_face1: 30 fps time base, a third of the frames dropped
        (12.5, 12.5, 12.5),  # unusual but constant: kept
        (17.3, 0.0, 17.3),
        (0.0, 0.0, FALLBACK_FPS),
        (float("nan"), 0.0, FALLBACK_FPS),
    ],
)
def test_choose_grid_fps(average: float, guessed: float, expected: float) -> None:
    fps, why = choose_grid_fps(average, guessed)
    assert fps == pytest.approx(expected, abs=1e-9)
    assert why
