"""Both command groups: help with runnable examples everywhere, exit codes scripts can rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from medtalk_cli.data import cli as data_cli
from medtalk_cli.models import cli as models_cli


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found += _all_commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("group", [data_cli, models_cli], ids=["medtalk-data", "medtalk-models"])
def test_every_command_has_help_with_examples(group: click.Group) -> None:
    runner = CliRunner()
    for path in _all_commands(group):
        result = runner.invoke(group, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Examples:" in result.output, path
        assert runner.invoke(group, [*path, "-h"]).exit_code == 0


def test_help_is_fast_and_needs_no_heavy_imports() -> None:
    code = (
        "import sys; from medtalk_cli.data import cli; from medtalk_cli.models import cli as m; "
        "heavy = [n for n in ('mediapipe', 'av', 'pyarrow', 'torch') if n in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_print_config_is_valid_yaml_without_a_folder() -> None:
    result = CliRunner().invoke(data_cli, ["extract", "--print-config"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["face"]["fitter"] == "mediapipe"


def test_missing_folder_and_bad_options_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(data_cli, ["extract"]).exit_code == 2
    result = runner.invoke(data_cli, ["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a folder" in result.output
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    result = runner.invoke(data_cli, ["extract", str(tmp_path / "v"), "--stages", "face,lips"])
    assert result.exit_code == 2 and "lips" in result.output
    result = runner.invoke(data_cli, ["extract", str(tmp_path / "v"), "--recipe", "nosuch"])
    assert result.exit_code == 2 and "nosuch" in result.output


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    result = CliRunner().invoke(data_cli, ["extract", str(tmp_path / "v"), "--out", str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "run" in result.output and "a.mp4" in result.output
    assert not (tmp_path / "o").exists()


def test_console_scripts_are_installed() -> None:
    for script in ("medtalk-data", "medtalk-models"):
        exe = Path(sys.executable).with_name(script)
        assert exe.exists(), exe
        assert subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
