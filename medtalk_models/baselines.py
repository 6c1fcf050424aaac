"""The baselines a model is judged against, fitted at training time on the model's own training data.

A model that a linear map from the same audio features beats has not learned what the features
offer. So the trainer fits, on the frames that train stage 2 (the same frozen audio features, the
same rig curves):

- the mean pose of the training frames;
- ridge regression from the audio features of each frame to every rig channel (``k = 0``), and the
  same with ``±k`` frames of context (the features of the neighbouring frames stacked, edges
  replicated; ``k`` is ``baselines.context_frames`` in the config).

The ridge penalty is chosen per map by leave-clips-out cross-validation over the training clips
(folds by speaker where there are enough speakers), then refitted on all of them. Features are
standardised first, so one penalty grid serves any backbone. They are stored in the checkpoint
(``baselines.safetensors``), so ``evaluate`` scores them on any manifest, also one of other speakers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAMBDAS = (1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)  # ridge penalties tried, in units of standardised features
MAX_FOLDS = 5
RIDGE_NAMES = ("ridge", "ridge_context")


def with_context(feats: np.ndarray, k: int) -> np.ndarray:
    """(T, D) → (T, D·(2k+1)): each frame with the features of the ``k`` frames before and after it
    (repeating the first/last frame at the edges), ordered from ``-k`` to ``+k``."""
    if k == 0:
        return np.asarray(feats)
    t = len(feats)
    idx = np.clip(np.arange(t)[:, None] + np.arange(-k, k + 1)[None, :], 0, max(t - 1, 0))
    return np.asarray(feats)[idx].reshape(t, -1)


@dataclass
class RidgeMap:
    """``y = ((with_context(x, k) - mean) / scale) @ weights + bias``."""

    context: int
    mean: np.ndarray  # (D',)
    scale: np.ndarray  # (D',)
    weights: np.ndarray  # (D', C)
    bias: np.ndarray  # (C,)
    lam: float

    def predict(self, feats: np.ndarray) -> np.ndarray:
        x = (with_context(np.asarray(feats, np.float64), self.context) - self.mean) / self.scale
        return (x @ self.weights + self.bias).astype(np.float32)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.mean": self.mean.astype(np.float32),
            f"{prefix}.scale": self.scale.astype(np.float32),
            f"{prefix}.weights": self.weights.astype(np.float32),
            f"{prefix}.bias": self.bias.astype(np.float32),
            f"{prefix}.params": np.array([self.context, self.lam], np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> RidgeMap:
        context, lam = arrays[f"{prefix}.params"]
        return cls(int(context), *(np.asarray(arrays[f"{prefix}.{k}"], np.float64) for k in ("mean", "scale",
                   "weights", "bias")), float(lam))  # fmt: skip


def ridge_solve(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Closed-form ridge without intercept: argmin_W |xW - y|² + lam |W|²."""
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def _folds(groups: list[str]) -> list[np.ndarray]:
    """Clip indices per fold: whole groups (speakers) per fold, at most MAX_FOLDS folds."""
    names = sorted(set(groups))
    n_folds = min(MAX_FOLDS, len(names))
    order = {name: i % n_folds for i, name in enumerate(names)}
    return [np.array([i for i, g in enumerate(groups) if order[g] == f]) for f in range(n_folds)]


def _path_errors(evals: np.ndarray, projected: np.ndarray, val_rot: np.ndarray, y_val: np.ndarray,
                 lambdas: tuple[float, ...]) -> np.ndarray:  # fmt: skip
    """Held-out squared error of the ridge fit for every penalty, from one eigendecomposition."""
    evals = np.maximum(evals, 0)
    return np.array([((val_rot @ (projected / (evals + lam)[:, None]) - y_val) ** 2).sum() for lam in lambdas])


def _search_primal(
    zs: list[np.ndarray], ys: list[np.ndarray], folds: list[np.ndarray], lambdas
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Per-penalty errors (None without two folds) from the features' Gram matrices, and the Gram and cross
    matrices of all clips for the final fit: one pass over the frames, each fold's training Gram being
    the total minus its own, and no copy of all frames at once."""
    d, c = zs[0].shape[1], ys[0].shape[1]
    groups = folds if folds else [np.arange(len(zs))]
    grams = [sum((zs[i].T @ zs[i] for i in fold), np.zeros((d, d))) for fold in groups]
    crosses = [sum((zs[i].T @ ys[i] for i in fold), np.zeros((d, c))) for fold in groups]
    gram_all, cross_all = sum(grams), sum(crosses)
    if len(folds) < 2:
        return None, gram_all, cross_all
    errors = np.zeros(len(lambdas))
    for fold, gram, cross in zip(folds, grams, crosses, strict=True):
        evals, evecs = np.linalg.eigh(gram_all - gram)
        z_val, y_val = np.concatenate([zs[i] for i in fold]), np.concatenate([ys[i] for i in fold])
        errors += _path_errors(evals, evecs.T @ (cross_all - cross), z_val @ evecs, y_val, lambdas)
    return errors, gram_all, cross_all


def _search_dual(zs: list[np.ndarray], ys: list[np.ndarray], folds: list[np.ndarray], lambdas) -> np.ndarray:
    """The same errors from the frames' kernel matrix (the kernel form of the same ridge), for fewer frames
    than features: its cost grows with frames², not features²."""
    errors = np.zeros(len(lambdas))
    for fold in folds:
        held = set(fold.tolist())
        rest = [i for i in range(len(zs)) if i not in held]
        z_fit, y_fit = np.concatenate([zs[i] for i in rest]), np.concatenate([ys[i] for i in rest])
        z_val, y_val = np.concatenate([zs[i] for i in fold]), np.concatenate([ys[i] for i in fold])
        evals, evecs = np.linalg.eigh(z_fit @ z_fit.T)
        errors += _path_errors(evals, evecs.T @ y_fit, (z_val @ z_fit.T) @ evecs, y_val, lambdas)
    return errors


def fit_ridge(
    feats: list[np.ndarray],
    curves: list[np.ndarray],
    valid: list[np.ndarray],
    groups: list[str],
    context: int,
    lambdas: tuple[float, ...] = LAMBDAS,
) -> RidgeMap:
    """Fit a ridge map on clips: (T, D) features, (T, C) curves and (T,) valid-frame masks per clip.

    Context is stacked over each whole clip, then only valid frames are fitted. ``groups`` (one per
    clip, e.g. the speaker) keep a group's clips in one fold of the penalty search; with one group
    the clips themselves are the folds; with one clip a fixed middle penalty is used.
    """
    xs = [with_context(np.asarray(f, np.float64), context)[v] for f, v in zip(feats, valid, strict=True)]
    ys = [np.asarray(c, np.float64)[v] for c, v in zip(curves, valid, strict=True)]
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    mean = x_all.mean(0)
    scale = x_all.std(0) + 1e-6
    y_mean = y_all.mean(0)
    del x_all, y_all
    zs = [(x - mean) / scale for x in xs]
    ys = [y - y_mean for y in ys]
    if len(set(groups)) < 2:
        groups = [str(i) for i in range(len(feats))]
    folds = _folds(groups) if len(feats) > 1 else []
    dual = sum(len(z) for z in zs) < len(mean)  # fewer frames than features: short manifests, wide context
    lam = float(lambdas[len(lambdas) // 2])
    if dual:
        errors = _search_dual(zs, ys, folds, lambdas) if len(folds) >= 2 else None
    else:
        errors, gram_all, cross_all = _search_primal(zs, ys, folds, lambdas)
    if errors is not None:
        lam = float(lambdas[int(np.argmin(errors))])
    if dual:
        z_all, y_all = np.concatenate(zs), np.concatenate(ys)
        weights = z_all.T @ np.linalg.solve(z_all @ z_all.T + lam * np.eye(len(z_all)), y_all)
    else:
        weights = np.linalg.solve(gram_all + lam * np.eye(len(mean)), cross_all)
    return RidgeMap(context, mean, scale, weights, y_mean, lam)


@dataclass
class TrainingBaselines:
    """What ``evaluate`` compares a model with, all from the model's training frames."""

    mean_pose: np.ndarray  # (C,)
    low: np.ndarray  # (C,) 5th percentile of each channel: the energy-jaw heuristic's closed mouth
    high: np.ndarray  # (C,) 95th percentile: its open mouth
    ridge: RidgeMap | None  # per frame (None: not fitted, e.g. an older checkpoint)
    ridge_context: RidgeMap | None  # ±k frames

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {k: getattr(self, k).astype(np.float32) for k in ("mean_pose", "low", "high")}
        for name in RIDGE_NAMES:
            fitted = getattr(self, name)
            if fitted is not None:
                out.update(fitted.to_arrays(name))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrainingBaselines:
        poses = [np.asarray(arrays[k], np.float64) for k in ("mean_pose", "low", "high")]
        maps = [RidgeMap.from_arrays(arrays, n) if f"{n}.params" in arrays else None for n in RIDGE_NAMES]
        return cls(*poses, *maps)


def fit_training_baselines(
    feats: list[np.ndarray], curves: list[np.ndarray], valid: list[np.ndarray], groups: list[str], context: int
) -> TrainingBaselines:
    """Mean pose, channel ranges and the two ridge maps from per-clip features, curves and valid-frame masks."""
    frames = np.concatenate([c[v] for c, v in zip(curves, valid, strict=True)]).astype(np.float64)
    low, high = np.percentile(frames, [5, 95], axis=0)
    per_frame = fit_ridge(feats, curves, valid, groups, 0)
    context_map = fit_ridge(feats, curves, valid, groups, context)
    return TrainingBaselines(frames.mean(0), low, high, per_frame, context_map)
