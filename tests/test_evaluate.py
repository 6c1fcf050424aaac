"""Metrics pinned by hand-computed examples; `evaluate` on a real manifest with a model trained in the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_models.metrics import eie, fdd, frd, lip_sync, lve, mee, mle


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
    args = ["evaluate", "-k", str(run_dir), "-m", str(training_manifest), "--split", "val"]
    out = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "e.json"), "--markdown", str(tmp_path / "e.md")])
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "e.json").read_text())
    print((tmp_path / "e.md").read_text())
    s = report["summary"]
    assert report["clips"] >= 1 and set(s) == {"model", "mean_pose", "energy_jaw", "shuffled_gt"}
    assert s["model"]["MLE"] < s["mean_pose"]["MLE"]
    assert s["model"]["MLE"] < s["shuffled_gt"]["MLE"]
    assert np.isfinite(s["model"]["LVE"]) and np.isfinite(s["model"]["FDD"])
    assert "| model |" in (tmp_path / "e.md").read_text()
    bad = CliRunner().invoke(cli, ["evaluate", "-k", str(run_dir), "-m", str(training_manifest), "--split", "nope"])
    assert bad.exit_code == 2 and "no clip of split 'nope'" in bad.output
