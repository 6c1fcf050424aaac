"""MEDTalk-style rig metrics and mesh metrics, on numpy arrays (one clip at a time).

The paper defines MLE, MEE, EIE and FRD (Eq. 15-18) but releases no evaluation code; the
reductions below are the ones in medtalk-spec §4.1, stated in each docstring so that numbers are
comparable between runs of this toolkit (never with the paper's table, which is on another rig and
test set). Channel groups come from the rig spec by name.
"""

from __future__ import annotations

import numpy as np

# MediaPipe face-mesh indices of the lips (outer and inner contours), for LVE
LIP_VERTICES = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
                78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)  # fmt: skip


def mle(pred: np.ndarray, gt: np.ndarray, mouth: list[int]) -> float:
    """Mean lip error: mean over frames and mouth channels of |pred − gt| (Eq. 15, average L1)."""
    return float(np.abs(pred[:, mouth] - gt[:, mouth]).mean())


def mee(pred: np.ndarray, gt: np.ndarray, emotion: list[int]) -> float:
    """Mean emotion error: the same over the emotion-region channels (Eq. 16)."""
    return float(np.abs(pred[:, emotion] - gt[:, emotion]).mean())


def intensity_curve(x: np.ndarray, idx: list[int], scale: float = 1.0) -> np.ndarray:
    """Int(x)_t = scale · Σ_{j in idx} |x_tj| (Eq. 8; the training target uses scale 0.1)."""
    return scale * np.abs(x[:, idx]).sum(axis=1)


def eie(pred: np.ndarray, gt: np.ndarray, idx: list[int], scale: float = 1.0) -> float:
    """Emotion intensity error: mean over frames of |Int(pred) − Int(gt)| (Eq. 17), unscaled by default."""
    return float(np.abs(intensity_curve(pred, idx, scale) - intensity_curve(gt, idx, scale)).mean())


def frd(pred: np.ndarray, gt: np.ndarray, upper: list[int], absolute: bool = False) -> float:
    """Upper-face rig deviation: mean over upper channels of std_t(gt) − std_t(pred), population std
    (Eq. 18, signed as printed: > 0 = the prediction moves less than the truth). ``absolute`` takes
    |·| per channel (our addition: signed values can cancel)."""
    diff = gt[:, upper].std(axis=0) - pred[:, upper].std(axis=0)
    return float(np.abs(diff).mean() if absolute else diff.mean())


def lve(pred_vertices: np.ndarray, gt_vertices: np.ndarray, lips: tuple[int, ...] = LIP_VERTICES) -> float:
    """Lip vertex error: per frame the largest *squared* L2 error over the lip vertices, averaged over
    frames (FaceFormer/CodeTalker's cal_metric and torchmetrics' LipVertexError); vertices (T, V, 3)
    in the mesh's units (cm² for the canonical mesh)."""
    err = ((pred_vertices[:, lips] - gt_vertices[:, lips]) ** 2).sum(axis=-1)
    return float(err.max(axis=1).mean())


def upper_face_vertices(neutral: np.ndarray) -> np.ndarray:
    """Canonical-mesh vertices above the nose bridge (landmark 6): brows, lids, forehead."""
    return np.flatnonzero(neutral[:, 1] >= neutral[6, 1])


def fdd(pred_vertices: np.ndarray, gt_vertices: np.ndarray, template: np.ndarray, upper: np.ndarray) -> float:
    """Upper-face dynamics deviation (CodeTalker): per upper vertex, the temporal std of its distance
    from the template, truth minus prediction, averaged over the upper vertices."""
    gt_motion = np.linalg.norm(gt_vertices[:, upper] - template[upper], axis=-1).std(axis=0)
    pred_motion = np.linalg.norm(pred_vertices[:, upper] - template[upper], axis=-1).std(axis=0)
    return float((gt_motion - pred_motion).mean())


def audio_envelope(wave_16k: np.ndarray, times_s: np.ndarray, half_window_s: float = 0.05) -> np.ndarray:
    """log-RMS of the audio over ±50 ms around each time (times on the audio's own axis)."""
    from .features import SAMPLE_RATE, frame_rms

    out = np.log(frame_rms(wave_16k, times_s, int(half_window_s * SAMPLE_RATE)) + 1e-8)
    return np.convolve(out, np.ones(3) / 3, mode="same")


def lip_sync(mouth_open: np.ndarray, envelope: np.ndarray, max_lag: int = 8) -> tuple[float, int]:
    """Best Pearson correlation of mouth opening with the audio envelope within ±max_lag frames,
    and that lag (> 0: the mouth follows the audio); NaN when the mouth does not move at all."""
    best, best_lag = float("nan"), 0
    for lag in range(-max_lag, max_lag + 1):
        a = mouth_open[lag:] if lag >= 0 else mouth_open[:lag]
        b = envelope[: len(envelope) - lag] if lag >= 0 else envelope[-lag:]
        n = min(len(a), len(b))
        r = pearson(a[:n], b[:n]) if n > 10 else float("nan")
        if np.isfinite(r) and not r <= best:  # "not <=" also replaces the initial NaN
            best, best_lag = r, lag
    return best, best_lag


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation in float64; NaN (without a warning) when either series is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    for x in (a, b):  # constant up to rounding (a tiled mean pose): no correlation is defined
        if len(x) == 0 or np.ptp(x) <= 1e-9 * max(float(np.abs(x).max()), 1e-30):
            return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float(np.clip((a * b).sum() / den, -1.0, 1.0))


MOVING_STD = 1e-4  # a ground-truth channel with less temporal std than this does not move: left out of r


def agreement(pred: np.ndarray, gt: np.ndarray, channels: list[int], max_lag: int = 3) -> tuple[float, int, float]:
    """How well predicted curves follow the real ones over a channel group, frame by frame.

    Returns ``(r, lag, amplitude)``: the mean Pearson r over the group's channels that move in the
    ground truth, at the one lag within ±``max_lag`` frames that maximises it (> 0: the prediction
    comes later than the truth), a predicted channel that stays flat counting as r 0; and
    ``sqrt(Σ var(pred) / Σ var(truth))`` over the same channels (1 = the real amount of motion). NaN when
    no channel of the group moves, r NaN when the prediction is flat in all of them.
    """
    moving = [c for c in channels if np.std(gt[:, c]) > MOVING_STD]
    if not moving or len(gt) <= 2 * max_lag + 10:
        return float("nan"), 0, float("nan")
    best, best_lag = float("nan"), 0
    for lag in range(-max_lag, max_lag + 1):
        p = pred[lag:] if lag >= 0 else pred[:lag]
        g = gt[: len(gt) - lag] if lag >= 0 else gt[-lag:]
        rs = np.array([pearson(p[:, c], g[:, c]) for c in moving])
        # a predicted channel that stays flat while the real one moves follows it not at all: r 0, not left out
        # (left out, a model that froze its hardest channels would score higher); a prediction flat in every
        # channel (the mean pose) has no r
        r = float(np.nan_to_num(rs, nan=0.0).mean()) if np.isfinite(rs).any() else float("nan")
        if np.isfinite(r) and not r <= best:
            best, best_lag = r, lag
    var_pred = float(np.var(pred[:, moving], axis=0).sum())
    var_gt = float(np.var(gt[:, moving], axis=0).sum())
    return best, best_lag, float(np.sqrt(var_pred / var_gt))
