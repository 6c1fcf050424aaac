"""train.output_offset: each channel's mean error on the training speech, stored after stage 3 and added to
every animation before the pause bridge (medtalk_models/calibrate.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtalk_models.checkpoint import load_meta


def _speaking_errors(run: Path, manifest_path: Path, offset: np.ndarray | None) -> np.ndarray:
    """Mean (real − animated) per channel over the speaking, tracked frames of the training clips with audio,
    animated as animate does (unclipped, no pause bridge), with the given offset in place of the stored one."""
    from medtalk_data.manifest import load_manifest
    from medtalk_models.animate import Animator, EmotionControl
    from medtalk_models.data import TrainingData

    animator = Animator(run)
    try:
        if offset is not None:
            animator.output_offset = offset.astype(np.float32)
        cfg = dict(animator.cfg)
        cfg["data"] = {**cfg["data"], "window_frames": None}
        data = TrainingData(load_manifest(manifest_path), animator.rig, cfg, "train", {"audio"}, animator.backbones)
        errors = []
        for clip in data.clips:
            rows = slice(clip.start, clip.start + clip.length)
            label = animator.emotions[clip.emotion] if clip.emotion >= 0 else "neutral"
            result = animator.animate(data.audio_file(clip), EmotionControl(label), transcript=clip.transcript or None,
                                      rest_in_silence=False, clip_to_range=False)  # fmt: skip
            pred = result.on_frames(clip.length, animator.rig.fps, clip.audio_offset_s)
            use = data.valid[rows] & result.speech_on_frames(clip.length, animator.rig.fps, clip.audio_offset_s)
            errors.append(data.curves[rows][use] - pred[use])
        return np.concatenate(errors).mean(0)
    finally:
        animator.close()


def test_the_offset_takes_the_mean_error_off_the_training_speech(run_dir: Path, training_manifest: Path) -> None:
    meta = load_meta(run_dir / "model")
    offset = np.asarray(meta["output_offset"])
    assert offset.shape == (len(meta["rig"]["channel_names"]),) and np.isfinite(offset).all()
    # stage 4 trains only the image and text maps, so the final model's label path is the one calibrated
    without = _speaking_errors(run_dir, training_manifest, np.zeros_like(offset))
    with_offset = _speaking_errors(run_dir, training_manifest, None)
    print(f"largest mean error on the training speech: {np.abs(without).max():.4f} -> {np.abs(with_offset).max():.6f}")
    assert np.abs(without).max() > 5e-3  # the uncalibrated levels are off
    np.testing.assert_allclose(with_offset, 0.0, atol=1e-4)  # the stored offset is exactly that error
    np.testing.assert_allclose(without, offset, atol=1e-4)


def test_the_offset_is_on_in_the_small_preset_and_off_in_the_official_one() -> None:
    from medtalk_models.config import load_config

    assert load_config(base="paper")["train"]["output_offset"] is False
    assert load_config(base="small")["train"]["output_offset"] is True
