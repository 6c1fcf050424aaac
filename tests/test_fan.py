"""The fan backend on randomly initialised networks of face-alignment's real architectures (FAN-4 and
its depth ResNet), saved the way face-alignment's downloads are: finding and refusing files, the
crop and coordinates against face-alignment's own pipeline, a real clip through extraction, and FLAME
fitted to FAN's 68 points on the synthetic FLAME-layout model (tests/flame_standin.py). The real FAN
weights are the user's (MEDTALK_FAN_MODEL, or face-alignment's download in the torch hub cache)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medtalk_data.errors import ConfigError, MedtalkError

torch = pytest.importorskip("torch")
fa = pytest.importorskip("face_alignment")

from face_alignment.models import FAN, ResNetDepth  # noqa: E402

from medtalk_data.face.base import FaceObservation  # noqa: E402
from medtalk_data.face.fan.landmarker import DOWNLOAD_NAMES, FanLandmarker  # noqa: E402
from medtalk_data.face.fan.settings import FanSettings  # noqa: E402
from medtalk_data.face.flame.fitter import FLIP, ClipFlameFit, affine_camera, load_setup  # noqa: E402
from medtalk_data.face.flame.settings import FlameSettings  # noqa: E402
from medtalk_data.face.grid import FrameSample  # noqa: E402
from medtalk_data.face.ibug68 import MEDIAPIPE_FOR_IBUG68  # noqa: E402
from medtalk_data.face.pose import rotation_vector  # noqa: E402
from tests.flame_standin import make_standin, random_truth, render_ibug68, render_landmarks  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
USER_FAN = os.environ.get("MEDTALK_FAN_MODEL")  # read before the fixture below hides it
S, E = 10, 10


@pytest.fixture(autouse=True)
def no_user_files(monkeypatch, tmp_path):
    monkeypatch.delenv("MEDTALK_FAN_MODEL", raising=False)
    monkeypatch.delenv("MEDTALK_FAN_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torch hub cache
    monkeypatch.setenv("MEDTALK_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def fan_files(tmp_path_factory) -> dict[str, Path]:
    """Random FAN-4 and depth weights in face-alignment's file layouts (state dict; depth under
    'state_dict' with DataParallel's 'module.' prefix), under names of our own."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("fan")
    nets = {"fan": FAN(4), "depth": ResNetDepth()}
    for net in nets.values():
        for m in net.modules():  # random but not degenerate batch-norm statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(nets["fan"].state_dict(), folder / "fan4.pth.tar")
    torch.save({"state_dict": {f"module.{k}": v for k, v in nets["depth"].state_dict().items()}},
               folder / "depth.pth.tar")  # fmt: skip
    return {"fan": folder / "fan4.pth.tar", "depth": folder / "depth.pth.tar"}


def test_the_download_names_are_face_alignments_own():
    from face_alignment.api import models_urls

    urls = {"2D": models_urls["2DFAN-4"], "3D": models_urls["3DFAN-4"], "depth": models_urls["depth"]}
    assert {k: u.rsplit("/", 1)[1] for k, u in urls.items()} == DOWNLOAD_NAMES


def test_missing_weights_name_the_option_the_variable_the_cache_and_where_to_get_them(tmp_path):
    with pytest.raises(MedtalkError) as err:
        FanLandmarker(FanSettings())
    line = str(err.value)
    assert "--fan-model PATH or set $MEDTALK_FAN_MODEL" in line and "1adrianb/face-alignment" in line
    assert "hub/checkpoints/2DFAN4-11f355bf06.pth.tar" in line and "\n" not in line
    with pytest.raises(MedtalkError, match="not found"):
        FanLandmarker(FanSettings(model_path=str(tmp_path / "nope.pth.tar")))


def test_the_cached_download_is_found_and_a_damaged_one_refused(fan_files, tmp_path):
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copy(fan_files["fan"], cache / DOWNLOAD_NAMES["2D"])  # random weights: not the sha256 the name carries
    with pytest.raises(MedtalkError, match=r"2DFAN4-11f355bf06.pth.tar: damaged download .*11f355bf06"):
        FanLandmarker(FanSettings())
    # 3D asks for the depth network as well, after the landmark network
    shutil.copy(fan_files["fan"], cache / "renamed.pth.tar")
    with pytest.raises(MedtalkError, match=r"--fan-depth-model PATH or set \$MEDTALK_FAN_DEPTH_MODEL"):
        FanLandmarker(FanSettings(landmarks="3D", model_path=str(cache / "renamed.pth.tar")))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_files_that_are_not_fan_weights_are_refused(tmp_path):
    other = tmp_path / "other.pth.tar"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, other)
    with pytest.raises(MedtalkError, match=r"other.pth.tar: not FAN \(2DFAN4\) weights: .* unknown, e.g."):
        FanLandmarker(FanSettings(model_path=str(other)))
    tensor = tmp_path / "tensor.pth.tar"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(MedtalkError, match=r"tensor.pth.tar: not FAN \(2DFAN4\) weights \(holds a Tensor"):
        FanLandmarker(FanSettings(model_path=str(tensor)))
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    code = tmp_path / "code.pth.tar"
    code.write_bytes(pickle.dumps({"conv1.weight": Exploit()}))
    with pytest.raises(MedtalkError, match=r"code.pth.tar: not readable FAN \(2DFAN4\) weights"):
        FanLandmarker(FanSettings(model_path=str(code)))
    assert not marker.exists()


def _face_alignment_with(fan_files: dict[str, Path], tmp_path: Path, three_d: bool):
    """face-alignment's own FaceAlignment, loading the same random weights from its cache (no download:
    the files are there), with its 'folder' detector (boxes given, no detector weights)."""
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(fan_files["fan"], cache / DOWNLOAD_NAMES["3D" if three_d else "2D"])
    shutil.copy(fan_files["depth"], cache / DOWNLOAD_NAMES["depth"])
    kind = fa.LandmarksType.THREE_D if three_d else fa.LandmarksType.TWO_D
    return fa.FaceAlignment(kind, device="cpu", flip_input=False, face_detector="folder", compile=False)


@pytest.mark.parametrize("kind", ["2D", "3D"])
def test_points_equal_face_alignments_own_pipeline_on_the_box_of_the_tracked_face(fan_files, tmp_path, kind):
    """locate() = FaceAlignment.get_landmarks_from_image on the box of the MediaPipe points nearest the 68
    iBUG points: the same crop, heatmap decoding and (3D) depth, in our normalised coordinates."""
    rng = np.random.default_rng(0)
    width, height = 480, 360
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[:, :2] = rng.uniform([0.35, 0.3], [0.6, 0.75], size=(478, 2))
    ours = FanLandmarker(FanSettings(landmarks=kind, model_path=str(fan_files["fan"]),
                                     depth_model_path=str(fan_files["depth"])))  # fmt: skip
    got = ours.locate(image, landmarks)
    pts = landmarks[list(MEDIAPIPE_FOR_IBUG68), :2] * np.array([width, height])
    box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
    theirs = _face_alignment_with(fan_files, tmp_path, kind == "3D").get_landmarks_from_image(
        image, detected_faces=[box], return_landmark_score=True
    )
    points, scores = theirs[0][0], theirs[1][0]
    np.testing.assert_allclose(got[:, 0] * width, points[:, 0], atol=1e-3)
    np.testing.assert_allclose(got[:, 1] * height, points[:, 1], atol=1e-3)
    np.testing.assert_allclose(got[:, 3], scores, rtol=1e-4, atol=1e-5)
    if kind == "3D":
        np.testing.assert_allclose(got[:, 2] * width, points[:, 2], rtol=1e-4, atol=1e-4)
    else:
        assert np.isnan(got[:, 2]).all()
    tiny = landmarks.copy()
    tiny[:, :2] = 0.5
    assert ours.locate(image, tiny) is None  # no face to crop
    assert ours.summary.n_located == 1 and ours.summary.score_mean == pytest.approx(float(scores.mean()), rel=1e-4)


# --- FLAME fitted to FAN's points ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_standin(tmp_path_factory.mktemp("flame"))


def test_affine_start_recovers_a_known_head_rotation_and_scale():
    rng = np.random.default_rng(2)
    template = rng.normal(size=(51, 3)) * 0.05
    truth = Rotation.from_euler("xyz", [12, -30, 5], degrees=True).as_matrix()  # camera frame
    uv = 2.5 * (template @ truth.T)[:, :2] + np.array([0.6, 0.4])
    rotation, scale = affine_camera(template, uv[None])
    np.testing.assert_allclose(rotation[0], rotation_vector(FLIP @ truth @ FLIP), atol=1e-9)
    assert scale[0] == pytest.approx(2.5)


@pytest.mark.parametrize("mediapipe_start", [True, False])
def test_flame_fitted_to_fan_points_recovers_known_parameters(standin, mediapipe_start):
    """FAN-style 2-D points of the stand-in posed by known parameters (0.5 mm noise, yaw ±30°), fitted
    through the 51-point iBUG embedding; the head pose starts from MediaPipe's 3-D points of the same
    face (as in extraction) or, without them, from the affine 2-D start."""
    rng = np.random.default_rng(1)
    truth = random_truth(rng, 90, S, E, max_yaw_deg=30)
    aspect = 16 / 9
    fan = render_ibug68(standin, standin.ibug_embedding, truth, aspect, noise_mm=0.5, rng=rng)
    if mediapipe_start:
        mp = render_landmarks(standin, truth, aspect, noise_mm=1.0, rng=np.random.default_rng(7))
    else:
        mp = np.full((90, 478, 3), np.nan, np.float32)
    settings = FlameSettings(model_path=str(standin.pkl), embedding_path=str(standin.ibug_embedding), n_shape=S,
                             n_expression=E, landmarks="fan", window_frames=40)  # fmt: skip
    setup = load_setup(settings)
    assert setup.embedding.scheme == "ibug68" and len(setup.embedding.landmark_ids) == 51
    samples = [
        FrameSample(i / 30, i, i / 30, FaceObservation(mp[i], np.zeros(52, np.float32), np.eye(4), fan=f), 1, True)
        for i, f in enumerate(fan)
    ]
    samples[30] = FrameSample(1.0, 30, 1.0, FaceObservation(mp[30], np.zeros(52, np.float32), np.eye(4)), 1, True)
    fit = ClipFlameFit(setup, aspect=aspect)
    out = []
    for i in range(0, len(samples), 7):
        out += fit.push(samples[i : i + 7])
    out += fit.finish()
    assert out[30].flame is None  # a face FAN did not locate is not fitted
    keep = [i for i in range(90) if i != 30]

    def got(name):
        return np.stack([getattr(out[i].flame, name) for i in keep])

    assert np.median([out[i].flame.residual_mm for i in keep]) < 1.2
    rot_err = np.rad2deg(np.abs(got("global_pose") - truth.rotation[keep]))
    assert rot_err.mean() < (2.0 if mediapipe_start else 3.5), rot_err.mean(axis=0)
    assert np.corrcoef(got("jaw_pose")[:, 0], truth.jaw[keep, 0])[0, 1] > 0.9
    expr = got("expression")
    assert np.mean([np.corrcoef(expr[:, i], truth.expression[keep, i])[0, 1] for i in range(E)]) > 0.8
    assert np.corrcoef(fit.identity, truth.shape)[0, 1] > 0.8
    np.testing.assert_allclose(got("camera")[:, 0], truth.scale[keep], rtol=0.1)
    assert fit.metadata()["landmarks"] == "fan" and fit.summary().embedding == "ibug68"


def test_each_landmark_source_asks_for_its_own_embedding(standin):
    with pytest.raises(MedtalkError, match=r"ibug68 embedding; face.flame.landmarks mediapipe .*mediapipe_landmark_"):
        load_setup(FlameSettings(model_path=str(standin.pkl), embedding_path=str(standin.ibug_embedding)))
    with pytest.raises(MedtalkError, match=r"mediapipe embedding; .*landmarks fan fits FAN's 68.*flame_static_embed"):
        load_setup(FlameSettings(model_path=str(standin.pkl), embedding_path=str(standin.embedding), landmarks="fan"))
    from medtalk_data.settings import ExtractSettings

    settings = ExtractSettings()
    settings.face.backends = ["mediapipe", "flame"]
    settings.face.flame.landmarks = "fan"
    with pytest.raises(ConfigError, match=r"landmarks: fan needs the fan backend too"):
        settings.validate()


# --- through extraction ----------------------------------------------------------------------------------


def _short_real_clip(tmp_path: Path) -> Path:
    from tests.media_factory import read_rgb, write_video

    source = SHARED / "video_noaudio" / "mead_W011_front_neutral_level1_001.mp4"
    if not source.is_file():
        pytest.skip(f"{source} missing")
    (tmp_path / "v").mkdir()
    frames_rgb, fps = read_rgb(source, max_frames=20)  # FAN-4 costs ~0.5 s a frame on 2 cores
    return write_video(tmp_path / "v" / "mead_w011_short.mp4", frames_rgb, fps)


@pytest.mark.slow
def test_extract_with_fan_and_flame_fitted_to_its_points(fan_files, standin, tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli
    from medtalk_data.face.frames import read_frames
    from medtalk_data.io.media import iter_frames, probe

    clip = _short_real_clip(tmp_path)
    out = tmp_path / "out"
    config = tmp_path / "flame.yaml"
    config.write_text(f"face:\n  flame:\n    n_shape: {S}\n    n_expression: {E}\n    iterations_fan: 30\n")
    args = ["extract", str(tmp_path / "v"), "--out", str(out), "--stages", "face", "--no-progress", "--config",
            str(config), "--face-backend", "fan,flame", "--fan-model", str(fan_files["fan"]), "--flame-landmarks",
            "fan", "--flame-model", str(standin.pkl), "--flame-embedding", str(standin.ibug_embedding)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    folder = out / "clips" / clip.stem
    frames = read_frames(folder / "frames.parquet")
    assert frames.fan_landmarks.shape == (len(frames.time_s), 68, 3) and frames.fan_scores.shape[1] == 68
    face = frames.face_found | frames.interpolated
    assert np.isfinite(frames.fan_landmarks[face][..., :2]).all() and np.isnan(frames.fan_landmarks[..., 2]).all()
    assert np.isnan(frames.fan_landmarks[~face]).all() and np.isfinite(frames.fan_scores[face]).all()
    status = json.loads((folder / "status.json").read_text())
    assert status["face"]["backends"] == ["mediapipe", "fan", "flame"]
    assert status["fan"]["n_located"] == int(frames.face_found.sum()) and status["fan"]["landmarks"] == "2D"
    assert frames.flame is not None and frames.flame.fitted.sum() == face.sum()
    assert frames.flame.metadata["landmarks"] == "fan" and status["flame"]["embedding"] == "ibug68"
    assert "FAN score" in CliRunner().invoke(cli, ["status", str(out)]).output
    # the time base: grid row k holds FAN's points on the decoded frame it came from
    ours = FanLandmarker(FanSettings(model_path=str(fan_files["fan"])))
    wanted = {int(frames.source_frame[k]): k for k in (0, len(frames.time_s) // 2) if frames.face_found[k]}
    for decoded in iter_frames(clip, probe(clip).nominal_fps):
        if decoded.index in wanted:
            k = wanted[decoded.index]
            points = ours.locate(decoded.rgb, frames.landmarks[k])
            np.testing.assert_allclose(frames.fan_landmarks[k, :, :2], points[:, :2], atol=1e-6)
    assert wanted


def test_extract_without_fan_weights_stops_before_any_clip_with_one_line(tmp_path):
    from click.testing import CliRunner

    from medtalk_cli.data import cli

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "clip.mp4").write_bytes(b"not read")
    result = CliRunner().invoke(cli, ["extract", str(tmp_path / "v"), "--out", str(tmp_path / "o"), "--stages",
                                      "face", "--face-backend", "fan", "--no-progress"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--fan-model PATH or set $MEDTALK_FAN_MODEL" in result.output
    assert not (tmp_path / "o" / "clips").exists() or not any((tmp_path / "o" / "clips").iterdir())


def test_real_fan_weights_when_the_user_has_them(tmp_path):
    if not USER_FAN:
        pytest.skip("MEDTALK_FAN_MODEL is not set: face-alignment's weights are the user's (see README)")
    ours = FanLandmarker(FanSettings(model_path=USER_FAN))
    clip = _short_real_clip(tmp_path)
    from medtalk_data.face import create_fitter
    from medtalk_data.io.media import iter_frames, probe

    tracker = create_fitter("mediapipe")
    decoded = next(iter(iter_frames(clip, probe(clip).nominal_fps)))
    face = tracker.detect(decoded.rgb, 0)[0]
    points = ours.locate(decoded.rgb, face.landmarks)
    # real FAN agrees with MediaPipe's nearest points to within a few percent of the frame
    assert np.abs(points[17:, :2] - face.landmarks[list(MEDIAPIPE_FOR_IBUG68[17:]), :2]).mean() < 0.03
