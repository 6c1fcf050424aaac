"""`medtalk-models train` on a manifest built from real clips during the test run."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.manifest import load_manifest
from medtalk_models.animate import EmotionControl
from medtalk_models.checkpoint import load_meta, load_model_weights
from medtalk_models.config import load_config
from medtalk_models.data import TrainingData, manifest_rig
from medtalk_models.model import MEDTalk, ModelDims
from medtalk_models.rig import RigSpec
from medtalk_models.train import train

from .conftest import edited_manifest, small_cfg

pytestmark = pytest.mark.realdata


def log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_stage_loss_falls(run_dir: Path) -> None:
    rows = log_rows(run_dir)
    for stage in ("disentangle", "audio_content", "intensity", "emotion_control"):
        losses = [float(r["loss"]) for r in rows if r["stage"] == stage and r["split"] == "train"]
        assert len(losses) >= 40, stage
        first, last = np.mean(losses[:5]), np.mean(losses[-5:])
        assert last < 0.7 * first, f"{stage}: training loss {first:.4g} → {last:.4g}"
        val = [r for r in rows if r["stage"] == stage and r["split"] == "val"]
        assert val and all(r["mouth_mae"] and r["upper_mae"] for r in val), stage
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    meta = load_meta(run_dir / "model")
    assert meta["stages_done"] == ["disentangle", "audio_content", "intensity", "emotion_control"]
    assert meta["rig"]["name"] == "mediapipe52" and meta["rig"]["fps"] == 25.0
    assert (run_dir / "config.yaml").is_file() and (run_dir / "rig.json").is_file()


def _load(run: Path) -> tuple[MEDTalk, RigSpec]:
    meta = load_meta(run / "model")
    model = MEDTalk(ModelDims(**meta["dims"]))
    load_model_weights(run / "model", model)
    return model.eval(), RigSpec.from_dict(meta["rig"])


def test_checkpoint_round_trip_without_pickle(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a checkpoint must never be unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    a, _ = _load(run_dir)
    b, _ = _load(run_dir)
    x = torch.rand(2, 20, 52)
    torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x), rtol=0, atol=0)
    assert load_meta(run_dir / "disentangle")["config"]["model"]["emotions"][0] == "angry"


def test_swapping_latents_moves_the_right_face_regions(run_dir: Path, training_manifest: Path) -> None:
    """Held-out speaker (W009, val split): swapping the emotion code with another clip changes the
    upper face much more than the mouth; swapping the content code does the reverse. Changes are
    measured per channel in units of that channel's spread, over channels that move at all."""
    model, rig = _load(run_dir)
    m = load_manifest(training_manifest)
    mead = [c for c in m.clip_ids() if c.startswith("mead_W009")]
    talking = [c for c in m.clip_ids() if not c.startswith("mead")]
    curves = {c: np.nan_to_num(m.curves(c)) for c in mead + talking}
    spread = np.concatenate(list(curves.values())).std(0)
    mouth = [i for i in rig.indices("mouth") if spread[i] > 0.02]
    upper = [i for i in rig.indices("upper") if spread[i] > 0.02]
    ratios = []
    for a in mead:
        for b in talking:
            n = min(len(curves[a]), len(curves[b]))
            xa, xb = torch.tensor(curves[a][None, :n]), torch.tensor(curves[b][None, :n])
            with torch.no_grad():
                ea, ca, eb, cb = (
                    model.emotion_code(xa),
                    model.cont_encoder(xa),
                    model.emotion_code(xb),
                    model.cont_encoder(xb),
                )
                base = model.decode(ea, ca)
                emo_swap = ((model.decode(eb, ca) - base).abs()[0].numpy() / (spread + 1e-6)).mean(0)
                cont_swap = ((model.decode(ea, cb) - base).abs()[0].numpy() / (spread + 1e-6)).mean(0)
            ratios.append(
                (emo_swap[upper].mean() / emo_swap[mouth].mean(), cont_swap[mouth].mean() / cont_swap[upper].mean())
            )
    emotion_ratio, content_ratio = np.median(np.array(ratios), axis=0)
    print(f"emotion swap upper/mouth {emotion_ratio:.2f}, content swap mouth/upper {content_ratio:.2f}")
    # measured 2.1 and 2.3 with this config (seed 0, CPU); the official per-frame emotion code without
    # window pooling reaches only about 1.0 on real (not synthetic) pairs
    assert emotion_ratio > 1.5
    assert content_ratio > 1.5


def test_resume_continues_exactly(training_manifest: Path, tmp_path: Path) -> None:
    cfg = small_cfg(epochs_per_phase=1, epochs=2)
    cfg["train"]["save_every"] = 7
    full = train(training_manifest, cfg, tmp_path / "a", "all", progress=False)
    assert not full.stopped_early
    first = train(training_manifest, cfg, tmp_path / "b", "all", progress=False, max_steps=23)
    assert first.stopped_early
    train(training_manifest, cfg, tmp_path / "b", "all", progress=False, resume=True, max_steps=9)
    train(training_manifest, cfg, tmp_path / "b", "all", progress=False, resume=True)
    a = [(r["stage"], r["step"], r["split"], r["loss"], r["terms"]) for r in log_rows(tmp_path / "a")]
    b = [(r["stage"], r["step"], r["split"], r["loss"], r["terms"]) for r in log_rows(tmp_path / "b")]
    assert len(a) > 30 and a == b
    wa, _ = _load(tmp_path / "a")
    wb, _ = _load(tmp_path / "b")
    for (k, va), vb in zip(wa.state_dict().items(), wb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_existing_run_folder_needs_resume_or_overwrite(run_dir: Path, training_manifest: Path) -> None:
    with pytest.raises(MedtalkError, match="pass --resume"):
        train(training_manifest, small_cfg(), run_dir, "disentangle", progress=False)


def test_another_rig_is_refused(run_dir: Path, training_manifest: Path, emoface_manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match=r"trained on rig 'mediapipe52' \(52 channels\).*'metahuman174' \(174\)"):
        train(emoface_manifest, small_cfg(), run_dir, "all", progress=False, resume=True)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "rig.json").unlink()
    for later in ("intensity", "emotion_control"):
        shutil.rmtree(copy / later)
    with pytest.raises(MedtalkError, match="checkpoint for rig 'mediapipe52'"):
        train(emoface_manifest, small_cfg(), copy, "intensity", progress=False)
    cfg = small_cfg()
    cfg["rig"]["expect"] = "metahuman174"
    with pytest.raises(MedtalkError, match="build the manifest with `--rig metahuman174`"):
        train(training_manifest, cfg, tmp_path / "x", "disentangle", progress=False)


def test_paper_config_trains_the_174_channel_rig(emoface_manifest: Path, tmp_path: Path, caplog) -> None:
    """The official hyper-parameters: whole clips, batch 1, 60 fps, sequential phases; the single
    EmoFace clip has no same-sentence partner, so the content exchange is skipped with a warning."""
    cfg = load_config(base="paper")
    with caplog.at_level(logging.WARNING):
        result = train(emoface_manifest, cfg, tmp_path / "paper", "all", progress=False, max_steps=40)
    assert "content-overlap phase is skipped" in caplog.text
    assert result.stopped_early
    meta = load_meta(tmp_path / "paper" / "disentangle")
    assert meta["rig"]["fps"] == 60.0 and len(meta["rig"]["channel_names"]) == 174
    assert meta["dims"]["fusion_dim"] == 768
    cfg["data"]["require_pairs"] = True
    with pytest.raises(MedtalkError, match="no content pairs"):
        train(emoface_manifest, cfg, tmp_path / "strict", "disentangle", progress=False)


def test_bad_clips_are_left_out_with_a_reason(training_manifest: Path, tmp_path: Path, caplog) -> None:
    cfg = small_cfg()
    target, half = "pcavs_input_00002", "pcavs_input_00010"

    def nan_frames(table: pa.Table) -> pa.Table:
        ids = np.asarray(table["clip_id"].to_pylist())
        curves = np.stack(table["curves"].to_numpy(zero_copy_only=False)).astype(np.float32)
        curves[ids == target] = np.nan  # a clip whose curves are all NaN
        rows = np.flatnonzero(ids == half)
        curves[rows[40:45]] = np.nan  # five bad frames in the middle of another
        flat = pa.FixedSizeListArray.from_arrays(pa.array(curves.reshape(-1)), curves.shape[1])
        return table.set_column(table.schema.get_field_index("curves"), table.schema.field("curves"), flat)

    def no_transcripts(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("transcript")
        return table.set_column(i, table.schema.field(i), pa.nulls(len(table), pa.string()))

    m = edited_manifest(training_manifest, tmp_path / "m", clips=no_transcripts, frames=nan_frames)
    manifest = load_manifest(m)
    rig = manifest_rig(manifest, cfg)
    with caplog.at_level(logging.WARNING):
        data = TrainingData(manifest, rig, cfg, "train", set())
    assert "no run of 32 frames without NaN/missing face" in data.excluded[target]
    clip = next(c for c in data.clips if c.clip_id == half)
    assert clip.runs == [(0, 40), (45, clip.length)]  # windows never cross the bad frames
    assert np.isfinite(data.curves).all()
    assert target in caplog.text

    cfg["data"]["window_frames"] = 400
    with pytest.raises(MedtalkError, match=r"no usable training clip.*shorter than a window"):
        train(m, cfg, tmp_path / "short", "disentangle", progress=False)

    cfg = small_cfg(1, 1)
    with caplog.at_level(logging.WARNING):
        train(m, cfg, tmp_path / "notext", "all", progress=False, max_steps=400)
    assert "have no transcript" in caplog.text


def test_a_transcript_the_text_encoder_cannot_read_trains_as_no_text(emoface_manifest: Path, caplog) -> None:
    """EmoFace speaks Mandarin: the words stage transcribes it, the English MiniLM must not read it silently."""
    from medtalk_models.backbones import build_backbones

    manifest = load_manifest(emoface_manifest)
    (row,) = manifest.rows()
    assert row.language == "zh" and sum("\u4e00" <= ch <= "\u9fff" for ch in row.transcript or "") >= 6
    cfg = small_cfg()
    backbones = build_backbones(cfg, needs={"text"})
    with caplog.at_level(logging.WARNING):
        data = TrainingData(manifest, manifest_rig(manifest, cfg), cfg, "train", {"text"}, backbones)
    assert "1 clip(s) have CJK transcripts" in caplog.text and "text.kind: hf" in caplog.text
    assert "trained on English text" in caplog.text
    np.testing.assert_array_equal(data.text_tokens[0], backbones.text.tokens(""))  # no text, as said


def test_cli_train(training_manifest: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["train", "--help"])
    assert out.exit_code == 0 and "Examples:" in out.output and "--resume" in out.output
    out = runner.invoke(cli, ["train", "--print-config"])
    assert out.exit_code == 0 and "window_frames: 32" in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  sead: 1\n")
    out = runner.invoke(cli, ["train", "--manifest", str(training_manifest), "--config", str(bad)])
    assert out.exit_code == 2 and "did you mean train.seed?" in out.output
    args = ["train", "--manifest", str(training_manifest), "--out", str(tmp_path / "r"), "--max-steps", "3"]
    out = runner.invoke(cli, [*args, "--stage", "disentangle"])
    assert out.exit_code == 0 and "stopped by --max-steps; continue with --resume" in out.output, out.output
    out = runner.invoke(cli, ["train", "--manifest", str(training_manifest), "--out", str(tmp_path / "r2"),
                              "--stage", "intensity"])  # fmt: skip
    assert out.exit_code == 2 and "train it first (--stage audio_content or --stage all)" in out.output


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(training_manifest: Path, tmp_path: Path) -> None:
    """The DDP path with the gloo backend: two ranks of batch B, gradients averaged, take the very steps
    of one process of batch B with grad_accum 2 (the same global batch); rank 0 alone writes."""
    from safetensors.numpy import load_file

    config = tmp_path / "ddp.yaml"
    config.write_text("stages:\n  disentangle:\n    epochs_per_phase: 1\n")
    accum = tmp_path / "accum.yaml"
    accum.write_text("stages:\n  disentangle:\n    epochs_per_phase: 1\n    grad_accum: 2\n")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "medtalk_cli.models", "train", "--manifest", str(training_manifest), "--out", str(out),
           "--stage", "disentangle", "--config", str(config), "--device", "cpu", "--max-steps", "4"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(training_manifest, load_config(accum), tmp_path / "one", "disentangle", progress=False, max_steps=4)
    ddp = load_file(out / "disentangle" / "model.safetensors")
    one = load_file(single.out / "disentangle" / "model.safetensors")
    assert ddp.keys() == one.keys()
    start = load_file(_initial_weights(training_manifest, tmp_path))
    moved = max(float(np.abs(one[k] - start[k]).max()) for k in one)
    assert moved > 1e-3  # four steps really changed the weights
    for k in one:  # a rank training on its own half (no averaging) ends elsewhere
        np.testing.assert_allclose(ddp[k], one[k], atol=1e-5, err_msg=k)
    steps = [int(r["step"]) for r in log_rows(out) if r["split"] == "train"]
    assert steps and steps[-1] == 4 and len(set(steps)) == len(steps)  # one writer: no row twice

    # resumed in one process (grad_accum 2: the same global batch), the two-rank run goes on at global batch 8,
    # exactly where the single process that did the same first four steps goes on
    for run in (out, single.out):
        train(training_manifest, load_config(accum), run, "disentangle", progress=False, max_steps=2, resume=True)
    ddp = load_file(out / "disentangle" / "model.safetensors")
    one = load_file(single.out / "disentangle" / "model.safetensors")
    for k in one:
        np.testing.assert_allclose(ddp[k], one[k], atol=1e-5, err_msg=k)
    assert [int(r["step"]) for r in log_rows(out) if r["split"] == "train"][-1] == 6


def _initial_weights(manifest: Path, tmp_path: Path) -> Path:
    """The weights before any step (the same seed initialises every rank and the single process alike)."""
    cfg = load_config()
    cfg["stages"]["disentangle"]["lr"] = 0.0
    cfg["stages"]["disentangle"]["epochs_per_phase"] = 1
    run = train(manifest, cfg, tmp_path / "init", "disentangle", progress=False, max_steps=1)
    return run.out / "disentangle" / "model.safetensors"


def test_other_backbones_train(training_manifest: Path, tiny_wav2vec2: Path, tiny_clip: Path, tmp_path: Path) -> None:
    """Every backbone slot by config: a log-mel network trained from scratch for content, a local
    wav2vec2-style folder for audio emotion, and a local CLIP for reference images and text."""
    cfg = small_cfg(epochs_per_phase=1, epochs=6)
    cfg["audio"]["content"].update(kind="logmel")
    cfg["model"]["audio_conv_kernel"] = 5
    cfg["audio"]["emotion"].update(kind="hf", path=str(tiny_wav2vec2), layer=1)
    cfg["text"].update(kind="clip", path=str(tiny_clip))
    cfg["image"].update(kind="clip", path=str(tiny_clip))
    result = train(training_manifest, cfg, tmp_path / "run", "all", progress=False)
    assert result.stages_done[-1] == "emotion_control"
    meta = load_meta(tmp_path / "run" / "model")
    assert meta["dims"]["content_feat_dim"] == 80 and meta["dims"]["emotion_feat_dim"] == 32
    assert meta["dims"]["image_dim"] == 16 and meta["dims"]["sentence_dim"] == 16
    rows = log_rows(tmp_path / "run")
    terms = [dict(t.split("=") for t in r["terms"].split(";")) for r in rows
             if r["stage"] == "audio_content" and r["split"] == "train"]  # fmt: skip
    # 1 - concordance with the real curves: falls only when the log-mel network starts to follow them (in these
    # 12 steps the plain-MSE term of the small preset hardly moves: the mean pose already explains most of it)
    ccc = [float(t["ccc"]) for t in terms]
    assert np.mean(ccc[-3:]) < np.mean(ccc[:3]) - 0.02, (ccc[:3], ccc[-3:])


def test_a_manifest_without_audio_trains_the_label_path_and_says_what_it_cannot(
    training_manifest: Path, tmp_path: Path, caplog
) -> None:
    def video_only(table: pa.Table) -> pa.Table:
        return table.filter(pa.compute.invert(table["has_audio"]))

    m = edited_manifest(training_manifest, tmp_path / "m", clips=video_only)
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        result = train(m, small_cfg(1, 1), out, "all", progress=False)
    assert result.skipped == ["audio_content"]
    assert result.stages_done == ["disentangle", "intensity", "emotion_control"]
    assert "stage audio_content: skipped: no clip of the manifest has audio" in caplog.text
    assert "intensity predictor is not trained" in caplog.text
    meta = json.loads((out / "model" / "meta.json").read_text())
    assert meta["intensity_predictor"]["trained_from_audio"] is False
    happy = meta["label_coverage"]["stages"]["intensity"]["happy"]
    assert happy["clips"] >= 1 and happy["with_audio"] == 0  # MEAD clips: video only
    with pytest.raises(MedtalkError, match=r"stage audio_content: no usable training clip.*clips with audio and faces"):
        train(m, small_cfg(1, 1), out, "audio_content", resume=True, progress=False)  # asked for alone: refused
    from medtalk_models.animate import check_request

    with pytest.raises(MedtalkError, match="animate needs at least disentangle \\+ audio_content"):
        check_request(out, Path(m) / "clips.parquet", EmotionControl("happy"))


def test_constant_curves_train_and_score_without_warnings(training_manifest: Path, tmp_path: Path) -> None:
    import warnings

    from medtalk_models.evaluate import evaluate

    def frozen_faces(table: pa.Table) -> pa.Table:
        curves = np.stack(table["curves"].to_numpy(zero_copy_only=False)).astype(np.float32)
        curves[:] = curves.mean(0)  # no channel ever moves
        column = pa.FixedSizeListArray.from_arrays(pa.array(curves.reshape(-1)), curves.shape[1])
        return table.set_column(table.schema.get_field_index("curves"), "curves", column)

    m = edited_manifest(training_manifest, tmp_path / "m", frames=frozen_faces)
    train(m, small_cfg(1, 1), tmp_path / "run", "all", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = evaluate(tmp_path / "run", m, "val", "cpu", emotion_speech=0)
    assert np.isnan(report["summary"]["model"]["r_mouth"])  # nothing moves: no correlation to report


def test_lip_residual_trains_and_animate_adds_it_to_the_mouth_only(training_manifest: Path, tmp_path: Path) -> None:
    """model.lip_residual (off in both presets): trained, stored, and added by animate to the mouth channels alone."""
    from medtalk_models.animate import Animator

    cfg = small_cfg(epochs_per_phase=1, epochs=1)
    cfg["model"]["lip_residual"] = True
    train(training_manifest, cfg, tmp_path / "lips", "all", progress=False)
    animator = Animator(tmp_path / "lips")
    try:
        model, mouth = animator.model, animator.rig.indices("mouth")
        assert model.lip_residual is not None and list(model.dims.lip_residual) == list(mouth)
        m = load_manifest(training_manifest)
        wav = m.audio_file(next(r for r in m.rows() if r.has_audio))
        # a given transcript: Whisper's temperature fallback samples, and its words (so the intensity of every
        # channel) may differ from one call to the next on the same audio
        said = "the same words both times"
        with_lips = animator.animate(wav, EmotionControl("neutral"), transcript=said).values
        residual, model.lip_residual = model.lip_residual, None
        without = animator.animate(wav, EmotionControl("neutral"), transcript=said).values
        model.lip_residual = residual
        moved = np.abs(with_lips - without).max(axis=0) > 1e-6
        assert moved.any() and set(np.flatnonzero(moved)) <= set(mouth)
    finally:
        animator.close()
