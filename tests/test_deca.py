"""The deca backend on a randomly initialised network of DECA's real architecture, saved in the layout
of DECA's ``deca_model.tar`` (E_flame, E_detail, D_detail): loading, refusals, the crop, the time base
and the output columns on a real clip. DECA's real weights are the user's (MEDTALK_DECA_MODEL)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.errors import MedtalkError

torch = pytest.importorskip("torch")

from medtalk_data.face.deca.encoder import DecaEncoder, deca_box  # noqa: E402
from medtalk_data.face.deca.network import DecaCoarseEncoder  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
USER_DECA = os.environ.get("MEDTALK_DECA_MODEL")  # read before the fixture below hides it


@pytest.fixture(autouse=True)
def no_user_model(monkeypatch):
    monkeypatch.delenv("MEDTALK_DECA_MODEL", raising=False)


@pytest.fixture(scope="module")
def deca_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = DecaCoarseEncoder()
    for m in net.modules():  # random but not degenerate batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("deca") / "deca_model.tar"
    torch.save(
        {"E_flame": net.state_dict(), "E_detail": {"w": torch.zeros(2)}, "D_detail": {"w": torch.zeros(2)}}, path
    )
    return path


def test_missing_file_names_option_variable_and_licence_page(tmp_path):
    for given, needle in ((None, "--deca-model PATH or set $MEDTALK_DECA_MODEL"), (tmp_path / "x.tar", "not found")):
        with pytest.raises(MedtalkError) as err:
            DecaEncoder(given)
        assert needle in str(err.value) and "deca.is.tue.mpg.de" in str(err.value) and "\n" not in str(err.value)


def test_files_that_are_not_decas_coarse_encoder_are_refused(tmp_path):
    other = tmp_path / "other.tar"
    torch.save({"E_flame": {"encoder.conv1.weight": torch.zeros(64, 3, 3, 3)}}, other)
    with pytest.raises(MedtalkError, match=r"other.tar: not DECA's coarse encoder in 'E_flame'.*encoder.conv1.weight"):
        DecaEncoder(other)
    no_encoder = tmp_path / "weights.tar"
    torch.save({"state_dict": {}}, no_encoder)
    with pytest.raises(MedtalkError, match=r"weights.tar: not DECA's deca_model.tar \(no 'E_flame'"):
        DecaEncoder(no_encoder)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    code = tmp_path / "code.tar"
    code.write_bytes(pickle.dumps({"E_flame": Exploit()}))
    with pytest.raises(MedtalkError, match=r"code.tar: not readable DECA model"):
        DecaEncoder(code)
    assert not marker.exists()


def test_the_crop_is_the_square_decas_landmark_rule_gives(deca_file):
    """encode() = the network on the 224 x 224 resampling of DECA's square box; checked against an
    independent crop of an image whose box falls on whole pixels (no interpolation either way)."""
    encoder = DecaEncoder(deca_file)
    landmarks = np.zeros((478, 3), np.float32)
    # box points at x 100..212 px, y 80..192 px of a 400 x 300 frame: a 112 px face → side 112·1.1·1.25 = 154 px
    landmarks[[234, 454, 152, 105, 334, 70, 300], 0] = np.array([100, 212, 156, 130, 180, 120, 190]) / 400
    landmarks[[234, 454, 152, 105, 334, 70, 300], 1] = np.array([136, 136, 192, 80, 80, 90, 90]) / 300
    cx, cy, side = deca_box(landmarks, 400, 300)
    assert (cx, cy) == pytest.approx((156, 136)) and side == pytest.approx(112 * 1.1 * 1.25)
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(56, 56, 3), dtype=np.uint8)
    frame = np.zeros((300, 400, 3), np.uint8)
    # a frame whose box is exactly 224 px: each crop pixel is one frame pixel
    landmarks2 = landmarks.copy()
    scale = 224 / side
    landmarks2[:, 0] = (landmarks[:, 0] * 400 - cx) * scale / 400 + 200 / 400
    landmarks2[:, 1] = (landmarks[:, 1] * 300 - cy) * scale / 300 + 150 / 300
    cx2, cy2, side2 = deca_box(landmarks2, 400, 300)
    assert side2 == pytest.approx(224, abs=1e-3) and (cx2, cy2) == pytest.approx((200, 150), abs=1e-3)
    frame[38:262, 88:312] = np.kron(small, np.ones((4, 4, 1), np.uint8))
    got = encoder.encode(frame, landmarks2)
    crop = torch.from_numpy(frame[38:262, 88:312]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = encoder.net(crop)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    tiny = landmarks.copy()
    tiny[..., :2] = 0.5
    assert encoder.encode(frame, tiny) is None  # a face under 8 px is not encoded


@pytest.mark.slow
def test_extract_with_deca_writes_its_columns_on_the_video_time_base(deca_file, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli
    from medtalk_data.face.frames import read_frames
    from medtalk_data.io.media import iter_frames, probe
    from tests.media_factory import read_rgb, write_video

    source = SHARED / "video_noaudio" / "mead_W011_front_neutral_level1_001.mp4"
    if not source.is_file():
        pytest.skip(f"{source} missing")
    (tmp_path / "v").mkdir()
    frames_rgb, fps = read_rgb(source, max_frames=24)  # a second of real video: DECA costs ~0.1 s a frame here
    clip = write_video(tmp_path / "v" / "mead_w011_short.mp4", frames_rgb, fps)
    out = tmp_path / "out"
    args = ["extract", str(tmp_path / "v"), "--out", str(out), "--stages", "face", "--no-progress",
            "--face-backend", "deca", "--deca-model", str(deca_file)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    folder = out / "clips" / clip.stem
    frames = read_frames(folder / "frames.parquet")
    assert frames.deca is not None
    widths = {k: v.shape[1] for k, v in frames.deca.items()}
    assert widths == {"deca_shape": 100, "deca_expression": 50, "deca_pose": 6, "deca_camera": 3}
    face = frames.face_found | frames.interpolated
    for values in frames.deca.values():
        assert np.isfinite(values[face]).all() and np.isnan(values[~face]).all()
    status = json.loads((folder / "status.json").read_text())
    assert status["face"]["backends"] == ["mediapipe", "deca"]
    assert status["deca"]["n_encoded"] == int(frames.face_found.sum()) and status["deca"]["seconds"] > 0
    # the time base: grid row k holds the encoding of the decoded frame it came from
    encoder = DecaEncoder(deca_file)
    info = probe(clip)
    wanted = {int(frames.source_frame[k]): k for k in (0, len(frames.time_s) // 2) if frames.face_found[k]}
    for decoded in iter_frames(clip, info.nominal_fps):
        if decoded.index in wanted:
            k = wanted[decoded.index]
            params = encoder.encode(decoded.rgb, frames.landmarks[k])
            np.testing.assert_allclose(frames.deca["deca_expression"][k], params[150:200], rtol=1e-4, atol=1e-4)
    assert wanted


def test_real_deca_weights_when_the_user_has_them():
    if not USER_DECA:
        pytest.skip("DECA's weights are not here: set MEDTALK_DECA_MODEL to your deca_model.tar to run this")
    encoder = DecaEncoder(USER_DECA)
    frame = np.full((256, 256, 3), 128, np.uint8)
    landmarks = np.random.default_rng(0).uniform(0.3, 0.7, size=(478, 3)).astype(np.float32)
    assert encoder.encode(frame, landmarks).shape == (236,)
