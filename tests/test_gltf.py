"""glTF export: the face mesh with 52 ARKit morph targets and the curves as their weights.

Opened in real Blender (the ``bpy`` wheel, in its own virtual environment: ``.venv-blender``, which
``.ci/run`` creates) and checked by Khronos' glTF validator (the ``gltf-validator`` npm package,
installed by ``.ci/run`` into ``.ci/node``). Each of those two checks is skipped, with the line that
installs it, where its tool is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.rigs import ARKIT52
from medtalk_models.export.curves import Curves
from medtalk_models.export.npz import read_npz, write_npz
from medtalk_models.render.basis import default_basis
from medtalk_models.render.gltf import read_glb, write_glb

REPO = Path(__file__).resolve().parents[1]
BLENDER_PYTHON = Path(os.environ.get("MEDTALK_BLENDER_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
VALIDATOR = Path(os.environ.get("MEDTALK_GLTF_VALIDATOR", REPO / ".ci" / "node" / "node_modules" / "gltf-validator"))
FPS = 30.0


@pytest.fixture(scope="module")
def animation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(glb, npz) of the same 90 frames; every ARKit channel moves, the jaw like speech."""
    out = tmp_path_factory.mktemp("gltf")
    t = np.arange(90)[:, None] / FPS
    values = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + np.arange(len(ARKIT52))[None, :])
    values[:, ARKIT52.index("jawOpen")] = 0.4 * np.abs(np.sin(2 * np.pi * 3 * t[:, 0]))
    curves = Curves(values.astype(np.float32), list(ARKIT52), FPS)
    head = np.stack([5 * np.sin(t[:, 0]), 10 * np.sin(0.5 * t[:, 0]), np.zeros(len(t))], axis=1).astype(np.float32)
    return write_glb(out / "speech.glb", curves, head_rotation_deg=head), write_npz(out / "speech.npz", curves)


def test_the_file_reads_back_as_the_curves(animation: tuple[Path, Path]) -> None:
    glb, npz = animation
    back, curves = read_glb(glb), read_npz(npz)
    assert back.names == list(ARKIT52) and back.fps == FPS and back.n_frames == 90
    np.testing.assert_array_equal(back.values, curves.values)


def test_blender_imports_52_shape_keys_with_the_curves_as_keyframes(animation: tuple[Path, Path]) -> None:
    if not BLENDER_PYTHON.is_file():
        pytest.skip(f"real Blender check needs {BLENDER_PYTHON}: python3 -m venv .venv-blender && "
                    ".venv-blender/bin/pip install bpy==5.0.1 (what .ci/run does)")  # fmt: skip
    glb, npz = animation
    frames = (0, 37, 89)
    run = subprocess.run(
        [str(BLENDER_PYTHON), str(REPO / "tests" / "blender" / "check_glb.py"), str(glb), str(FPS), *map(str, frames)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["meshes"] == 1 and report["vertices"] == 468
    assert report["shape_keys"] == ["Basis", *ARKIT52]  # Blender's own first key, then the ARKit names
    assert report["scene_fps"] == FPS and len(report["jaw_keyframes"]) == 90
    np.testing.assert_allclose(report["jaw_keyframes"], np.arange(90), atol=1e-3)  # one key per frame at our rate
    curves = read_npz(npz)
    for frame in frames:
        got = np.array([report["values"][str(frame)][name] for name in ARKIT52])
        np.testing.assert_allclose(got, curves.values[frame], atol=1e-3)


def test_khronos_validator_finds_no_error_or_warning(animation: tuple[Path, Path]) -> None:
    node = shutil.which("node")
    if node is None or not VALIDATOR.is_dir():
        pytest.skip(f"needs node and {VALIDATOR}: npm install --prefix .ci/node gltf-validator (what .ci/run does)")
    glb, _ = animation
    script = (
        "const v = require(process.argv[1]); const fs = require('fs');"
        "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))"
        ".then(r => console.log(JSON.stringify(r.issues)));"
    )
    run = subprocess.run([node, "-e", script, str(VALIDATOR), str(glb)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    issues = json.loads(run.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:5]


def test_the_morph_targets_are_the_basis_in_metres(animation: tuple[Path, Path]) -> None:
    import pygltflib

    gltf = pygltflib.GLTF2().load_binary(str(animation[0]))
    blob = gltf.binary_blob()
    basis = default_basis()
    primitive = gltf.meshes[0].primitives[0]

    def array(index: int) -> np.ndarray:
        accessor = gltf.accessors[index]
        view = gltf.bufferViews[accessor.bufferView]
        return np.frombuffer(blob, np.float32, count=accessor.count * 3, offset=view.byteOffset).reshape(-1, 3)

    np.testing.assert_allclose(array(primitive.attributes.POSITION), basis.neutral * 0.01, atol=1e-7)
    jaw = ARKIT52.index("jawOpen")
    np.testing.assert_allclose(
        array(primitive.targets[jaw]["POSITION"]), basis.deltas[basis.names.index("jawOpen")] * 0.01, atol=1e-7
    )
    assert not array(primitive.targets[ARKIT52.index("tongueOut")]["POSITION"]).any()  # the basis cannot fit it
