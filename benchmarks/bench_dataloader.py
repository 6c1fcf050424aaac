"""Training data loading: frames/s of batches from a manifest, against bare reads and the trainer.

Builds a synthetic manifest (default 2,000 clips × 150 frames at 25 fps), then measures in the
same run:

* load: building :class:`TrainingData` (Parquet → contiguous arrays) vs a bare pyarrow read of
  the same frames table;
* batches: windows gathered into torch tensors (curves + 384-d audio features, as with Whisper
  tiny) in frames/s — the issue's floor is 50,000 frames/s;
* the consumer: frames/s that a stage-2 training step (small config) consumes on this machine,
  so the ratio says how far loading is from being the bottleneck.

    python benchmarks/bench_dataloader.py [--clips 2000] [--frames 150] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_manifest import make_corpus

from medtalk_data.manifest import build_manifest, load_manifest
from medtalk_models.config import load_config
from medtalk_models.data import TrainingData, manifest_rig
from medtalk_models.model import MEDTalk, ModelDims, trainable_parameters
from medtalk_models.stages import StageLoss

TARGET = 50_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="medtalk_bench_loader_"))
    try:
        extracted, manifest_dir = work / "extracted", work / "manifest"
        if not manifest_dir.exists():
            print(f"building a synthetic manifest of {args.clips} clips × {args.frames} frames …", flush=True)
            make_corpus(extracted, args.clips, args.frames)
            build_manifest([extracted], manifest_dir)
        cfg = load_config()
        manifest = load_manifest(manifest_dir)
        rig = manifest_rig(manifest, cfg)

        t0 = time.perf_counter()
        bare = pq.read_table(manifest_dir / "frames.parquet", columns=["clip_id", "curves"])
        bare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = TrainingData(manifest, rig, cfg, None, set())
        load_s = time.perf_counter() - t0
        n = data.n_frames
        print(f"load:    {n} frames in {load_s:.2f} s ({n / load_s:,.0f} frames/s); bare pyarrow read "
              f"{bare.num_rows} rows in {bare_s:.2f} s; ratio {load_s / bare_s:.2f}×")  # fmt: skip

        data.feats["content"] = np.random.default_rng(0).standard_normal((n, 384)).astype(np.float16)
        rng = np.random.default_rng(0)
        windows = data.windows(rng)
        bs = cfg["data"]["batch_size"] * 8
        device = torch.device("cpu")
        frames = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            for i in range(0, len(windows) - bs, bs):
                batch = data.to_batch(windows[i : i + bs], device, rng)
                frames += batch["x"].shape[0] * batch["x"].shape[1]
                if time.perf_counter() - t0 > 3.0:
                    break
        loader_fps = frames / (time.perf_counter() - t0)

        dims = ModelDims(rig_dim=rig.dim, content_feat_dim=384, emotion_feat_dim=384, text_token_dim=384,
                         sentence_dim=384, image_dim=52)  # fmt: skip
        model = MEDTalk(dims)
        params = trainable_parameters(model, "audio_content")
        opt = torch.optim.Adam(params, lr=1e-3)
        loss_fn = StageLoss("audio_content", model, rig, cfg, device)
        bs = cfg["data"]["batch_size"]
        batches = [data.to_batch(windows[i : i + bs], device, rng) for i in range(0, bs * 50, bs)]
        t0 = time.perf_counter()
        used = 0
        for batch in batches:
            terms, _ = loss_fn.batch_loss(batch)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            used += batch["x"].shape[0] * batch["x"].shape[1]
        step_fps = used / (time.perf_counter() - t0)
        print(f"batches: {loader_fps:,.0f} frames/s (curves + 384-d features into tensors); "
              f"target {TARGET:,}: {loader_fps / TARGET:.1f}× the target")  # fmt: skip
        window = cfg["data"]["window_frames"]
        threads = torch.get_num_threads()
        print(f"trainer: a stage-2 step (batch {bs} × {window}) consumes {step_fps:,.0f} frames/s on {threads} "
              f"threads; loading is {loader_fps / step_fps:.1f}× faster")  # fmt: skip
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
