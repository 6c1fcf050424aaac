"""Metrics pinned by hand-computed examples; `evaluate` on a real manifest with a model trained in the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_models.baselines import fit_ridge, ridge_solve, with_context
from medtalk_models.metrics import agreement, eie, fdd, frd, lip_sync, lve, mee, mle, pearson


def test_rig_metrics_by_hand() -> None:
    gt = np.array([[0.0, 1.0, 0.0], [0.0, 3.0, 2.0]])
    pred = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    # |diff| over channels 0,1: frame 0 → 1, 0; frame 1 → 0, 2 → mean 3/4
    assert mle(pred, gt, [0, 1]) == pytest.approx(0.75)
    assert mee(pred, gt, [2]) == pytest.approx(1.0)  # |0-0|, |0-2| → 1
    # Int = Σ|x| over channels 1,2: gt 1, 5; pred 1, 1 → |0|, |4| → 2; with the training scale 0.1 → 0.2
    assert eie(pred, gt, [1, 2]) == pytest.approx(2.0)
    assert eie(pred, gt, [1, 2], scale=0.1) == pytest.approx(0.2)
    # std_t: gt ch1 {1,3} → 1, ch2 {0,2} → 1; pred ch1 {1,1} → 0, ch2 {0,0} → 0 → (1 + 1)/2
    assert frd(pred, gt, [1, 2]) == pytest.approx(1.0)
    assert frd(gt, pred, [1, 2]) == pytest.approx(-1.0) and frd(gt, pred, [1, 2], absolute=True) == pytest.approx(1.0)


def test_pearson_by_hand() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # deviations a: -2 -1 0 1 2; b: -1 -2 1 0 2 → Σab = 8, Σa² = Σb² = 10 → r = 0.8
    assert pearson(a, np.array([2.0, 1.0, 4.0, 3.0, 5.0])) == pytest.approx(0.8)
    assert pearson(a, -3 * a + 1) == pytest.approx(-1.0)
    assert np.isnan(pearson(a, np.full(5, 0.3, np.float32)))  # constant: NaN, and no RuntimeWarning


def test_agreement_lag_and_amplitude_by_hand() -> None:
    t = np.arange(200)
    gt = np.stack([np.sin(t / 5.0), np.cos(t / 7.0), np.full(200, 0.2)], axis=1)  # channel 2 never moves
    late = np.roll(gt, 2, axis=0)  # the prediction comes 2 frames after the truth
    r, lag, amp = agreement(2.0 * late, gt, [0, 1, 2], max_lag=3)
    assert lag == 2 and r == pytest.approx(1.0, abs=1e-9)
    assert amp == pytest.approx(2.0, rel=0.02)  # twice the motion (the constant channel is left out)
    r, lag, amp = agreement(0.5 * gt, gt, [0], max_lag=3)
    assert (r, lag) == (pytest.approx(1.0), 0) and amp == pytest.approx(0.5)
    r, lag, amp = agreement(gt, gt, [2], max_lag=3)
    assert np.isnan(r) and np.isnan(amp)  # no moving channel in the group
    r, _, amp = agreement(np.tile(gt.mean(0), (200, 1)), gt, [0, 1], max_lag=3)
    assert np.isnan(r) and amp == pytest.approx(0.0, abs=1e-12)  # a mean pose: no correlation, no motion
    frozen = gt.copy()
    frozen[:, 1] = 0.0  # follows channel 0 exactly and never moves channel 1, which moves in the truth
    r, _, _ = agreement(frozen, gt, [0, 1], max_lag=3)
    assert r == pytest.approx(0.5, abs=1e-9)  # the frozen channel counts as r 0, it is not left out


def test_context_stacking_and_ridge_against_the_closed_form() -> None:
    feats = np.array([[0.0], [1.0], [2.0]])
    np.testing.assert_array_equal(with_context(feats, 1), [[0, 0, 1], [0, 1, 2], [1, 2, 2]])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    augmented = np.linalg.lstsq(np.vstack([x, np.sqrt(3.0) * np.eye(4)]), np.vstack([y, np.zeros((4, 2))]), rcond=None)
    np.testing.assert_allclose(ridge_solve(x, y, 3.0), augmented[0], atol=1e-10)  # argmin |xw-y|² + 3|w|²
    # the fitted map: standardised features, intercept, penalty chosen by leave-clips-out search
    w_true = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    clips_x = [rng.normal(size=(80, 4)) for _ in range(6)]
    clips_y = [cx @ w_true + 0.3 + 0.01 * rng.normal(size=(80, 2)) for cx in clips_x]
    valid = [np.ones(80, bool) for _ in clips_x]
    fitted = fit_ridge(clips_x, clips_y, valid, [f"s{i % 3}" for i in range(6)], context=0)
    assert fitted.lam <= 1.0  # almost noiseless: a small penalty wins
    x_all, y_all = np.concatenate(clips_x), np.concatenate(clips_y)
    z = (x_all - x_all.mean(0)) / (x_all.std(0) + 1e-6)
    expected = ridge_solve(z, y_all - y_all.mean(0), fitted.lam)
    np.testing.assert_allclose(fitted.weights, expected, atol=1e-8)
    np.testing.assert_allclose(fitted.predict(clips_x[0]), clips_y[0], atol=0.05)
    noisy = [rng.normal(size=(80, 2)) for _ in clips_x]  # targets unrelated to the features
    assert fit_ridge(clips_x, noisy, valid, ["a", "b", "c", "a", "b", "c"], context=1).lam >= 100.0


def test_ridge_with_fewer_frames_than_features_matches_the_closed_form() -> None:
    """Short manifests with wide context (Whisper's 384 × 7 stacked) are solved in the frames' space:
    the same weights as the feature-space closed form, the same penalty errors as its search."""
    from medtalk_models.baselines import LAMBDAS, _folds, _search_dual, _search_primal

    rng = np.random.default_rng(1)
    clips_x = [rng.normal(size=(12, 30)) for _ in range(4)]  # 48 frames, 30 × 3 = 90 stacked features
    clips_y = [cx[:, :2] * 2.0 + 0.1 * rng.normal(size=(12, 2)) for cx in clips_x]
    valid = [np.ones(12, bool) for _ in clips_x]
    fitted = fit_ridge(clips_x, clips_y, valid, ["a", "b", "c", "d"], context=1)
    x_all = np.concatenate([with_context(cx, 1) for cx in clips_x])
    y_all = np.concatenate(clips_y)
    z = (x_all - x_all.mean(0)) / (x_all.std(0) + 1e-6)
    np.testing.assert_allclose(fitted.weights, ridge_solve(z, y_all - y_all.mean(0), fitted.lam), atol=1e-8)
    zs, ys = np.split(z, 4), np.split(y_all - y_all.mean(0), 4)
    folds = _folds(["a", "b", "c", "d"])
    np.testing.assert_allclose(
        _search_dual(zs, ys, folds, LAMBDAS), _search_primal(zs, ys, folds, LAMBDAS)[0], rtol=1e-6
    )


def test_vertex_metrics_by_hand() -> None:
    gt = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, 1] = [3.0, 4.0, 0.0]  # error 5 at vertex 1 in frame 0
    pred[1, 2] = [0.0, 0.0, 2.0]  # error 2 at vertex 2 in frame 1
    assert lve(pred, gt, lips=(1, 2)) == pytest.approx(14.5)  # max squared error per frame 25, 4 → mean 14.5
    assert lve(pred, gt, lips=(2,)) == pytest.approx(2.0)  # vertex 2 only: 0, 4
    template = np.zeros((3, 3))
    gt_motion = np.zeros((2, 3, 3))
    gt_motion[1, 0] = [2.0, 0.0, 0.0]  # vertex 0 moves 0 → 2: std 1
    assert fdd(pred, gt_motion, template, np.array([0])) == pytest.approx(1.0)


def test_lve_agrees_with_torchmetrics() -> None:
    """Cross-check with torchmetrics' LipVertexError (torchmetrics >= 1.9, installed by the test extra)."""
    functional = pytest.importorskip("torchmetrics.functional.multimodal")
    import torch

    rng = np.random.default_rng(1)
    gt = rng.standard_normal((30, 468, 3)).astype(np.float32)
    pred = gt + 0.1 * rng.standard_normal((30, 468, 3)).astype(np.float32)
    lips = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
    theirs = float(functional.lip_vertex_error(torch.tensor(pred), torch.tensor(gt), lips))
    assert lve(pred, gt, lips=tuple(lips)) == pytest.approx(theirs, rel=1e-5)


def test_lip_sync_finds_the_lag() -> None:
    rng = np.random.default_rng(0)
    env = np.convolve(rng.standard_normal(200), np.ones(5) / 5, mode="same")
    mouth = np.roll(env, 3)  # the mouth follows the audio by 3 frames
    r, lag = lip_sync(mouth, env)
    assert lag == 3 and r > 0.95
    r, _ = lip_sync(np.ones(200), env)
    assert np.isnan(r)


@pytest.mark.realdata
def test_evaluate_beats_the_mean_pose(run_dir: Path, training_manifest: Path, tmp_path: Path) -> None:
    args = ["evaluate", "-k", str(run_dir), "-m", str(training_manifest), "--split", "val", "--emotion-speech", "1"]
    out = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "e.json"), "--markdown", str(tmp_path / "e.md")])
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "e.json").read_text())
    print((tmp_path / "e.md").read_text())
    s = report["summary"]
    assert report["clips"] >= 1
    assert set(s) == {"model", "ridge_context", "ridge", "energy_jaw", "mean_pose", "shuffled_gt"}
    assert s["model"]["MLE"] < s["mean_pose"]["MLE"]
    assert s["model"]["MLE"] < s["shuffled_gt"]["MLE"]
    for method in ("model", "ridge", "ridge_context", "energy_jaw"):
        assert -1 <= s[method]["r_jaw"] <= 1 and s[method]["amp_jaw"] > 0, method
    assert np.isnan(s["mean_pose"]["r_mouth"]) and s["mean_pose"]["amp_mouth"] == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(s["model"]["LVE"]) and np.isfinite(s["model"]["FDD"])
    assert "| model |" in (tmp_path / "e.md").read_text()
    channels = report["mouth_channel_r"]
    assert len(channels) == len(report["per_clip"][0]["mouth_channel_r"]["model"]) > 0
    assert all(set(v) == {"model", "ridge_context"} for v in channels.values())
    assert "Mouth channels, model r vs ridge ±k r — trails most:" in (tmp_path / "e.md").read_text()
    bad = CliRunner().invoke(cli, ["evaluate", "-k", str(run_dir), "-m", str(training_manifest), "--split", "nope"])
    assert bad.exit_code == 2 and "no clip of split 'nope'" in bad.output


def test_mouth_channel_summary_by_hand() -> None:
    from medtalk_models.evaluate import channel_gap_lines, mouth_channel_summary

    per_clip = [  # two clips; the second's jawForward did not move (NaN): its mean is the first clip's alone
        {"mouth_channel_r": {"model": [0.5, 0.1], "ridge_context": [0.2, 0.4]}},
        {"mouth_channel_r": {"model": [0.3, float("nan")], "ridge_context": [0.4, 0.6]}},
    ]
    channels = mouth_channel_summary(per_clip, ["jawOpen", "jawForward"])
    assert channels["jawOpen"] == pytest.approx({"model": 0.4, "ridge_context": 0.3})
    assert channels["jawForward"] == pytest.approx({"model": 0.1, "ridge_context": 0.5})
    line = channel_gap_lines(channels, count=1)[1]
    assert "trails most: jawForward 0.10 vs 0.50; leads most: jawOpen 0.40 vs 0.30." in line
    assert mouth_channel_summary([{"mouth_channel_r": {"model": [0.5]}}], ["jawOpen"]) == {"jawOpen": {"model": 0.5}}
    assert channel_gap_lines({"jawOpen": {"model": 0.5}}) == []  # no ridge: nothing to compare
    leads_only = channel_gap_lines({"jawOpen": {"model": 0.5, "ridge_context": 0.25}})[1]
    assert leads_only == "Mouth channels, model r vs ridge ±k r — leads most: jawOpen 0.50 vs 0.25."


@pytest.mark.realdata
def test_baselines_are_fitted_on_the_training_frames_and_stored(run_dir: Path, training_manifest: Path) -> None:
    from medtalk_models.animate import Animator
    from medtalk_models.baselines import TrainingBaselines
    from medtalk_models.checkpoint import load_extra
    from medtalk_models.data import TrainingData

    arrays = load_extra(run_dir / "model", "baselines")
    assert arrays is not None
    fitted = TrainingBaselines.from_arrays({k: v.numpy() for k, v in arrays.items()})
    animator = Animator(run_dir)
    try:
        train = TrainingData(load_manifest_for(training_manifest), animator.rig, animator.cfg, "train", {"audio"},
                             animator.backbones)  # fmt: skip
    finally:
        animator.close()
    frames = train.curves[train.valid]
    np.testing.assert_allclose(fitted.mean_pose, frames.mean(0), atol=1e-5)  # the stage-2 training frames' mean
    assert fitted.ridge.context == 0 and fitted.ridge_context.context == 3
    feats = np.asarray(train.feats["content"], np.float32)
    clip = train.clips[0]
    rows = slice(clip.start, clip.start + clip.length)
    pred = fitted.ridge_context.predict(feats[rows])
    assert pred.shape == (clip.length, animator.rig.dim) and np.isfinite(pred).all()


def load_manifest_for(path: Path):
    from medtalk_data.manifest import load_manifest

    return load_manifest(path)


@pytest.mark.realdata
def test_evaluate_a_manifest_of_other_speakers_and_refusals(
    run_dir: Path, training_manifest: Path, emoface_manifest: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from medtalk_models.evaluate import evaluate

    val_only = evaluate(run_dir, training_manifest, "val", "cpu", emotion_speech=0)
    everything = evaluate(run_dir, training_manifest, "all", "cpu", emotion_speech=0)
    assert everything["clips"] > val_only["clips"] >= 1 and everything["split"] == "all"
    other_rig = CliRunner().invoke(cli, ["evaluate", "-k", str(run_dir), "-m", str(emoface_manifest), "--split", "all"])
    assert other_rig.exit_code == 2 and "metahuman174" in other_rig.output and "mediapipe52" in other_rig.output
    speakers = {r["speaker"] for r in pq.read_table(training_manifest / "clips.parquet").to_pylist()}
    none = CliRunner().invoke(cli, ["evaluate", "-k", str(run_dir), "-m", str(training_manifest), "--split", "test"])
    assert none.exit_code == 2 and f"its {len(speakers)} speakers fill only the split(s)" in none.output
    assert "--split all" in none.output
