"""USD export: the face mesh with 52 ARKit blend shapes as a UsdSkel animation, the speech beside it.

Evaluated by USD's own UsdSkel (blend shapes, then the head joint), checked by USD's validators, and
opened in real Blender (the ``bpy`` wheel in ``.venv-blender``, which ``.ci/run`` creates; skipped
with the install line where it is absent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.io.wav import wav_format
from medtalk_data.rigs import ARKIT52
from medtalk_models.export.curves import Curves
from medtalk_models.export.npz import read_npz, write_npz
from medtalk_models.export_run import plan_export
from medtalk_models.render.basis import default_basis
from medtalk_models.render.gltf import read_glb
from medtalk_models.render.usd import read_usd, write_usd

pytest.importorskip("pxr", reason="pip install 'medtalk[usd]' (the Makefile installs it)")

REPO = Path(__file__).resolve().parents[1]
BLENDER_PYTHON = Path(os.environ.get("MEDTALK_BLENDER_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
FPS, N = 30.0, 90
FRAMES = (0, 37, 89)


def _head(t: np.ndarray) -> np.ndarray:
    return np.stack([5 * np.sin(t), 12 * np.sin(0.5 * t), 3 * np.sin(0.3 * t)], axis=1)  # pitch, yaw, roll (deg)


@pytest.fixture(scope="module")
def animation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(usd, npz) of the same 90 frames with a turning head; every ARKit channel moves, the jaw like speech."""
    out = tmp_path_factory.mktemp("usd")
    t = np.arange(N)[:, None] / FPS
    values = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + np.arange(len(ARKIT52))[None, :])
    values[:, ARKIT52.index("jawOpen")] = 0.4 * np.abs(np.sin(2 * np.pi * 3 * t[:, 0]))
    curves = Curves(values.astype(np.float32), list(ARKIT52), FPS)
    speech = out / "speech.audio.wav"
    with wave.open(str(speech), "wb") as fh:
        fh.setnchannels(1), fh.setsampwidth(2), fh.setframerate(16000)
        fh.writeframes(np.zeros(16000 * 3, np.int16).tobytes())
    usd = write_usd(out / "speech.usd", curves, head_rotation_deg=_head(t[:, 0]), audio=speech)
    return usd, write_npz(out / "speech.npz", curves)


def _rotation(pitch_yaw_roll_deg: np.ndarray) -> np.ndarray:
    """Column-vector rotation yaw (about y) · pitch (about x) · roll (about z), written out by hand."""
    p, y, r = np.radians(pitch_yaw_roll_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _expected_points(weights: np.ndarray, frame: int) -> np.ndarray:
    """neutral + Σ w·delta of the bundled basis (cm), turned by the frame's head rotation."""
    basis = default_basis()
    shape = basis.neutral.astype(np.float64).copy()
    for k, name in enumerate(ARKIT52):
        if name in basis.names:
            shape += weights[frame, k] * basis.deltas[basis.names.index(name)]
    return shape @ _rotation(_head(np.array([frame / FPS]))[0]).T


def test_the_file_reads_back_as_the_curves(animation: tuple[Path, Path]) -> None:
    usd, npz = animation
    back, curves = read_usd(usd), read_npz(npz)
    assert back.names == list(ARKIT52) and back.fps == FPS and back.n_frames == N
    np.testing.assert_array_equal(back.values, curves.values)


def test_usd_skel_poses_the_mesh_as_the_basis_and_head_rotation_say(animation: tuple[Path, Path]) -> None:
    from pxr import Usd, UsdGeom, UsdSkel

    usd, npz = animation
    stage = Usd.Stage.Open(str(usd))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 0.01
    assert stage.GetTimeCodesPerSecond() == FPS and (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0, N - 1)
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath("/Face"))
    cache.Populate(root, Usd.TraverseInstanceProxies())
    (binding,) = cache.ComputeSkelBindings(root, Usd.TraverseInstanceProxies())
    skeleton = cache.GetSkelQuery(binding.GetSkeleton())
    (target,) = binding.GetSkinningTargets()
    shapes = UsdSkel.BlendShapeQuery(UsdSkel.BindingAPI(target.GetPrim()))
    weights = read_npz(npz).values
    for frame in FRAMES:
        time = Usd.TimeCode(frame)
        points = UsdGeom.Mesh(target.GetPrim()).GetPointsAttr().Get()
        sub_weights, shape_ids, sub_ids = shapes.ComputeSubShapeWeights(
            target.GetBlendShapeMapper().Remap(skeleton.GetAnimQuery().ComputeBlendShapeWeights(time))
        )
        assert shapes.ComputeDeformedPoints(sub_weights, shape_ids, sub_ids, shapes.ComputeBlendShapePointIndices(),
                                            shapes.ComputeSubShapePointOffsets(), points)  # fmt: skip
        assert target.ComputeSkinnedPoints(skeleton.ComputeSkinningTransforms(time), points, time)
        np.testing.assert_allclose(np.asarray(points), _expected_points(weights, frame), atol=2e-4)  # cm


def test_usd_validators_find_no_error_and_the_speech_resolves(animation: tuple[Path, Path]) -> None:
    from pxr import Usd, UsdMedia, UsdValidation

    usd, _ = animation
    stage = Usd.Stage.Open(str(usd))
    registry = UsdValidation.ValidationRegistry()
    validators = [registry.GetOrLoadValidatorByName(m.name) for m in registry.GetAllValidatorMetadata()]
    assert len(validators) > 10
    errors = [e for e in UsdValidation.ValidationContext(validators).Validate(stage)
              if e.GetType() == UsdValidation.ValidationErrorType.Error]  # fmt: skip
    assert not errors, [e.GetMessage() for e in errors]
    speech = UsdMedia.SpatialAudio(stage.GetPrimAtPath("/Face/Speech"))
    asset = speech.GetFilePathAttr().Get()
    assert asset.path == "./speech.audio.wav" and Path(asset.resolvedPath) == usd.parent / "speech.audio.wav"


def test_blender_imports_52_shape_keys_and_the_turning_head(animation: tuple[Path, Path]) -> None:
    if not BLENDER_PYTHON.is_file():
        pytest.skip(f"real Blender check needs {BLENDER_PYTHON}: python3 -m venv .venv-blender && "
                    ".venv-blender/bin/pip install bpy==5.0.1 (what .ci/run does)")  # fmt: skip
    usd, npz = animation
    run = subprocess.run(
        [str(BLENDER_PYTHON), str(REPO / "tests" / "blender" / "check_usd.py"), str(usd), *map(str, FRAMES)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["meshes"] == 1 and report["vertices"] == 468 and report["armatures"] == 1
    assert report["shape_keys"] == ["Basis", *ARKIT52]
    assert report["frame_range"] == [0, N - 1]
    np.testing.assert_allclose(report["jaw_keyframes"], np.arange(N), atol=1e-3)  # one key per frame
    weights = read_npz(npz).values
    for frame in FRAMES:
        got = np.array([report["values"][str(frame)][name] for name in ARKIT52])
        np.testing.assert_allclose(got, weights[frame], atol=1e-3)
    # Blender's scene is Z-up in metres: one fixed similarity from USD's frame, fitted at frame 0 (head straight),
    # must then carry every frame's expected mesh (shape keys and the head joint) onto Blender's evaluated one
    world = {f: np.array(report["world_vertices"][str(f)]) for f in FRAMES}
    ours = {f: _expected_points(weights, f) for f in FRAMES}
    scale, rotation, shift = _similarity(ours[0], world[0])
    for frame in FRAMES:
        mapped = scale * ours[frame] @ rotation.T + shift
        assert np.abs(mapped - world[frame]).max() < 1e-5 * 10, frame  # 0.1 mm in Blender's metres
    assert abs(scale - 0.01) < 1e-6  # centimetres in the file (metersPerUnit 0.01) → metres in Blender


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama: scale, rotation, shift with target ≈ scale · R · source + shift."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s)
    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float((sigma * np.diag(d)).sum() / (s**2).sum())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def test_animate_writes_usd_and_glb_beside_one_speech_file(run_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    clip = shared_data / "video" / "pcavs_input_00098.mp4"
    args = ["animate", "-k", str(run_dir), "-a", str(clip), "--format", "usd,glb,npz", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    usd, npz = read_usd(tmp_path / "pcavs_input_00098.usd"), read_npz(tmp_path / "pcavs_input_00098.npz")
    np.testing.assert_allclose(usd.values, npz.select(ARKIT52).values, atol=1e-6)
    assert usd.fps == npz.fps
    from pxr import Usd, UsdMedia

    stage = Usd.Stage.Open(str(tmp_path / "pcavs_input_00098.usd"))
    asset = UsdMedia.SpatialAudio(stage.GetPrimAtPath("/Face/Speech")).GetFilePathAttr().Get()
    assert Path(asset.resolvedPath) == tmp_path / "pcavs_input_00098.audio.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pcavs_input_00098.audio.wav", "pcavs_input_00098.glb", "pcavs_input_00098.npz", "pcavs_input_00098.usd",
    ]  # fmt: skip
    glb = read_glb(tmp_path / "pcavs_input_00098.glb")
    np.testing.assert_allclose(glb.values, npz.select(ARKIT52).values, atol=1e-6)
    rate, channels, _width, n = wav_format(tmp_path / "pcavs_input_00098.audio.wav")
    assert (rate, channels) == (16000, 1) and abs(n / rate - glb.n_frames / glb.fps) < 0.1


def test_refusals_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MedtalkError, match="this rig has none"):
        plan_export(tmp_path, "x", ["exp_000", "exp_001", "jaw_x", "jaw_y", "jaw_z"], ["usd"])
    (tmp_path / "x.usd").write_text("")
    with pytest.raises(MedtalkError, match=r"x\.usd exists; pass --overwrite"):
        plan_export(tmp_path, "x", list(ARKIT52), ["usd"])
    with pytest.raises(MedtalkError, match="not a medtalk USD animation"):
        read_usd(tmp_path / "x.usd")
    with pytest.raises(MedtalkError, match="without frames"):
        write_usd(tmp_path / "y.usd", Curves(np.zeros((0, 52), np.float32), list(ARKIT52), FPS))
    assert not list(tmp_path.glob(".y.usd*"))  # nothing half-written
    monkeypatch.setitem(sys.modules, "pxr", None)  # as where usd-core is not installed
    with pytest.raises(MedtalkError, match=r"pip install 'medtalk\[usd\]'"):
        plan_export(tmp_path, "z", list(ARKIT52), ["usd"])
    with pytest.raises(MedtalkError, match=r"pip install 'medtalk\[usd\]'"):
        write_usd(tmp_path / "z.usd", Curves(np.zeros((3, 52), np.float32), list(ARKIT52), FPS))
