"""Extraction throughput and memory, as ratios against baselines measured in the same run.

1. Per worker: frames/s of our face stage (decode → FaceLandmarker → tracking → constant-fps grid
   → Parquet) vs the bare loop (PyAV decode → mp.Image → detect_for_video, same model and options)
   on the same files. Both sides decode; the ratio is ours / bare (target ≥ 0.85).
2. Scaling: extract_videos on the same clips with 1 and with 2 workers (speed-up ratio).
3. Memory vs length: peak RSS of `medtalk-data extract` (one worker, in a child process) on a real
   clip looped to 1 minute and to 5 minutes; the ratio should be ≈ 1 (streaming).
4. Stages: extract_videos (one worker) on the same clips with the face stage alone, face + labels
   (the expression classifier inside the face stage's frame loop: one decode), and all four stages;
   the ratio is frames/s of each against the face stage alone (target for all four ≥ 0.8). Then why
   the words stage's forced aligner runs in a child process there: the rate of a Python loop beside
   an alignment in this process (pocketsphinx holds the interpreter lock) and in the child.

    python benchmarks/bench_extract.py            # full run (~6 min on 2 cores)
    python benchmarks/bench_extract.py --quick    # smoke run (shorter videos)
    python benchmarks/bench_extract.py --only stages
    python benchmarks/bench_extract.py --json figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
CLIPS = (
    "video/pcavs_audio_source_00015.mp4",
    "video/pcavs_input_00098.mp4",
    "video/edtalk_uncrop_Obama.mp4",
    "video/pcavs_pose_source_741400163.mp4",
)
LOOP_SOURCE = "video/pcavs_audio_source_00015.mp4"


def bare_loop(path: Path) -> tuple[int, float]:
    """The baseline: decode and run the landmarker, nothing else."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from medtalk_data import assets
    from medtalk_data.io.native import native_stderr_silenced

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(assets.resolve("face_landmarker", download=False))),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=2,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    start = time.perf_counter()
    n = 0
    with native_stderr_silenced():  # the same start-up chatter filter our fitter uses
        landmarker = vision.FaceLandmarker.create_from_options(options)
    with landmarker, av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = -1
        for frame in container.decode(stream):
            # PyAV pads rows of odd widths (e.g. 450 px): mp.Image needs a contiguous copy, or it sees garbage
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            ts = max(round(frame.time * 1000), last + 1)
            last = ts
            landmarker.detect_for_video(image, ts)
            n += 1
    return n, time.perf_counter() - start


def ours(path: Path, work: Path) -> tuple[int, float]:
    from medtalk_data.face.stage import run_face_stage
    from medtalk_data.io.media import probe
    from medtalk_data.settings import ExtractSettings

    start = time.perf_counter()
    info = probe(path)
    summary = run_face_stage(path, info, ExtractSettings(), work / f"{path.stem}.parquet", {"clip_id": path.stem})
    return summary.face.n_frames, time.perf_counter() - start


def per_worker(data: Path, work: Path, repeats: int) -> dict:
    rows = []
    for rel in CLIPS:
        path = data / rel
        best_bare = best_ours = float("inf")
        frames = 0
        for _ in range(repeats):  # alternate, keep the best of each: less noise from the other core
            frames, t = bare_loop(path)
            best_bare = min(best_bare, t)
            n, t = ours(path, work)
            assert n == frames, (n, frames)
            best_ours = min(best_ours, t)
        rows.append({"clip": rel, "frames": frames, "bare_fps": frames / best_bare, "ours_fps": frames / best_ours})
        print(f"  {rel:45s} {frames:4d} frames  bare {frames / best_bare:6.1f} fps  ours {frames / best_ours:6.1f} fps")
    total = sum(r["frames"] for r in rows)
    bare = total / sum(r["frames"] / r["bare_fps"] for r in rows)
    mine = total / sum(r["frames"] / r["ours_fps"] for r in rows)
    print(f"per worker: ours {mine:.1f} fps / bare {bare:.1f} fps = ratio {mine / bare:.3f}  (target >= 0.85)")
    return {"clips": rows, "bare_fps": bare, "ours_fps": mine, "ratio": mine / bare}


def scaling(data: Path, work: Path) -> dict:
    from medtalk_data.extract.batch import extract_videos

    videos = work / "scaling_videos"
    videos.mkdir(exist_ok=True)
    for rel in CLIPS:
        if not (videos / Path(rel).name).exists():
            (videos / Path(rel).name).symlink_to(data / rel)
    result = {}
    for workers in (1, 2):
        out = work / f"scaling_out_{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        report = extract_videos(videos, out, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        result[workers] = report.frames / elapsed
        print(f"  workers={workers}: {report.frames} frames in {elapsed:.1f} s = {result[workers]:.1f} fps")
    speedup = result[2] / result[1]
    print(f"scaling 1 -> 2 workers: {speedup:.2f}x (ideal 2.0 on 2 free cores)")
    return {"fps_1": result[1], "fps_2": result[2], "speedup": speedup}


def stage_costs(data: Path, work: Path, repeats: int) -> dict:
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings

    videos = work / "stage_videos"
    videos.mkdir(exist_ok=True)
    for rel in CLIPS:
        if not (videos / Path(rel).name).exists():
            (videos / Path(rel).name).symlink_to(data / rel)
    variants = {"face": ["face"], "face+labels": ["face", "labels"], "all four": ["face", "audio", "words", "labels"]}
    best = dict.fromkeys(variants, float("inf"))
    frames = 0
    for _ in range(repeats):  # alternate the variants, keep the best of each
        for name, stages in variants.items():
            out = work / f"stages_{name.replace('+', '_').replace(' ', '_')}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            report = extract_videos(videos, out, settings=ExtractSettings(stages=stages), workers=1, progress=False)
            best[name] = min(best[name], time.perf_counter() - start)
            assert not report.failed, report.failed
            frames = report.frames
    fps = {name: frames / t for name, t in best.items()}
    for name in variants:
        print(
            f"  {name:12s} {frames} frames in {best[name]:.1f} s = {fps[name]:6.1f} fps  "
            f"ratio {fps[name] / fps['face']:.2f}"
        )
    ratio = fps["all four"] / fps["face"]
    print(f"all four stages / face stage alone: {ratio:.2f}  (target >= 0.8)")
    lock = aligner_lock(work / "stages_all_four")
    return {"fps": fps, "ratio_labels": fps["face+labels"] / fps["face"], "ratio_all": ratio, "loop_rate": lock}


def aligner_lock(extracted: Path) -> dict:
    """A Python loop's rate beside forced alignment of a real clip's words, over its rate alone."""
    import threading

    from medtalk_data.extract.layout import AUDIO_FILE, WORDS_FILE, clip_dir
    from medtalk_data.io.wav import read_wav
    from medtalk_data.words.align import ForcedAligner
    from medtalk_data.words.align_process import AlignerProcess

    clip = clip_dir(extracted, Path(CLIPS[0]).stem)
    pcm = read_wav(clip / AUDIO_FILE)[0]
    words = [w["text"] for w in json.loads((clip / WORDS_FILE).read_text())["words"]]

    def count(seconds: float) -> int:
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    rates = {}
    for name, aligner in (("in this process", ForcedAligner()), ("in a child process", AlignerProcess())):
        aligner.align(pcm, words)  # loaded and started
        done = threading.Event()

        def busy(aligner=aligner, done=done) -> None:
            while not done.is_set():
                aligner.align(pcm, words)

        alone = count(1.0)
        thread = threading.Thread(target=busy)
        thread.start()
        time.sleep(0.2)
        rates[name] = count(1.0) / alone
        done.set()
        thread.join()
        getattr(aligner, "close", lambda: None)()
        print(f"  a Python loop beside forced alignment {name}: {rates[name]:.2f} of its rate alone")
    return rates


def looped_video(src: Path, seconds: float, dst: Path) -> Path:
    """Loop a real clip (video and audio) to ``seconds``; cached by name."""
    if dst.exists():
        return dst
    frames, audio, rate = [], [], 16000
    with av.open(str(src)) as container:
        fps = container.streams.video[0].average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(src)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for f in container.decode(audio=0):
            audio += [o.to_ndarray().reshape(-1) for o in resampler.resample(f)]
    pcm = np.concatenate(audio)
    n_frames = int(seconds * float(fps))
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps))
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "23"}
        aus = out.add_stream("aac", rate=rate)
        aus.layout = "mono"
        for i in range(n_frames):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")))
        out.mux(vs.encode(None))
        total = int(seconds * rate)
        for start in range(0, total, 1024):
            idx = np.arange(start, min(start + 1024, total)) % len(pcm)
            af = av.AudioFrame.from_ndarray(pcm[idx][None, :].astype(np.float32), format="flt", layout="mono")
            af.sample_rate = rate
            af.pts = start
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    tmp.rename(dst)
    return dst


def peak_rss_mb(video: Path, work: Path) -> tuple[float, float]:
    """Peak RSS of a `medtalk-data extract` child process on one video, and its wall time."""
    folder = work / f"mem_{video.stem}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / video.name).symlink_to(video)
    cmd = [str(Path(sys.executable).with_name("medtalk-data")), "extract", str(folder), "--out", str(folder / "out"),
           "--workers", "1", "--no-progress"]  # fmt: skip
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
    )
    run = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"extract failed on {video}: {run.stderr[-2000:]}")
    out = run.stdout
    kb, seconds = out.split()
    return int(kb) / 1024, float(seconds)


def memory(data: Path, cache: Path, quick: bool) -> dict:
    short_s, long_s = (30.0, 90.0) if quick else (60.0, 300.0)
    result = {}
    for seconds in (short_s, long_s):
        video = looped_video(data / LOOP_SOURCE, seconds, cache / f"loop_{int(seconds)}s.mp4")
        mb, wall = peak_rss_mb(video, cache)
        result[seconds] = mb
        print(f"  {seconds:5.0f} s video: peak RSS {mb:.0f} MB ({wall:.0f} s)")
    ratio = result[long_s] / result[short_s]
    print(f"memory {long_s:.0f} s / {short_s:.0f} s video: {ratio:.2f} (flat = 1.0)")
    return {
        "short_s": short_s,
        "long_s": long_s,
        "short_mb": result[short_s],
        "long_mb": result[long_s],
        "ratio": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared real-media folder")
    parser.add_argument("--quick", action="store_true", help="shorter videos, one repeat")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "medtalk_bench_cache")
    parser.add_argument("--only", choices=["per_worker", "scaling", "memory", "stages"], default=None)
    parser.add_argument("--repeats", type=int, default=None, help="rounds of each comparison (best kept; default 3)")
    args = parser.parse_args()
    os.environ["MEDTALK_OFFLINE"] = "1"
    args.cache.mkdir(parents=True, exist_ok=True)
    figures = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repeats = args.repeats or (1 if args.quick else 3)
        sections = {
            "per_worker": (
                "1. per-worker throughput (same files, both sides decode)",
                lambda: per_worker(args.data, work, repeats),
            ),
            "scaling": ("2. scaling", lambda: scaling(args.data, work)),
            "memory": ("3. memory vs video length", lambda: memory(args.data, args.cache, args.quick)),
            "stages": (
                "4. stages against the face stage alone (one worker)",
                lambda: stage_costs(args.data, work, repeats),
            ),
        }
        for key, (title, run) in sections.items():
            if args.only in (None, key):
                print(title)
                figures[key] = run()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
