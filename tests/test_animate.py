"""`medtalk-models animate` with a model trained during the test run, on real speech."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.io.wav import read_wav, write_wav
from medtalk_data.manifest import load_manifest
from medtalk_models.animate import Animator, EmotionControl
from medtalk_models.export.formats import read_any
from medtalk_models.metrics import audio_envelope, lip_sync

pytestmark = pytest.mark.realdata

HELD_OUT = "pcavs_audio_source_00373"  # a talking clip of the validation split, with its own jawOpen


@pytest.fixture(scope="module")
def animator(run_dir: Path):
    a = Animator(run_dir)
    yield a
    a.close()


def _manifest_wav(manifest: Path, clip_id: str) -> Path:
    m = load_manifest(manifest)
    return m.audio_file(next(r for r in m.rows() if r.clip_id == clip_id))


def test_real_speech_frames_names_and_lip_sync(animator: Animator, training_manifest: Path) -> None:
    wav = _manifest_wav(training_manifest, HELD_OUT)
    result = animator.animate(wav, EmotionControl("neutral"))
    with wave.open(str(wav)) as w:
        duration = w.getnframes() / w.getframerate()
    assert result.values.shape == (round(duration * 25.0), 52) and result.fps == 25.0
    assert result.names == list(animator.rig.channel_names) and np.isfinite(result.values).all()
    assert result.transcript and result.words
    jaw = result.values[:, result.names.index("jawOpen")]
    env = audio_envelope(read_wav(wav)[0], np.arange(len(jaw)) / 25.0)
    ours, _ = lip_sync(jaw, env)
    truth_curves = np.nan_to_num(load_manifest(training_manifest).curves(HELD_OUT))
    truth, _ = lip_sync(truth_curves[: len(env), result.names.index("jawOpen")], env[: len(truth_curves)])
    print(f"jawOpen vs audio envelope: model {ours:.2f}, ground truth {truth:.2f}")
    assert ours > 0.15 and ours > 0.5 * truth


def test_mouth_rests_in_silence(animator: Animator, training_manifest: Path, tmp_path: Path) -> None:
    speech, rate = read_wav(_manifest_wav(training_manifest, HELD_OUT))
    quiet = np.zeros(int(1.5 * rate), np.float32)
    padded = tmp_path / "padded.wav"
    write_wav(padded, np.concatenate([quiet, speech, quiet]), rate)
    result = animator.animate(padded, EmotionControl("neutral"))
    jaw = result.values[:, result.names.index("jawOpen")]
    edge = int(1.2 * 25)  # well inside the silent padding
    silent = np.concatenate([jaw[:edge], jaw[-edge:]])
    talking = jaw[result.speech]
    print(
        f"jawOpen silent {silent.mean():.3f} ± {silent.std():.3f}, speaking {talking.mean():.3f} ± {talking.std():.3f}"
    )
    assert not result.speech[:edge].any() and not result.speech[-edge:].any()
    assert silent.mean() < talking.mean() and silent.std() < 0.5 * talking.std()


def test_emotion_label_changes_the_upper_face_more(animator: Animator, training_manifest: Path) -> None:
    wav = _manifest_wav(training_manifest, HELD_OUT)
    happy = animator.animate(wav, EmotionControl("happy", 1.0)).values
    sad = animator.animate(wav, EmotionControl("surprise", 1.0)).values
    rig = animator.rig
    articulation = [i for i in rig.indices("mouth") if i not in set(rig.indices("emotion"))]
    upper = np.abs(happy - sad)[:, rig.indices("upper")].mean()
    mouth = np.abs(happy - sad)[:, articulation].mean()
    print(f"happy vs surprise: upper face {upper:.4f}, mouth articulation {mouth:.4f}")
    # measured on this fixture: 1.59x with one audio content map, 1.43x with the small preset's eight
    assert upper > 1.3 * mouth


def test_controls_and_bad_input(animator: Animator, training_manifest: Path, tmp_path: Path) -> None:
    wav = _manifest_wav(training_manifest, HELD_OUT)
    with pytest.raises(MedtalkError, match=r"unknown emotion 'bored'; this model knows: angry, disgust, fear"):
        animator.animate(wav, EmotionControl("bored"))
    with pytest.raises(MedtalkError, match=r"--intensity 1\.5"):
        animator.animate(wav, EmotionControl("happy", 1.5))
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0))
    with pytest.raises(MedtalkError, match="empty"):
        animator.animate(empty)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all" * 100)
    with pytest.raises(MedtalkError, match=r"junk\.mp3"):
        animator.animate(junk)
    curve = np.array([[0.0, 0.0], [10.0, 1.0]])
    ramp = animator.animate(wav, EmotionControl("angry", intensity_curve=curve), transcript="and again just come home")
    blend = animator.animate(wav, EmotionControl(blend={"happy": 0.7, "sad": 0.3}))
    text = animator.animate(wav, EmotionControl(text="a furious, shouting face"))
    assert ramp.info["emotion_source"] == "label" and ramp.transcript.startswith("and again")
    assert blend.info["emotion_source"] == "blend" and text.info["emotion_source"] == "text"
    assert ramp.values.shape == blend.values.shape == text.values.shape


def test_cli_animate_writes_every_format(run_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    stereo_mp3_like = shared_data / "video" / "retalking_face1.mp4"  # 44.1 kHz stereo AAC inside a video
    out = tmp_path / "anims"
    args = ["animate", "-k", str(run_dir), "-a", str(stereo_mp3_like), "--emotion", "happy", "--fps", "60",
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    stem = "retalking_face1"
    for suffix in (".arkit.csv", ".livelink.csv", ".npz", ".mp4", ".png"):
        assert (out / f"{stem}{suffix}").is_file(), suffix
    npz = read_any(out / f"{stem}.npz")
    csv = read_any(out / f"{stem}.arkit.csv")
    assert npz.fps == 60.0 and abs(npz.duration_s - 6.13) < 0.1
    np.testing.assert_allclose(csv.select(["jawOpen"]).values, npz.select(["jawOpen"]).values, atol=1e-5)
    import av

    with av.open(str(out / f"{stem}.mp4")) as container:
        kinds = sorted(s.type for s in container.streams)
        durations = [float(s.duration * s.time_base) for s in container.streams]
    assert kinds == ["audio", "video"] and max(durations) - min(durations) < 0.1
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = CliRunner().invoke(cli, [*args[:5], "--emotion", "bored", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "this model knows: angry" in bad.output
    txt = CliRunner().invoke(cli, [*args, "--overwrite", "--format", "txt"])
    assert txt.exit_code == 2 and "txt" in txt.output


def test_damaged_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir / "model", copy / "model")
    weights = copy / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(MedtalkError, match=r"damaged|truncated"):
        Animator(copy)
