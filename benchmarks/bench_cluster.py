"""Scale-out figures, as same-run ratios (issue 16).

1. Engine overhead: `medtalk-data extract` on the same clips with the local engine (a process pool of
   K workers) and with the Ray engine (Ray started on this machine with K CPUs, one CPU per clip);
   ratio = local time / Ray time (target ≥ 0.9).
2. Nodes: the Ray engine on a real cluster of one node of one CPU, then two nodes of one CPU each
   (`ray start --head` + `ray start --address`, both on this machine); speed-up = one / two.
3. A paper estimate for MEAD (~40 h of video at 30 fps) on N nodes of K cores from the per-core
   frame rate measured in 2 (two nodes, every core busy; all four stages, so the words stage is
   included; FLAME fitting is not implemented yet and not counted).
4. Training: steps/s of the small preset's first stage with 1 and 2 CPU ranks under torchrun (gloo,
   DistributedDataParallel), the same per-rank batch (so 2 ranks do twice the global batch).

    python benchmarks/bench_cluster.py                   # ~8 min on 2 cores
    python benchmarks/bench_cluster.py --json figures.json
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
CLIPS = (
    "video/pcavs_audio_source_00015.mp4",
    "video/pcavs_input_00098.mp4",
    "video/pcavs_pose_source_741400163.mp4",
    "video/pcavs_input_00002.mp4",
    "video_noaudio/mead_W009_front_happy_level3_001.mp4",
    "video_noaudio/mead_W011_front_sad_level3_001.mp4",
)
MEAD_HOURS, MEAD_FPS = 40.0, 30.0
# one token for the bench's own cluster and its drivers (Ray >= 2.59 authenticates clusters ray.init() starts)
CLUSTER_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex(), "RAY_USAGE_STATS_ENABLED": "0"}


def extract(videos: Path, out: Path, *args: str) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    cmd = [str(BIN / "medtalk-data"), "extract", str(videos), "--out", str(out), "--no-progress", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **CLUSTER_ENV})
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"extract failed: {proc.stderr[-2000:]}")
    return secs, json.loads((out / "extract_summary.json").read_text())


class Cluster:
    """Real Ray nodes on this machine, each `ray start --block` in its own process group."""

    def __init__(self, n_nodes: int, cpus: int = 1) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.temp = Path(tempfile.mkdtemp(prefix="rayb", dir="/tmp"))
        self.procs: list[subprocess.Popen] = []
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}"], cpus)
        for _ in range(n_nodes - 1):
            self._start([f"--address=127.0.0.1:{self.port}"], cpus)
        self.address = f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], cpus: int) -> None:
        log = self.temp / f"node{len(self.procs)}.log"
        fh = open(log, "w")  # noqa: SIM115
        cmd = [str(BIN / "ray"), "start", *args, f"--num-cpus={cpus}", "--disable-usage-stats", "--block"]
        env = {**os.environ, **CLUSTER_ENV}
        self.procs.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env))
        while "Ray runtime started" not in log.read_text():
            if self.procs[-1].poll() is not None:
                raise SystemExit(log.read_text()[-2000:])
            time.sleep(0.3)

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)
            time.sleep(2)
        shutil.rmtree(self.temp, ignore_errors=True)


def _train_seconds(manifest: Path, ranks: int, steps: int, work: Path) -> float:
    config = work / "ddp.yaml"
    config.write_text("stages:\n  disentangle:\n    epochs_per_phase: 50\n")
    out = work / f"ddp{ranks}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
           "-m", "medtalk_cli.models", "train", "--manifest", str(manifest), "--out", str(out), "--overwrite",
           "--stage", "disentangle", "--config", str(config), "--device", "cpu", "--max-steps", str(steps),
           "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // ranks))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - t0


def ddp_steps_per_s(manifest: Path, ranks: int, steps: int, work: Path) -> float:
    """Steps/s inside epochs: the median time between consecutive logged steps of one epoch (log.csv's
    ``secs`` counts from the epoch's start), so start-up, data loading and the per-epoch checkpoint and
    validation are left out."""
    import csv

    _train_seconds(manifest, ranks, steps, work)
    with open(work / f"ddp{ranks}" / "log.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    gaps = [
        (float(b["secs"]) - float(a["secs"])) / (int(b["step"]) - int(a["step"]))
        for a, b in itertools.pairwise(rows)
        if a["epoch"] == b["epoch"] and int(b["step"]) > int(a["step"])
    ]
    return 1.0 / float(np.median(gaps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MEDTALK_SHARED_DATA", DEFAULT_DATA)))
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", choices=["ddp"], default=None, help="only the training figures (needs --work of a run)")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_cluster"))
    videos = work / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for rel in CLIPS:
        link = videos / Path(rel).name
        if not link.exists():
            link.symlink_to(a.data / rel)
    cpus = os.cpu_count() or 2
    fig: dict = {"clips": len(CLIPS), "cpus": cpus}

    if a.only == "ddp":
        return _ddp_figures(work / "manifest", a.steps, work, fig, a.json)
    local_s, summary = extract(videos, work / "local", "--workers", str(cpus))
    frames = summary["frames"]
    ray_s, _ = extract(videos, work / "ray_local", "--engine", "ray")  # Ray started here, all CPUs
    fig.update(frames=frames, local_s=round(local_s, 1), ray_local_s=round(ray_s, 1))
    fig["engine_ratio_local_over_ray"] = round(local_s / ray_s, 3)
    print(f"1. {len(CLIPS)} clips, {frames} frames, {cpus} CPUs: local engine {local_s:.1f} s, Ray engine "
          f"{ray_s:.1f} s → ratio {local_s / ray_s:.2f} (target ≥ 0.9)")  # fmt: skip

    times = {}
    for n in (1, 2):
        cluster = Cluster(n)
        try:
            times[n], _ = extract(videos, work / f"ray{n}", "--engine", "ray", "--address", cluster.address)
        finally:
            cluster.stop()
    fig.update(one_node_s=round(times[1], 1), two_nodes_s=round(times[2], 1))
    fig["two_node_speedup"] = round(times[1] / times[2], 2)
    print(f"2. Ray cluster on this machine: 1 node × 1 CPU {times[1]:.1f} s, 2 nodes × 1 CPU {times[2]:.1f} s "
          f"→ speed-up {times[1] / times[2]:.2f}")  # fmt: skip

    # per core from the run that kept every core busy (a one-CPU task still runs MediaPipe's and
    # CTranslate2's threads on the other core, so the one-node figure would overstate a core)
    per_cpu_fps = frames / times[2] / cpus  # all four stages, engine overhead included
    mead_frames = MEAD_HOURS * 3600 * MEAD_FPS
    fig["per_core_fps"] = round(per_cpu_fps, 1)
    print(f"3. per core {per_cpu_fps:.1f} frames/s (all stages) → MEAD ≈ {mead_frames / 1e6:.1f} M frames:")
    for nodes, cores in ((1, 2), (8, 16), (32, 32)):
        hours = mead_frames / (per_cpu_fps * nodes * cores) / 3600
        fig[f"mead_hours_{nodes}x{cores}"] = round(hours, 1)
        print(
            f"   {nodes:3d} nodes × {cores:2d} cores: {hours:7.1f} h (linear in CPUs; storage and words model "
            "loading not modelled)"
        )

    from medtalk_data.extract.batch import extract_videos  # noqa: F401  (import check: same tree)
    from medtalk_data.manifest import build_manifest
    from medtalk_data.manifest.build import BuildOptions

    manifest = work / "manifest"
    if not manifest.exists():
        build_manifest([work / "local"], manifest, options=BuildOptions(val=0.0, test=0.0))
    _ddp_figures(manifest, a.steps, work, fig, a.json)


def _ddp_figures(manifest: Path, steps: int, work: Path, fig: dict, json_path: Path | None) -> None:
    s1 = ddp_steps_per_s(manifest, 1, steps, work)
    s2 = ddp_steps_per_s(manifest, 2, steps, work)
    fig.update(ddp_steps_per_s_1=round(s1, 2), ddp_steps_per_s_2=round(s2, 2))
    print(f"4. DDP on CPU (gloo), stage disentangle: 1 rank {s1:.2f} steps/s, 2 ranks {s2:.2f} steps/s "
          f"(each step of 2 ranks takes twice the windows: {2 * s2 / s1:.2f}× the windows/s)")  # fmt: skip
    if json_path:
        json_path.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
