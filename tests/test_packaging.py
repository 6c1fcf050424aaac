"""The wheel installs namespaced packages only: no top-level `cli` or `pipelines` in site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_top_level_names(tmp_path: Path) -> None:
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
            str(REPO),
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
    licences = [n for n in names if n.endswith(("LICENSE", "NOTICE"))]
    assert len(licences) == 2
