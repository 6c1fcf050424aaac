"""Extraction on a real Ray cluster that the test starts itself on this machine: a head node and a second
node joined to it (`ray start`, not local_mode), one CPU each."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medtalk_data.cluster import NodeReport, node_problems

from .conftest import TRAINING_SOURCES

BIN = Path(sys.executable).parent
CRASH_ID = "crash_me"  # the nodes run with MEDTALK_TEST_CRASH_CLIP=crash_me: that clip's worker always dies
# Ray ≥ 2.59 turns token authentication on for clusters that ray.init() starts (and writes ~/.ray/auth_token);
# nodes and drivers of the test cluster use one token of their own, so whatever that file holds does not matter
CLUSTER_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex(), "RAY_USAGE_STATS_ENABLED": "0"}
COMPARED = ("mead_W009_front_angry_level3_001", "mead_W011_front_happy_level3_001", "pcavs_input_00002")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - kept open for the node's lifetime
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", *args, "--disable-usage-stats", "--block"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: the teardown ends the node and every process it started
    )
    deadline = time.monotonic() + 90
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start failed: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    return proc


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The head node's address; the nodes and every driver the tests start share CLUSTER_ENV (token auth)."""
    if shutil.which("ray", path=str(BIN)) is None:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed: `pip install -e .[cluster]` (the Makefile installs it)")
        pytest.skip("ray not installed")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = {**os.environ, **CLUSTER_ENV, "MEDTALK_TEST_CRASH_CLIP": CRASH_ID}
    nodes = []
    try:
        head = ["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}"]
        nodes.append(_start_node(head, temp / "head.log", env))
        nodes.append(_start_node([f"--address=127.0.0.1:{port}", "--num-cpus=1"], temp / "node2.log", env))
        yield f"127.0.0.1:{port}"
    finally:
        # SIGTERM to both nodes at once, a few seconds to stop, then SIGKILL to each node's whole process group
        # (raylet, GCS and workers share it): waiting 20 s per node for a clean stop cost 40 s a run
        for proc in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _extract(videos: Path, out: Path, address: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "medtalk-data"), "extract", str(videos), "--out", str(out), "--no-progress"]
    return subprocess.run(
        [*cmd, "--engine", "ray", "--address", address, *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **CLUSTER_ENV},
    )


def _kill_tasks_once_mid_clip(out: Path, clip_id: str, killed: list[int]) -> None:
    """When ``clip_id`` is being staged, SIGKILL every Ray worker that runs one of our tasks (once)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        staging = out / ".staging"
        if staging.is_dir() and any(p.name.startswith(f"{clip_id}.") for p in staging.iterdir()):
            time.sleep(1.0)  # into the clip's frames
            for proc in Path("/proc").iterdir():
                try:
                    title = (proc / "cmdline").read_bytes().split(b"\0")[0].strip()
                except OSError:
                    continue
                if proc.name.isdigit() and title == b"ray::_call":
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
            if killed:
                return
        time.sleep(0.1)


def _status(out: Path, clip_id: str) -> dict:
    return json.loads((out / "clips" / clip_id / "status.json").read_text())


@pytest.mark.slow
def test_ray_engine_on_two_nodes_matches_the_local_engine(
    ray_cluster: str, training_extraction: Path, shared_data: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for rel in TRAINING_SOURCES:
        if Path(rel).stem in COMPARED:
            (videos / Path(rel).name).symlink_to(shared_data / rel)
    (videos / f"{CRASH_ID}.mp4").symlink_to(shared_data / "video_noaudio/mead_W009_front_fear_level3_001.mp4")
    out = tmp_path / "out"

    killed: list[int] = []
    killer = threading.Thread(target=_kill_tasks_once_mid_clip, args=(out, "pcavs_input_00002", killed))
    killer.start()
    run = _extract(videos, out, ray_cluster)
    killer.join()
    assert killed, "no Ray task was seen running mid-clip"
    # the killed clips were retried and finished; the clip whose worker always dies is recorded, the batch went on
    assert run.returncode == 1, run.stderr
    summary = json.loads((out / "extract_summary.json").read_text())
    assert summary["engine"] == "ray"
    assert sorted(summary["done"]) == sorted(COMPARED)
    assert [f["clip_id"] for f in summary["failed"]] == [CRASH_ID]
    assert summary["failed"][0]["reason"] == "worker_crashed" and "both tries" in summary["failed"][0]["error"]
    assert _status(out, CRASH_ID)["state"] == "failed"
    assert len(set(summary["ran_on"].values())) == 2, summary["ran_on"]  # both nodes took clips
    assert not (out / ".staging").exists(), "staging left behind"

    # the same outputs as the local engine on the same sources and settings (apart from timings and paths)
    for clip_id in COMPARED:
        ray_dir, local_dir = out / "clips" / clip_id, training_extraction / "clips" / clip_id
        assert sorted(p.name for p in ray_dir.iterdir()) == sorted(p.name for p in local_dir.iterdir())
        for f in ray_dir.iterdir():
            if f.suffix == ".parquet":
                assert pq.read_table(f).equals(pq.read_table(local_dir / f.name)), (clip_id, f.name)
            elif f.name != "status.json":
                assert f.read_bytes() == (local_dir / f.name).read_bytes(), (clip_id, f.name)
        ours, theirs = _status(out, clip_id), _status(training_extraction, clip_id)
        for key in ("timings_s", "started_at", "finished_at"):
            ours.pop(key), theirs.pop(key)
        ours["source"].pop("path"), theirs["source"].pop("path")
        for part in ("expression", "words"):  # their throughput figures are timings
            for timing in ("seconds", "frames_per_s", "rtf"):
                for status in (ours, theirs):
                    (status.get(part) or {}).pop(timing, None)
        assert ours == theirs, clip_id

    # a re-run skips everything that is done (the crashing clip's source is gone)
    (videos / f"{CRASH_ID}.mp4").unlink()
    again = _extract(videos, out, ray_cluster)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "extract_summary.json").read_text())["skipped"] == sorted(COMPARED)
    assert "3 skipped" in again.stderr


def test_ray_address_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    videos = tmp_path / "v"
    videos.mkdir()
    (videos / "a.wav").write_bytes(b"RIFF")
    run = _extract(videos, tmp_path / "out", f"127.0.0.1:{_free_port()}")
    assert run.returncode == 2
    assert "no Ray cluster answers at 127.0.0.1:" in run.stderr and "ray start --head" in run.stderr
    assert "Traceback" not in run.stderr
    local = subprocess.run(
        [str(BIN / "medtalk-data"), "extract", str(videos), "--address", "x:1"], capture_output=True, text=True
    )
    assert local.returncode == 2 and "--address needs --engine ray" in local.stderr


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medtalk_data.cluster import RayOptions, ray_session
    from medtalk_data.errors import MedtalkError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` raises ImportError
    with pytest.raises(MedtalkError, match=r"medtalk\[cluster\]"), ray_session(RayOptions(), [], tmp_path):
        pass


def test_node_problems_name_the_node_and_the_fix(tmp_path: Path) -> None:
    paths = [tmp_path / "videos", tmp_path / "out"]
    good = NodeReport("a" * 56, "head", "0.1.0", (True, True))
    old = NodeReport("b" * 56, "gpu-7", "0.0.9", (True, True))
    blind = NodeReport("c" * 56, "gpu-8", "0.1.0", (True, False))
    assert node_problems([good], paths, "0.1.0") == []
    problems = node_problems([good, old, blind], paths, "0.1.0")
    assert len(problems) == 2
    assert "gpu-7 (bbbbbbbb) runs medtalk 0.0.9, this driver 0.1.0" in problems[0]
    assert "gpu-8 (cccccccc) cannot see" in problems[1] and "out" in problems[1] and "same path" in problems[1]


@pytest.mark.slow
def test_feature_cache_on_ray_is_the_one_training_reads(
    ray_cluster: str, training_manifest: Path, tmp_path: Path
) -> None:
    """`medtalk-models features --engine ray` fills the cache with the files (and values) of the local path."""
    import numpy as np

    def run(engine: str, cache: Path) -> str:
        config = tmp_path / f"{cache.name}.yaml"
        config.write_text(f"data:\n  cache_dir: {cache}\n")
        cmd = [str(BIN / "medtalk-models"), "features", "--manifest", str(training_manifest), "--config",
               str(config), "--engine", engine, "--no-progress"]  # fmt: skip
        if engine == "ray":
            cmd += ["--address", ray_cluster]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **CLUSTER_ENV})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    on_ray = tmp_path / "ray_cache"
    first = run("ray", on_ray)
    assert "5 clips with audio, 5 computed, 0 already cached (ray)" in first, first
    assert "0 computed, 5 already cached (local)" in run("local", on_ray)  # the files the local path looks for

    # and the values the local path computes (one clip, in this process)
    from medtalk_models.config import load_config
    from medtalk_models.precompute import FeatureJob, clip_features

    files = sorted(on_ray.rglob("*.npy"))
    clip_id = files[0].name.rsplit("-", 1)[0]
    local = tmp_path / "local_cache"
    job = FeatureJob(str(training_manifest), clip_id, load_config()["audio"], str(local))
    assert clip_features(job) >= 1
    mine = sorted(local.rglob(f"{clip_id}-*.npy"))
    assert [p.relative_to(local) for p in mine] == [p.relative_to(on_ray) for p in files if p.name == mine[0].name]
    np.testing.assert_array_equal(np.load(mine[0]), np.load(on_ray / mine[0].relative_to(local)))
