"""Training speed on each device and precision, measured in one run, plus a resume-equality check.

Trains stages 1-3 of the small preset on a manifest (log-mel audio and no text encoder by default,
so the check needs no model files and runs on a bare GPU machine) once per (device, precision),
and prints steps/s of a second pass (feature cache filled, CUDA started) with the ratio to the
first row. Then trains the same stages twice on the first device — straight through, and stopped
with --max-steps and resumed — and reports whether the logged losses are identical.

    python benchmarks/bench_train.py --manifest manifests/mydata [--devices cuda,cpu] [--epochs 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import torch

from medtalk_models.config import load_config
from medtalk_models.train import train

STAGES = ("disentangle", "audio_content", "intensity")


def config(epochs: int, amp: str, backbones: str) -> dict:
    cfg = load_config()
    if backbones == "light":
        for part in ("content", "emotion"):
            cfg["audio"][part]["kind"] = "logmel"
        cfg["model"]["audio_conv_kernel"] = 5
        cfg["text"]["kind"] = "none"
    cfg["stages"]["disentangle"]["epochs_per_phase"] = epochs
    for stage in ("audio_content", "intensity"):
        cfg["stages"][stage]["epochs"] = 4 * epochs
    cfg["train"]["amp"] = amp
    cfg["train"]["save_every"] = 20
    return cfg


def log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--devices", default="cuda,cpu" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--backbones", choices=("light", "config"), default="light")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medtalk_bench_train_"))
    runs = []
    for device in args.devices.split(","):
        for amp in ("auto", "fp16", "off") if device.startswith("cuda") else ("off",):
            run = work / f"{device}-{amp}"
            cfg = config(args.epochs, amp, args.backbones)
            for _ in range(2):  # the first pass fills the feature cache and starts CUDA; the second is timed
                t0 = time.perf_counter()
                for i, stage in enumerate(STAGES):
                    train(args.manifest, cfg, run, stage, device=device, progress=False, overwrite=i == 0)
                wall = time.perf_counter() - t0
            steps = [r for r in log_rows(run) if r["split"] == "train"]
            last = {s: float([r for r in steps if r["stage"] == s][-1]["loss"]) for s in STAGES}
            runs.append({"device": device, "amp": amp, "steps": len(steps), "wall_s": wall, "last_loss": last})
    base = runs[0]["steps"] / runs[0]["wall_s"]
    for r in runs:
        rate = r["steps"] / r["wall_s"]
        print(f"{r['device']:>6} amp={r['amp']:<4} {r['steps']} steps in {r['wall_s']:.1f} s = {rate:.1f} steps/s "
              f"({rate / base:.2f}× the first row); last losses {r['last_loss']}")  # fmt: skip
    device = args.devices.split(",")[0]
    cfg = config(1, "auto", args.backbones)
    a, b = work / "resume-a", work / "resume-b"
    for i, stage in enumerate(STAGES):
        train(args.manifest, cfg, a, stage, device=device, progress=False, overwrite=i == 0)
    train(args.manifest, cfg, b, STAGES[0], device=device, progress=False, max_steps=37)
    for stage in STAGES:
        train(args.manifest, cfg, b, stage, device=device, progress=False, resume=True)
    ka = [(r["stage"], r["step"], r["split"], r["loss"]) for r in log_rows(a)]
    kb = [(r["stage"], r["step"], r["split"], r["loss"]) for r in log_rows(b)]
    print(f"resume on {device}: {len(ka)} logged rows, identical to the uninterrupted run: {ka == kb}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "resume_identical": ka == kb}, indent=1))


if __name__ == "__main__":
    main()
