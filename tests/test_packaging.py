"""The wheel installs namespaced packages only: no top-level `cli` or `pipelines` in site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_top_level_names(tmp_path: Path) -> None:
    # build from a clean copy: a stale build/ folder would hide a package missing from pyproject's list
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".venv", "build", ".git", "*.egg-info", "demo_out", "__pycache__", ".ruff_cache")
    shutil.copytree(REPO, source, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("medtalk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"medtalk_data", "medtalk_models", "medtalk_cli", "medtalk_pipelines"}
    assert "medtalk_data/configs/extract.yaml" in names
    assert "medtalk_cli/data.py" in names and "medtalk_pipelines/registry.py" in names
    # every module of the source tree is in the wheel (a package missing from pyproject's list is not)
    mapping = {"medtalk_data": "medtalk_data", "medtalk_models": "medtalk_models", "cli": "medtalk_cli",
               "pipelines": "medtalk_pipelines"}  # fmt: skip
    for folder, package in mapping.items():
        for source in (REPO / folder).rglob("*.py"):
            rel = source.relative_to(REPO / folder).as_posix()
            assert f"{package}/{rel}" in names, f"{package}/{rel} missing from the wheel"
    licences = [n for n in names if n.endswith(("LICENSE", "NOTICE"))]
    assert len(licences) == 2
