"""Mesh preview: canonical mesh, fitted blendshape basis, headless render, MP4 and curve plot, on real data."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.errors import MedtalkError
from medtalk_data.face.canonical_mesh import parse_geometry_metadata
from medtalk_data.face.head_frame import canonical_shapes
from medtalk_data.manifest.build import BuildOptions, build_manifest
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES
from medtalk_models.render import BlendshapeBasis, default_basis, fit_basis, load_canonical_mesh
from medtalk_models.render.basis import frame_size
from medtalk_models.render.build_basis import build_basis_from_extractions, main

# a short real talking clip that is NOT one of the five the shipped basis was fitted from
HELD_OUT_VIDEO = "video/pcavs_input_00002.mp4"
SPEECH_WAV = "audio/emotalk_ravdess_angry1.wav"
LOWER_LIP_CHIN = [14, 17, 18, 200, 199, 175, 152]
FOREHEAD = [10, 151, 9, 109, 338, 67, 297]


@pytest.fixture(scope="module")
def clip_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real clip extracted with the face stage (frames.parquet + status.json)."""
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings

    videos = tmp_path_factory.mktemp("render_videos")
    (videos / Path(HELD_OUT_VIDEO).name).symlink_to(shared_data / HELD_OUT_VIDEO)
    out = tmp_path_factory.mktemp("render_extracted")
    report = extract_videos(videos, out, settings=ExtractSettings(stages=["face"]), workers=1, progress=False)
    assert not report.failed
    (clip,) = (out / "clips").iterdir()
    return clip


@pytest.fixture(scope="module")
def frames(clip_dir: Path):
    from medtalk_data.face.frames import read_frames

    return read_frames(clip_dir / "frames.parquet")


def _basis_index(name: str) -> int:
    return list(MEDIAPIPE_BLENDSHAPES).index(name)


# -- mesh and basis ----------------------------------------------------------------------------------


def test_canonical_mesh_from_the_task_file() -> None:
    mesh = load_canonical_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.triangles.shape == (898, 3) and mesh.uv.shape == (468, 2)
    assert mesh.triangles.min() == 0 and mesh.triangles.max() == 467
    assert mesh.uv.min() >= 0.0 and mesh.uv.max() <= 1.0
    assert len(mesh.procrustes_ids) == len(mesh.procrustes_weights) > 10
    # centimetres, +y up: the chin (152) is ~17 cm below the forehead (10), the nose tip (1) in front
    assert 15 < mesh.vertices[10, 1] - mesh.vertices[152, 1] < 20
    assert mesh.vertices[1, 2] > mesh.vertices[10, 2]
    v, t = mesh.vertices, mesh.triangles
    normals = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert (normals[:, 2] > 0).mean() > 0.9  # counter-clockwise seen from the front


def test_geometry_parser_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_geometry_metadata(b"\x0a\x05ab")  # a length that runs past the end
    with pytest.raises(ValueError):
        parse_geometry_metadata(b"")


def test_default_basis_ships_and_zero_weights_give_the_neutral() -> None:
    basis = default_basis()
    assert basis.names == list(MEDIAPIPE_BLENDSHAPES)
    assert basis.deltas.shape == (52, 468, 3)
    np.testing.assert_allclose(basis.vertices(np.zeros(52)), basis.neutral)
    assert not basis.deltas[_basis_index("_neutral")].any()
    prov = basis.provenance
    assert len(prov["clips"]) == 5 and prov["frames"] > 500 and 0 < prov["fit_residual_cm"] < 0.3
    assert prov["held_out"]["basis_cm"] < prov["held_out"]["neutral_cm"]
    asset = Path(__file__).resolve().parents[1] / "medtalk_models" / "assets" / "blendshape_basis.npz"
    assert asset.stat().st_size < 2_000_000


def test_jaw_open_moves_lower_lip_and_chin_down_not_the_forehead() -> None:
    delta = default_basis().deltas[_basis_index("jawOpen")]
    down = -delta[LOWER_LIP_CHIN, 1].mean()
    forehead = np.linalg.norm(delta[FOREHEAD], axis=1).mean()
    assert down > 0.8  # cm at jawOpen = 1
    assert down > 4 * forehead


def test_basis_reproduces_a_held_out_clip_better_than_the_neutral(clip_dir: Path, frames) -> None:
    basis = default_basis()
    assert clip_dir.name not in basis.provenance["clips"]
    keep = frames.face_found & ~frames.interpolated
    shapes = canonical_shapes(frames.landmarks[keep], load_canonical_mesh(), *frame_size(clip_dir))
    predicted = basis.vertices(frames.blendshapes[keep])
    err_basis = np.linalg.norm(predicted - shapes, axis=-1).mean()
    err_neutral = np.linalg.norm(basis.neutral - shapes, axis=-1).mean()
    assert err_basis < 0.9 * err_neutral
    # the expression part: with the person's own mean face as the neutral, on lips, chin and jaw
    v = load_canonical_mesh().vertices
    lower = (v[:, 1] < -2.5) & (np.abs(v[:, 0]) < 4.0)
    same_identity = predicted + (shapes - predicted).mean(axis=0)
    err_expr = np.linalg.norm(same_identity - shapes, axis=-1)[:, lower].mean()
    err_mean = np.linalg.norm(shapes.mean(axis=0) - shapes, axis=-1)[:, lower].mean()
    assert err_expr < 0.9 * err_mean


def test_fit_save_load_roundtrip(clip_dir: Path, frames, tmp_path: Path) -> None:
    basis = fit_basis([frames], frame_sizes=[frame_size(clip_dir)])
    prov = basis.provenance
    assert prov["clips"] == [clip_dir.name] and prov["frames"] == int((frames.face_found & ~frames.interpolated).sum())
    assert 0 < prov["fit_residual_cm"] < 0.3
    path = tmp_path / "basis.npz"
    basis.save(path)
    loaded = BlendshapeBasis.load(path)
    assert loaded.names == basis.names and loaded.provenance == prov
    weights = frames.blendshapes[frames.face_found][:20]
    np.testing.assert_allclose(loaded.vertices(weights), basis.vertices(weights), atol=5e-3)  # float16 deltas
    with pytest.raises(MedtalkError, match="not a readable blendshape basis"):
        BlendshapeBasis.load(tmp_path / "missing.npz")


def test_build_from_extraction_folder_and_manifest(clip_dir: Path, tmp_path: Path, capsys) -> None:
    extraction = clip_dir.parent.parent
    from_folder = build_basis_from_extractions([extraction])
    without = build_manifest([extraction], tmp_path / "plain", options=BuildOptions(min_duration_s=0.0)).out_dir
    with pytest.raises(MedtalkError, match="built without landmarks"):
        build_basis_from_extractions([without])
    copy = shutil.copytree(extraction, tmp_path / "copy")
    opts = BuildOptions(min_duration_s=0.0, landmarks=True)
    manifest = build_manifest([copy], tmp_path / "built", options=opts).out_dir
    shutil.rmtree(copy)  # the manifest alone, moved: no extraction folder is read
    from_manifest = build_basis_from_extractions([shutil.move(manifest, tmp_path / "moved")])
    np.testing.assert_allclose(from_manifest.deltas, from_folder.deltas, atol=1e-6)
    with pytest.raises(MedtalkError, match="neither an extraction folder"):
        build_basis_from_extractions([tmp_path])
    out = tmp_path / "b.npz"
    assert main([str(out), str(extraction)]) == 0
    assert out.is_file() and "fit_residual_cm" in capsys.readouterr().out


# -- rendering, video, plot --------------------------------------------------------------------------


def test_renderer_draws_the_face_and_an_open_jaw() -> None:
    pytest.importorskip("moderngl")
    from medtalk_models.render.renderer import MeshRenderer

    basis = default_basis()
    open_jaw = np.zeros(52, dtype=np.float32)
    open_jaw[_basis_index("jawOpen")] = 1.0
    with MeshRenderer((256, 256)) as renderer:
        closed = renderer.render(basis.vertices(np.zeros(52)))
        opened = renderer.render(basis.vertices(open_jaw))
        mouth = renderer.project(basis.neutral[[13, 14, 17, 61, 291]])
        brow = renderer.project(basis.neutral[[9, 151]])
    assert closed.shape == (256, 256, 3) and closed.dtype == np.uint8
    background = closed[0, 0].astype(int)
    face = np.abs(closed.astype(int) - background).sum(axis=2) > 30
    assert 0.15 < face.mean() < 0.9
    diff = np.abs(opened.astype(int) - closed.astype(int)).sum(axis=2)
    (c0, r0), (c1, r1) = mouth.min(axis=0).astype(int) - 4, mouth.max(axis=0).astype(int) + 12
    mouth_change = (diff[r0:r1, c0:c1] > 30).mean()
    (bc, br) = brow.mean(axis=0).astype(int)
    brow_change = (diff[br - 8 : br + 8, bc - 12 : bc + 12] > 30).mean()
    assert mouth_change > 0.2 and mouth_change > 5 * brow_change


def test_renderer_without_moderngl_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from medtalk_models.render.renderer import MeshRenderer

    monkeypatch.setitem(sys.modules, "moderngl", None)
    with pytest.raises(MedtalkError, match=r"pip install moderngl.*EGL"):
        MeshRenderer()


def _probe(path: Path) -> dict[str, list[dict]]:
    import av

    streams: dict[str, list[dict]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for s in container.streams:
            streams[s.type].append(
                {
                    "codec": s.codec_context.name,
                    "duration_s": float(s.duration * s.time_base),
                    "width": getattr(s.codec_context, "width", 0),
                    "pix_fmt": getattr(s.codec_context, "pix_fmt", None),
                }
            )
    return streams


def test_preview_mp4_with_audio_and_side_by_side(shared_data: Path, clip_dir: Path, frames, tmp_path: Path) -> None:
    pytest.importorskip("moderngl")
    from medtalk_models.render.video import write_preview_mp4

    curves = frames.blendshapes[:75]  # 3 s at 25 fps; the wav is longer and gets cut
    duration = len(curves) / frames.fps
    out = write_preview_mp4(tmp_path / "p.mp4", curves, frames.fps, audio_wav=shared_data / SPEECH_WAV, size=128)
    streams = _probe(out)
    assert len(streams["video"]) == 1 and len(streams["audio"]) == 1
    video, audio = streams["video"][0], streams["audio"][0]
    assert video["codec"] == "h264" and video["pix_fmt"] == "yuv420p" and audio["codec"] == "aac"
    assert abs(video["duration_s"] - duration) < 1 / frames.fps
    assert abs(audio["duration_s"] - duration) < 1 / frames.fps
    assert [p.name for p in tmp_path.iterdir()] == ["p.mp4"]  # no temporary file left behind

    source = shared_data / HELD_OUT_VIDEO
    both = write_preview_mp4(
        tmp_path / "sbs.mp4", curves, frames.fps, audio_wav=source, side_by_side_video=source, size=128
    )
    streams = _probe(both)
    assert streams["video"][0]["width"] == 2 * video["width"]
    assert abs(streams["audio"][0]["duration_s"] - duration) < 1 / frames.fps


def test_preview_mp4_from_a_frame_iterator(shared_data: Path, tmp_path: Path) -> None:
    from medtalk_models.render.video import write_preview_mp4

    images = (np.full((64, 96, 3), i * 10, dtype=np.uint8) for i in range(12))  # length unknown up front
    out = write_preview_mp4(tmp_path / "f.mp4", images, 24.0, audio_wav=shared_data / SPEECH_WAV, audio_offset_s=0.1)
    streams = _probe(out)
    assert streams["video"][0]["width"] == 96 and len(streams["audio"]) == 1
    assert abs(streams["video"][0]["duration_s"] - 0.5) < 1 / 24
    assert abs(streams["audio"][0]["duration_s"] - 0.5) < 1 / 24
    with pytest.raises(MedtalkError, match="no frames"):
        write_preview_mp4(tmp_path / "empty.mp4", iter([]), 24.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4"]


def test_curve_plot_png(frames, tmp_path: Path) -> None:
    words = [{"text": "hello", "start_s": 0.2, "end_s": 0.6}, {"text": "there", "start_s": 0.7, "end_s": 1.1}]
    out = tmp_path / "curves.png"
    from medtalk_models.render.plot import plot_curves_png

    plot_curves_png(out, frames.blendshapes, frames.blendshape_names, frames.fps, words=words, title="clip")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    plot_curves_png(tmp_path / "two.png", frames.blendshapes, frames.blendshape_names, frames.fps, ["jawOpen"])
    with pytest.raises(MedtalkError, match="notAChannel"):
        plot_curves_png(tmp_path / "x.png", frames.blendshapes, frames.blendshape_names, frames.fps, ["notAChannel"])
