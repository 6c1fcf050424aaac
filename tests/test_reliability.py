"""Reliability defects found by trying bad input as a user would (each test failed before its fix).

Known transcripts through build-manifest, word timings independent of what the process aligned
before, damaged outputs noticed and redone, a labels-CSV transcript given on a re-run, damaged
manifests, an output folder that becomes unwritable, a huge labels CSV, clip-id collisions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from medtalk_cli.data import cli as data_cli
from medtalk_data.errors import MedtalkError
from medtalk_data.extract.batch import extract_videos
from medtalk_data.extract.layout import iter_statuses
from medtalk_data.face.frames import read_frames
from medtalk_data.manifest import build_manifest
from medtalk_data.settings import ExtractSettings
from medtalk_pipelines import labels_for_path

pytestmark = pytest.mark.realdata

RAVDESS_WAV = "03-01-03-01-02-01-12.wav"  # audio-only, statement 02: "Dogs are sitting by the door"
RAVDESS_VIDEO = "01-01-03-01-01-02-05.mp4"  # audio + video, statement 01: "Kids are talking by the door"
TALKING = "pcavs_input_00010.mp4"  # no known transcript: ASR
SCRIPT_DIR = Path(sys.executable).parent


def _labels(videos: Path):
    from_recipe = labels_for_path("auto", root=videos)
    return lambda clip: from_recipe(clip.relpath)


def _data(*args: str) -> Any:
    return CliRunner().invoke(data_cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def videos(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reliability_videos")
    shutil.copy(shared_data / "audio" / "emotalk_ravdess_happy.wav", folder / RAVDESS_WAV)
    (folder / RAVDESS_VIDEO).symlink_to(shared_data / "video_emotional" / RAVDESS_VIDEO)
    (folder / TALKING).symlink_to(shared_data / "video" / TALKING)
    return folder


@pytest.fixture(scope="module")
def extracted(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reliability_extracted")
    report = extract_videos(videos, out, workers=1, progress=False, labels_for=_labels(videos))
    assert report.exit_code == 0, report.failed
    return out


def _copy(extracted: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "extracted"
    shutil.copytree(extracted, copy, symlinks=True)
    return copy


def _clip(out: Path, clip_id: str) -> Path:
    return out / "clips" / clip_id


# 1: a known transcript (score null in words.json) through build-manifest, audio-only and video


def test_known_transcripts_build_into_a_manifest(extracted: Path, tmp_path: Path) -> None:
    result = _data("build-manifest", str(extracted), "--out", str(tmp_path / "m"), "--val", "0", "--test", "0")
    assert result.exit_code == 0, result.output
    rows = {r["clip_id"]: r for r in pq.read_table(tmp_path / "m" / "clips.parquet").to_pylist()}
    expected = {
        "03-01-03-01-02-01-12": ("audio", "Dogs are sitting by the door"),
        "01-01-03-01-01-02-05": ("video", "Kids are talking by the door"),
    }
    for clip_id, (kind, text) in expected.items():
        row = rows[clip_id]
        assert row["kind"] == kind and row["transcript"] == text
        assert [w["text"] for w in row["words"]] == text.split()
        assert all(w["aligned"] and math.isnan(w["score"]) for w in row["words"])  # no ASR score: null → NaN
        assert row["phones"]
    assert all(0 <= w["score"] <= 1 for w in rows["pcavs_input_00010"]["words"])  # ASR words keep their score


# 2: a clip's words are a function of the clip alone, not of what the process aligned before


def test_word_timings_do_not_depend_on_earlier_clips(shared_data: Path, tmp_path: Path) -> None:
    from medtalk_data.audio.stage import extract_audio
    from medtalk_data.words.settings import WordsSettings
    from medtalk_data.words.stage import WordsStage

    sources = [
        shared_data / "audio" / "emotalk_ravdess_happy.wav",
        shared_data / "audio" / "emotalk_ravdess_sad.wav",
        shared_data / "audio" / "hdtf_RD_Radio31_000.wav",
        shared_data / "video" / TALKING,
    ]
    wavs = []
    for i, source in enumerate(sources):
        wavs.append(tmp_path / f"{i}.wav")
        extract_audio(source, wavs[-1], video_start_s=0.0)

    def words(stage: WordsStage, wav: Path) -> tuple[list, list]:
        stage.run(wav, tmp_path / "words.json")
        doc = json.loads((tmp_path / "words.json").read_text())
        return doc["words"], doc["phones"]

    alone = {i: words(WordsStage(WordsSettings()), wav) for i, wav in enumerate(wavs)}
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        stage = WordsStage(WordsSettings())  # one stage (one aligner) for the whole batch, as a worker has
        for i in order:
            assert words(stage, wavs[i]) == alone[i], f"{sources[i].name} after {order[: order.index(i)]}"


# 3: damaged outputs are noticed by status, build-manifest and a re-run


def test_a_truncated_output_is_reported_excluded_and_redone(videos: Path, extracted: Path, tmp_path: Path) -> None:
    out = _copy(extracted, tmp_path)
    clip = _clip(out, "pcavs_input_00010")
    original = read_frames(clip / "frames.parquet")
    size = (clip / "frames.parquet").stat().st_size
    with open(clip / "frames.parquet", "r+b") as fh:
        fh.truncate(size // 2)

    status = _data("status", str(out))
    assert status.exit_code == 1
    line = next(x for x in status.output.splitlines() if "pcavs_input_00010" in x)
    assert line.startswith("damaged") and f"frames.parquet has {size // 2} bytes, {size} when it was written" in line

    built = _data("build-manifest", str(out), "--out", str(tmp_path / "m"), "--val", "0", "--test", "0")
    assert built.exit_code == 0, built.output
    excluded = pq.read_table(tmp_path / "m" / "excluded.parquet").to_pylist()
    assert [e["clip_id"] for e in excluded] == ["pcavs_input_00010"]
    assert "frames.parquet has" in excluded[0]["reason"] and "re-run `medtalk-data extract`" in excluded[0]["reason"]
    assert pq.read_table(tmp_path / "m" / "clips.parquet").num_rows == 2  # the other clips are kept

    rerun = _run_extract(videos, out)
    assert rerun.returncode == 0, rerun.stderr
    assert "pcavs_input_00010.mp4: damaged output: frames.parquet has" in rerun.stderr
    assert "1 done, 2 skipped" in rerun.stderr and "1 redone (damaged outputs)" in rerun.stderr
    redone = read_frames(clip / "frames.parquet")
    np.testing.assert_array_equal(redone.blendshapes, original.blendshapes)
    assert _data("status", str(out)).exit_code == 0


def test_a_changed_byte_is_found_by_verify(videos: Path, extracted: Path, tmp_path: Path) -> None:
    out = _copy(extracted, tmp_path)
    wav = _clip(out, "03-01-03-01-02-01-12") / "audio.wav"
    data = bytearray(wav.read_bytes())
    data[5000] ^= 0xFF  # same size, other content
    wav.write_bytes(data)
    assert _data("status", str(out)).exit_code == 0  # sizes only: not noticed
    verified = _data("status", str(out), "--verify")
    assert verified.exit_code == 1 and "audio.wav has changed since it was written (sha256 differs)" in verified.output
    assert "1 done, 2 skipped" not in _run_extract(videos, out).stderr  # without --verify: skipped
    rerun = _run_extract(videos, out, "--verify")
    assert rerun.returncode == 0 and "1 done, 2 skipped" in rerun.stderr, rerun.stderr
    assert _data("status", str(out), "--verify").exit_code == 0


def _run_extract(videos: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT_DIR / "medtalk-data"), "extract", str(videos), "--out", str(out), "--workers", "1",
         "--no-progress", *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


# 4: a labels-CSV transcript given on a re-run reaches words.json and the manifest


def test_a_labels_csv_transcript_on_a_rerun_redoes_the_words(videos: Path, extracted: Path, tmp_path: Path) -> None:
    out = _copy(extracted, tmp_path)
    before = json.loads((_clip(out, "pcavs_input_00010") / "words.json").read_text())
    assert before["source"] == "asr"
    text = "we are going to make sure that this works"
    csv = tmp_path / "labels.csv"
    csv.write_text(f"clip_id,transcript\npcavs_input_00010,{text}\n", encoding="utf-8")
    dry = _run_extract(videos, out, "--labels-csv", str(csv), "--dry-run")
    assert "run       pcavs_input_00010" in dry.stdout and "transcript or language label changed" in dry.stdout
    assert "only the words are redone" in dry.stdout
    kept = {name: os.stat(_clip(out, "pcavs_input_00010") / name).st_ino for name in ("frames.parquet", "audio.wav")}
    rerun = _run_extract(videos, out, "--labels-csv", str(csv))
    assert rerun.returncode == 0 and "1 done, 2 skipped" in rerun.stderr, rerun.stderr
    # the face and audio outputs are the very files of before (hard links): only the words were made again
    assert {name: os.stat(_clip(out, "pcavs_input_00010") / name).st_ino for name in kept} == kept
    after = json.loads((_clip(out, "pcavs_input_00010") / "words.json").read_text())
    assert after["source"] == "known" and after["transcript"] == text
    assert [w["text"] for w in after["words"]] == text.split()
    assert build_manifest([out], tmp_path / "m").n_clips == 3
    rows = {r["clip_id"]: r for r in pq.read_table(tmp_path / "m" / "clips.parquet").to_pylist()}
    assert rows["pcavs_input_00010"]["transcript"] == text
    again = _run_extract(videos, out, "--labels-csv", str(csv))
    assert "0 done, 3 skipped" in again.stderr  # unchanged transcript: nothing redone


def test_changed_words_settings_redo_only_the_words(videos: Path, extracted: Path, tmp_path: Path) -> None:
    out = _copy(extracted, tmp_path)
    clip = _clip(out, "pcavs_input_00010")
    before = json.loads((clip / "status.json").read_text())
    kept = os.stat(clip / "frames.parquet").st_ino
    config = tmp_path / "extract.yaml"
    config.write_text("words:\n  beam_size: 2\n")
    rerun = _run_extract(videos, out, "--config", str(config))
    assert rerun.returncode == 0, rerun.stderr
    after = json.loads((clip / "status.json").read_text())
    assert os.stat(clip / "frames.parquet").st_ino == kept and after["settings_hash"] == before["settings_hash"]
    assert after["words_hash"] != before["words_hash"] and after["settings"]["words"]["beam_size"] == 2
    assert after["face"] == before["face"] and after["words"]["n_words"] > 0
    assert [w for w in after["warnings"] if w not in before["warnings"]] == after.get("words_warnings", [])
    assert "0 done, 3 skipped" in _run_extract(videos, out, "--config", str(config)).stderr
    # a face setting redoes the whole clip (the plan says so; running it is the ordinary path)
    config.write_text("words:\n  beam_size: 2\nface:\n  max_gap_s: 0.3\n")
    dry = _run_extract(videos, out, "--config", str(config), "--dry-run").stdout
    assert "run       pcavs_input_00010" in dry and "settings changed" in dry and "only the words" not in dry


# 5: damaged manifests: one line naming the file, exit 2, for every command that reads one


@pytest.fixture(scope="module")
def manifest(extracted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability_manifest") / "m"
    build_manifest([extracted], path)
    return path


def _damaged_manifests(manifest: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    cases: dict[str, tuple[Path, str]] = {}
    random_bytes = tmp_path / "random_clips"
    shutil.copytree(manifest, random_bytes)
    (random_bytes / "clips.parquet").write_bytes(np.random.default_rng(0).bytes(4096))
    cases["random clips.parquet"] = (random_bytes, "clips.parquet: damaged or not Parquet")
    for column in ("curves", "face_found"):
        folder = tmp_path / f"no_{column}"
        shutil.copytree(manifest, folder)
        table = pq.read_table(folder / "frames.parquet")
        stripped = table.drop([column])
        pq.write_table(stripped.replace_schema_metadata(table.schema.metadata), folder / "frames.parquet")
        cases[f"frames.parquet without {column}"] = (folder, f"frames.parquet: lacks column {column}")
    return cases


@pytest.mark.parametrize("command", ["validate", "stats"])
def test_damaged_manifests_are_named_in_one_line(manifest: Path, tmp_path: Path, command: str) -> None:
    for case, (folder, message) in _damaged_manifests(manifest, tmp_path).items():
        result = CliRunner().invoke(data_cli, [command, str(folder)])
        assert result.exit_code == 2, (case, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), case
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, (case, result.output)


def test_train_on_a_damaged_manifest_leaves_no_run_folder(manifest: Path, tmp_path: Path) -> None:
    from medtalk_cli.models import cli as models_cli

    for case, (folder, message) in _damaged_manifests(manifest, tmp_path).items():
        out = tmp_path / f"run_{folder.name}"
        result = CliRunner().invoke(
            models_cli, ["train", "--manifest", str(folder), "--out", str(out), "--no-progress"]
        )
        assert result.exit_code == 2 and message in result.output, (case, result.output)
        assert "Traceback" not in result.output and not out.exists(), case


def test_evaluate_on_a_damaged_manifest_says_which_file(manifest: Path, run_dir: Path, tmp_path: Path) -> None:
    from medtalk_cli.models import cli as models_cli

    for case, (folder, message) in _damaged_manifests(manifest, tmp_path).items():
        result = CliRunner().invoke(models_cli, ["evaluate", "-k", str(run_dir), "-m", str(folder), "--split", "all"])
        assert result.exit_code == 2 and message in result.output, (case, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output


# 6: an output folder that is (or becomes) unwritable stops the run: one line, exit 2, nothing lost


def _can_lock() -> str | None:
    """How this machine can make a folder unwritable to us: chattr +i as root, chmod otherwise."""
    if os.geteuid() != 0:
        return "chmod"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"medtalk_chattr_probe_{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
            return None
        try:
            (probe / "x").touch()
            return None  # immutable but still writable: no way to lock here
        except OSError:
            return "chattr"
    except FileNotFoundError:
        return None
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
        shutil.rmtree(probe, ignore_errors=True)


LOCK = _can_lock()
needs_lock = pytest.mark.skipif(LOCK is None, reason="running as root without a working `chattr +i` (e2fsprogs)")


@contextmanager
def _unwritable(*folders: Path):
    try:
        for folder in folders:
            if LOCK == "chattr":
                subprocess.run(["chattr", "+i", str(folder)], check=True)
            else:
                folder.chmod(0o555)
        yield
    finally:
        _unlock(*folders)


def _unlock(*folders: Path) -> None:
    for folder in folders:
        if LOCK == "chattr":
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


@needs_lock
def test_an_unwritable_clips_folder_is_one_line_and_exit_2(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "clips").mkdir(parents=True)
    with _unwritable(out / "clips"):
        result = subprocess.run(
            [str(SCRIPT_DIR / "medtalk-data"), "extract", str(videos), "--out", str(out), "--workers", "1",
             "--no-progress"], capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {out / 'clips'}: output folder is not writable " + errors[0].split("writable ", 1)[1]]


@needs_lock
def test_an_output_folder_that_becomes_unwritable_mid_run(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [str(SCRIPT_DIR / "medtalk-data"), "extract", str(videos), "--out", str(out), "--workers", "1",
         "--no-progress", "--stages", "face,audio"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    locked = [out, out / "clips", out / ".staging"]
    try:
        deadline = time.monotonic() + 120
        while not list((out / "clips").glob("*/status.json")):
            assert proc.poll() is None and time.monotonic() < deadline, "no clip finished in time"
            time.sleep(0.02)
        with _unwritable(*locked):
            _, stderr = proc.communicate(timeout=300)
            finished = [s.clip_id for s in iter_statuses(out)]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _unlock(*locked)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot write the output" in errors[0] and "finished clips are kept" in errors[0]
    assert 1 <= len(finished) < 3
    from medtalk_data.extract.layout import damaged_outputs

    for status in iter_statuses(out):  # what was finished before the folder locked is intact
        assert status.done and not damaged_outputs(_clip(out, status.clip_id), status, verify_hash=True)
    resumed = subprocess.run(
        [str(SCRIPT_DIR / "medtalk-data"), "extract", str(videos), "--out", str(out), "--workers", "1",
         "--no-progress", "--stages", "face,audio"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0 and f"{len(finished)} skipped" in resumed.stderr, resumed.stderr
    assert json.loads((out / "extract_summary.json").read_text())["exit_code"] == 0


# 7: a labels CSV with 10,000 unknown ids: the first problems, a count, the whole list on request


def test_a_huge_labels_csv_gives_a_short_error_and_the_full_list_on_request(videos: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("clip_id,emotion\n" + "".join(f"ghost_{i:05d},happy\n" for i in range(10_000)), encoding="utf-8")
    problems = tmp_path / "problems.txt"
    result = _data("extract", str(videos), "--out", str(tmp_path / "o"), "--labels-csv", str(csv),
                   "--labels-problems", str(problems), "--dry-run")  # fmt: skip
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and len(line) < 4000, len(line)
    assert "10000 problems, nothing applied" in line and "… and 9980 more" in line and str(problems) in line
    listed = problems.read_text(encoding="utf-8").splitlines()
    assert len(listed) == 10_000 and listed[-1].startswith("row 10001: unknown clip_id 'ghost_09999'")
    without = _data("extract", str(videos), "--out", str(tmp_path / "o"), "--labels-csv", str(csv), "--dry-run")
    assert "--labels-problems FILE writes them all" in without.output


# 11: a clip-id collision between two extraction folders names both clip folders


def test_a_clip_id_collision_names_both_folders(extracted: Path, tmp_path: Path) -> None:
    other = _copy(extracted, tmp_path)
    report = build_manifest([extracted, other], tmp_path / "m")
    assert report.n_clips == 3 and len(report.excluded) == 3
    for item in report.excluded:
        assert item["reason"].startswith(
            f"clip id {item['clip_id']!r} is taken by {extracted / 'clips' / item['clip_id']}"
        )
        assert item["reason"].endswith(f"[{other / 'clips' / item['clip_id']}]")
        assert Path(item["source_path"]).is_absolute()  # the source named in full, not by a bare file name


# 9, 10, 11: animate and evaluate


def _noise_wav(path: Path, seconds: float = 4.0) -> Path:
    from medtalk_data.io.wav import write_wav

    return write_wav(path, np.random.default_rng(0).normal(0, 0.2, int(16_000 * seconds)))


@pytest.fixture(scope="module")
def animator(run_dir: Path):
    from medtalk_models.animate import Animator

    a = Animator(run_dir)
    yield a
    a.close()


def test_white_noise_is_animated_with_a_warning(animator, shared_data: Path, tmp_path: Path) -> None:
    from medtalk_models.animate import EmotionControl

    noise = animator.animate(_noise_wav(tmp_path / "noise.wav"), EmotionControl("neutral"))
    assert any("found no speech" in w and "noise.wav" in w for w in noise.warnings), noise.warnings
    speech = animator.animate(shared_data / "audio" / "emotalk_ravdess_happy.wav", EmotionControl("neutral"))
    assert not any("no speech" in w for w in speech.warnings), speech.warnings
    given = animator.animate(_noise_wav(tmp_path / "n2.wav"), EmotionControl("neutral"), transcript="hello there")
    assert any("found no speech" in w for w in given.warnings)  # a transcript does not make noise speech


@pytest.mark.parametrize(("text", "script"), [("очень радостное лицо", "Cyrillic"), ("一张非常开心的脸", "Cjk")])
def test_text_in_a_script_the_encoder_cannot_read_is_warned(
    animator, shared_data: Path, text: str, script: str
) -> None:
    from medtalk_models.animate import EmotionControl

    wav = shared_data / "audio" / "emotalk_ravdess_happy.wav"
    result = animator.animate(wav, EmotionControl(text=text))
    assert any(f"--text is written in {script} script" in w and "English" in w for w in result.warnings)
    english = animator.animate(wav, EmotionControl(text="a face beaming with joy"))
    assert not any("--text" in w for w in english.warnings)


def test_animate_checks_its_inputs_before_loading_the_model(run_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    """A model folder without its weights: any error that reaches the weights would name model.safetensors."""
    from medtalk_cli.models import cli as models_cli

    hollow = tmp_path / "hollow"
    shutil.copytree(run_dir / "model", hollow)
    (hollow / "model.safetensors").unlink()
    speech = shared_data / "audio" / "emotalk_ravdess_happy.wav"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "emotalk_ravdess_happy.npz").write_bytes(b"taken")
    base = ["animate", "-k", str(hollow), "--out", str(tmp_path / "out")]
    cases = {
        "missing audio": (["-a", str(tmp_path / "nope.wav")], "nope.wav: no such audio file"),
        "video without sound": (["-a", str(shared_data / "video_noaudio" / "mead_eamm_fear.mp4")], "no audio stream"),
        "unknown label": (["-a", str(speech), "--emotion", "joyful"], "unknown emotion 'joyful'"),
        "missing image": (["-a", str(speech), "--image", str(tmp_path / "face.png")], "no such reference image"),
        "unknown format": (["-a", str(speech), "--format", "gltf"], "--format 'gltf'"),
        "format of another rig": (["-a", str(speech), "--format", "txt"], "format 'txt' needs"),
        "output exists": (["-a", str(speech), "--format", "npz"], "already exists; pass --overwrite"),
        "zero fps": (["-a", str(speech), "--fps", "0", "--format", "csv"], "--fps 0.0: use a positive frame rate"),
    }
    for case, (args, message) in cases.items():
        result = CliRunner().invoke(models_cli, [*base, *args])
        assert result.exit_code == 2 and message in result.output, (case, result.output)
    valid = CliRunner().invoke(models_cli, [*base, "-a", str(speech), "--format", "csv"])
    assert valid.exit_code == 2 and "model.safetensors" in valid.output  # only a valid request reaches the weights


def test_animate_reports_the_frames_it_wrote(run_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    from medtalk_cli.models import cli as models_cli
    from medtalk_models.export.formats import read_any

    speech = shared_data / "audio" / "emotalk_ravdess_happy.wav"
    args = [
        "animate",
        "-k",
        str(run_dir),
        "-a",
        str(speech),
        "--fps",
        "1000",
        "--format",
        "npz",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(models_cli, args)
    assert result.exit_code == 0, result.output
    written = read_any(tmp_path / "emotalk_ravdess_happy.npz")
    assert written.fps == 1000.0
    assert result.output.startswith(f"{written.n_frames} frames at 1000 fps"), result.output


def test_evaluate_raises_no_numpy_warnings(run_dir: Path, training_manifest: Path) -> None:
    import warnings

    from medtalk_models.evaluate import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = evaluate(run_dir, training_manifest, "val", "cpu", emotion_speech=0)
    assert np.isnan(report["summary"]["mean_pose"]["lip_sync_r"])  # a constant mouth has no correlation


def test_zoo_refusal_never_advises_unsafe_loading(tmp_path: Path, shared_data: Path) -> None:
    import torch

    from medtalk_data.errors import MedtalkError
    from medtalk_models.zoo import import_official

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    torch.save({"encoder.weight": torch.zeros(2), "trap": Payload()}, tmp_path / "audio_semantic.pth")
    with pytest.raises(MedtalkError) as info:
        import_official(tmp_path, shared_data / "emoface" / "metahuman_attr_names.txt", tmp_path / "out")
    message = str(info.value)
    assert "refused" in message and "system" in message and "could run code" in message
    assert "weights_only" not in message and "will likely succeed" not in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_extract_from_python_skips_a_stage_that_is_not_installed(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """As the CLI does: the default stages run what this install can; a named stage that cannot run stops
    with its install command. (A module set to None in sys.modules is one Python cannot import.)"""
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        report = extract_videos(videos, out, settings=ExtractSettings(stages=["face", "labels"]), workers=1,
                                progress=False, labels_for=_labels(videos))  # fmt: skip
    assert report.exit_code == 0 and not report.failed and set(report.stages_not_installed) == {"labels"}
    assert "stage labels skipped (not installed: pip install 'medtalk[labels]'" in caplog.text
    status = json.loads((out / "clips" / report.done[0] / "status.json").read_text())
    assert status["state"] == "done" and "expression" not in status["outputs"]
    with pytest.raises(MedtalkError, match=r"stage labels needs: pip install 'medtalk\[labels\]'"):
        extract_videos(videos, tmp_path / "named", settings=ExtractSettings(stages=["labels"]), require_stages=True)
    result = CliRunner().invoke(data_cli, ["extract", str(videos), "--out", str(tmp_path / "cli"), "--recipe", "nope"])
    assert result.exit_code == 2 and "unknown recipe 'nope'; choose auto or one of" in result.output
