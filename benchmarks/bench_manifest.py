"""Build a manifest from 10,000 synthetic extracted clips; compare with the bare Parquet reads.

Synthetic records (status.json + a small frames.parquet per clip, written with our own writer)
stand in for a large corpus. Prints the build time, the baseline (reading every clip's frames file
with pyarrow and nothing else, measured in the same run) and their ratio, plus the frame-read rate
of the finished manifest (what a trainer sees).

    python benchmarks/bench_manifest.py [--clips 10000] [--frames 50] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from medtalk_data.face.base import FaceObservation
from medtalk_data.face.frames import FramesWriter
from medtalk_data.face.grid import FrameSample
from medtalk_data.manifest import build_manifest, load_manifest
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES


def make_corpus(root: Path, n_clips: int, n_frames: int, fps: float = 25.0) -> None:
    rng = np.random.default_rng(0)
    emotions = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    for i in range(n_clips):
        clip_id = f"spk{i % 400:03d}__clip{i:05d}"
        clip = root / "clips" / clip_id
        clip.mkdir(parents=True)
        meta = {"clip_id": clip_id, "fps": fps, "blendshape_names": list(MEDIAPIPE_BLENDSHAPES)}
        writer = FramesWriter(clip / "frames.parquet", meta)
        samples = []
        for k in range(n_frames):
            face = FaceObservation(
                rng.random((478, 3), dtype=np.float32), rng.random(52, dtype=np.float32), np.eye(4, dtype=np.float32)
            )
            samples.append(FrameSample(k / fps, k, k / fps, face, 1, True))
        writer.write(samples)
        writer.close()
        status = {
            "status_schema_version": 1,
            "clip_id": clip_id,
            "state": "done",
            "kind": "video",
            "source": {"path": f"/corpus/{clip_id}.mp4", "relpath": f"{clip_id}.mp4", "sha256": f"{i:064x}"},
            "labels": {"speaker": f"spk{i % 400:03d}", "emotion": emotions[i % 7], "intensity": 0.5},
            "face": {"fps": fps, "n_frames": n_frames, "duration_s": n_frames / fps, "face_found_ratio": 1.0},
            "audio": None,
            "outputs": {"frames": "frames.parquet"},
        }
        (clip / "status.json").write_text(json.dumps(status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_manifest."))
    corpus = work / f"corpus_{args.clips}x{args.frames}"
    if not (corpus / "clips").is_dir():
        t0 = time.perf_counter()
        make_corpus(corpus, args.clips, args.frames)
        print(f"made {args.clips} synthetic clips in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    rows = 0
    for clip in sorted((corpus / "clips").iterdir()):
        json.loads((clip / "status.json").read_text())
        rows += pq.read_table(clip / "frames.parquet").num_rows
    baseline = time.perf_counter() - t0

    out = work / "manifest"
    t0 = time.perf_counter()
    report = build_manifest([corpus], out, overwrite=True)
    build = time.perf_counter() - t0

    m = load_manifest(out)
    t0 = time.perf_counter()
    table = m.frames(["clip_id", "time_s", "curves"])
    curves = table["curves"].combine_chunks().values.to_numpy().reshape(table.num_rows, -1)
    read = time.perf_counter() - t0
    print(f"clips {report.n_clips}, frames {report.n_frames} (baseline read {rows} rows)")
    print(f"baseline (read every status + frames file): {baseline:.2f} s")
    print(f"build-manifest:                             {build:.2f} s   ratio build/baseline = {build / baseline:.2f}")
    print(f"manifest frame read: {curves.shape[0] / read:,.0f} frames/s ({read:.3f} s for {curves.shape[0]} frames)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
