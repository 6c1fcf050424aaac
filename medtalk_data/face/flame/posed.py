"""FLAME's whole mesh posed by expression curves and the jaw, identity and head pose at zero.

What FLAME-based talking-head work compares (VOCASET-style metrics, EMOTE's renders) and what a
head-stabilised vertex cache is: with the global rotation at zero the head never moves, so only
the face does. One implementation for ``animate --format vertices``, the mesh metrics and the
Audio2Face-3D export.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import MedtalkError
from ...rigs import FLAME_JAW
from .model_file import FlameModel

JAW = slice(6, 9)  # FLAME's pose vector: global, neck, jaw, left eye, right eye (3 each)


def flame_parameters(values: np.ndarray, names: Sequence[str], model: FlameModel) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) curves ``exp_000``… and ``jaw_x/y/z`` → expression (T, E), zero-padded to the model's, and jaw (T, 3)."""
    exp_cols = [i for i, n in enumerate(names) if n.startswith("exp_")]
    if len(exp_cols) > model.n_expression:
        raise MedtalkError(f"{len(exp_cols)} expression coefficients, but {model.source} has {model.n_expression}")
    missing = [n for n in FLAME_JAW if n not in names]
    if missing:
        raise MedtalkError(f"FLAME curves need the jaw channels {', '.join(FLAME_JAW)}; missing {', '.join(missing)}")
    expression = np.zeros((len(values), model.n_expression))
    expression[:, : len(exp_cols)] = values[:, exp_cols]
    return expression, np.asarray(values[:, [list(names).index(n) for n in FLAME_JAW]], np.float64)


class FlamePoser:
    """The user's FLAME model, posed in float64 on the CPU; vertices in metres."""

    def __init__(self, model: FlameModel) -> None:
        from .layer import FlameLayer

        self.model = model
        self._layer = FlameLayer(model, 1, model.n_expression).double()

    def vertices(self, expression: np.ndarray, jaw: np.ndarray) -> np.ndarray:
        """(T, E), (T, 3) → (T, V, 3) metres."""
        import torch

        pose = np.zeros((len(expression), 15))
        pose[:, JAW] = jaw
        with torch.no_grad():
            out = self._layer(torch.zeros(1, dtype=torch.float64), torch.tensor(expression, dtype=torch.float64),
                              torch.tensor(pose))  # fmt: skip
        return out.numpy()
