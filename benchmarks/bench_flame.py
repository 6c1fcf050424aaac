"""What the flame and deca backends cost, as ratios measured in the same run.

1. Face stage with and without FLAME: extract_videos (one worker, face stage only) on the same real
   clips with ``face.backends`` [mediapipe] and [mediapipe, flame]; the figure is the added time over
   the MediaPipe face stage's (target ≤ 0.5), with the FLAME fit's own frames/s and its landmark error.
2. Memory vs length: peak RSS of a child process that fits FLAME to a real clip's landmarks looped to
   1 and to 5 minutes (the fit streams window by window; the ratio should be ≈ 1).
3. CUDA, where torch sees a GPU: the same fit on the GPU vs the CPU (frames/s ratio).
4. The deca backend on the same clips: added time over the MediaPipe face stage (DECA's ResNet-50 on
   every decoded frame; ``$MEDTALK_DECA_MODEL`` where set, else a randomly initialised encoder of the
   real architecture, which costs the same).
5. The fan backend on 60 decoded frames of the first clip: FAN's frames/s through our landmarker next to
   face-alignment's own ``get_landmarks_from_image`` on the same boxes (the bare library loop; ratio ≈ 1
   means the adapter adds nothing) and next to MediaPipe's own detection of the same frames.
   ``$MEDTALK_FAN_MODEL`` where set, else randomly initialised FAN-4 weights (same cost).

The FLAME model is the user's (``$MEDTALK_FLAME_MODEL`` and ``$MEDTALK_FLAME_EMBEDDING``) where set,
else the synthetic FLAME-layout stand-in the tests build (same sizes of the fit: 100 identity and 50
expression coefficients; its mesh is MediaPipe's 468-point face, not FLAME's 5023 vertices, which
matters little: the fit evaluates only the landmarks' triangles).

    python benchmarks/bench_flame.py             # ~6 min on 2 cores
    python benchmarks/bench_flame.py --quick     # two clips, 1 and 2 minutes
    python benchmarks/bench_flame.py --json figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
CLIPS = (
    "video/pcavs_audio_source_00015.mp4",
    "video/pcavs_input_00098.mp4",
    "video/edtalk_uncrop_Obama.mp4",
    "video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4",
)


def flame_files(work: Path) -> tuple[str, str, str]:
    model, embedding = os.environ.get("MEDTALK_FLAME_MODEL"), os.environ.get("MEDTALK_FLAME_EMBEDDING")
    if model and embedding:
        return model, embedding, "your FLAME model"
    sys.path.insert(0, str(REPO))
    from tests.flame_standin import make_standin

    standin = make_standin(work / "standin")
    return str(standin.pkl), str(standin.embedding), "the synthetic FLAME-layout stand-in (no FLAME model given)"


def deca_file(work: Path) -> tuple[str, str]:
    given = os.environ.get("MEDTALK_DECA_MODEL")
    if given:
        return given, "your DECA weights"
    import torch

    from medtalk_data.face.deca.network import DecaCoarseEncoder

    path = work / "deca_model.tar"
    torch.save({"E_flame": DecaCoarseEncoder().state_dict()}, path)
    return str(path), "a randomly initialised DECA encoder (no DECA weights given)"


def extract(
    clips: list[Path], out: Path, backends: list[str], model: str, embedding: str, deca: str | None = None
) -> tuple[float, list[dict]]:
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings

    videos = out / "videos"
    videos.mkdir(parents=True)
    for clip in clips:
        (videos / clip.name).symlink_to(clip.resolve())
    settings = ExtractSettings(stages=["face"])
    settings.face.backends = backends
    settings.face.flame.model_path, settings.face.flame.embedding_path = model, embedding
    settings.face.deca.model_path = deca
    started = time.perf_counter()
    report = extract_videos(videos, out / "extracted", settings=settings, workers=1, progress=False)
    elapsed = time.perf_counter() - started
    assert not report.failed, report.failed
    statuses = [json.loads(p.read_text()) for p in sorted((out / "extracted" / "clips").glob("*/status.json"))]
    return elapsed, statuses


REPLAY = r"""
import json, resource, sys, time
import numpy as np
from pathlib import Path
from medtalk_data.face.base import FaceObservation
from medtalk_data.face.flame.fitter import ClipFlameFit, load_setup
from medtalk_data.face.flame.settings import FlameSettings
from medtalk_data.face.frames import read_frames
from medtalk_data.face.grid import FrameSample

frames_path, model, embedding, seconds, device, aspect = sys.argv[1:7]
frames = read_frames(Path(frames_path))
setup = load_setup(FlameSettings(model_path=model, embedding_path=embedding, device=device))
fit = ClipFlameFit(setup, aspect=float(aspect))
fps = frames.fps
total = int(float(seconds) * fps)
n = len(frames.time_s)
started = time.perf_counter()
for start in range(0, total, 64):  # the face stage hands frames over a few at a time
    batch = []
    for k in range(start, min(total, start + 64)):
        i = k % n if (k // n) % 2 == 0 else n - 1 - k % n  # looped back and forth: no jump at the seams
        lm = frames.landmarks[i]
        face = FaceObservation(lm, frames.blendshapes[i], frames.transform[i]) if np.isfinite(lm).all() else None
        batch.append(FrameSample(k / fps, k, k / fps, face, int(face is not None), face is not None))
    fit.push(batch)
fit.finish()
elapsed = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"frames": total, "seconds": elapsed, "peak_rss_mb": peak_mb,
                  "residual_mm_median": fit.summary().residual_mm_median}))
"""


def replay(frames_path: Path, model: str, embedding: str, seconds: float, device: str, aspect: float) -> dict:
    args = [str(frames_path), model, embedding, str(seconds), device, str(aspect)]
    done = subprocess.run([sys.executable, "-c", REPLAY, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    clips = [args.data / c for c in (CLIPS[:2] if args.quick else CLIPS)]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        sys.exit(f"missing clips: {missing}")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, embedding, which = flame_files(work)
        print(f"FLAME: {which}")
        # warm-up: model files converted and cached, imports done, so neither side pays them below
        extract(clips[:1], work / "warm", ["mediapipe", "flame"], model, embedding)
        plain_s, _ = extract(clips, work / "plain", ["mediapipe"], model, embedding)
        flame_s, statuses = extract(clips, work / "flame", ["mediapipe", "flame"], model, embedding)
        frames = sum(s["face"]["n_frames"] for s in statuses)
        fit_s = sum(s["flame"]["seconds"] for s in statuses)
        face_only_s = sum(s["timings_s"]["face"] - s["flame"]["seconds"] for s in statuses)
        added = (flame_s - plain_s) / plain_s
        print(f"\n1. {len(clips)} real clips, {frames} frames, face stage only, one worker")
        print(f"   MediaPipe face stage        {plain_s:7.1f} s  ({frames / plain_s:5.1f} frames/s)")
        print(f"   + flame backend             {flame_s:7.1f} s  ({frames / flame_s:5.1f} frames/s)")
        print(
            f"   added time                  {added:7.2f}   (target <= 0.50; the fit alone {fit_s:.1f} s = "
            f"{frames / fit_s:.0f} frames/s, {fit_s / face_only_s:.2f} of the MediaPipe part inside the same runs)"
        )
        for s in statuses:
            f = s["flame"]
            print(
                f"   {s['clip_id'][:36]:36s} {f['n_fitted']:5d} frames  "
                f"residual median {f['residual_mm_median']:.2f} mm, "
                f"p95 {f['residual_mm_p95']:.2f} mm"
            )
        figures["stage"] = {
            "frames": frames,
            "plain_s": plain_s,
            "flame_s": flame_s,
            "added": added,
            "fit_s": fit_s,
            "fit_over_mediapipe": fit_s / face_only_s,
        }

        first = sorted((work / "flame" / "extracted" / "clips").glob("*/frames.parquet"))[0]
        video = statuses[0]["video"]
        aspect = video["width"] / video["height"]
        lengths = (60.0, 120.0) if args.quick else (60.0, 300.0)
        runs = [replay(first, model, embedding, seconds, "cpu", aspect) for seconds in lengths]
        print("\n2. memory vs length (one clip's landmarks looped, fit in a child process)")
        for seconds, r in zip(lengths, runs, strict=True):
            print(
                f"   {seconds / 60:.0f} min: {r['frames']:6d} frames  {r['frames'] / r['seconds']:6.1f} frames/s  "
                f"peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        print(f"   peak RSS ratio {runs[1]['peak_rss_mb'] / runs[0]['peak_rss_mb']:.2f} (streaming: ~1)")
        figures["memory"] = {"lengths_s": lengths, "runs": runs}

        import torch

        if torch.cuda.is_available():
            cuda = replay(first, model, embedding, lengths[0], "cuda", aspect)
            ratio = (cuda["frames"] / cuda["seconds"]) / (runs[0]["frames"] / runs[0]["seconds"])
            print(f"\n3. CUDA: {cuda['frames'] / cuda['seconds']:.1f} frames/s, {ratio:.2f}x the CPU")
            figures["cuda"] = {**cuda, "ratio_vs_cpu": ratio}
        else:
            print("\n3. CUDA: no GPU visible to torch here; not measured")

        deca, which = deca_file(work)
        extract(clips[:1], work / "warm_deca", ["mediapipe", "deca"], model, embedding, deca)
        deca_s, deca_statuses = extract(clips, work / "deca", ["mediapipe", "deca"], model, embedding, deca)
        encoded = sum(s["deca"]["n_encoded"] for s in deca_statuses)
        encode_s = sum(s["deca"]["seconds"] for s in deca_statuses)
        print(f"\n4. deca backend ({which}), same clips")
        print(f"   + deca backend              {deca_s:7.1f} s  ({frames / deca_s:5.1f} frames/s)")
        print(
            f"   added time                  {(deca_s - plain_s) / plain_s:7.2f}   (the encoder alone: {encoded} faces "
            f"in {encode_s:.1f} s = {encoded / encode_s:.1f} frames/s)"
        )
        figures["deca"] = {
            "deca_s": deca_s,
            "added": (deca_s - plain_s) / plain_s,
            "encoded": encoded,
            "encode_s": encode_s,
        }
        figures["fan"] = fan_speed(clips[0], work)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def fan_speed(clip: Path, work: Path, n_frames: int = 60) -> dict:
    import numpy as np
    import torch
    from face_alignment import FaceAlignment, LandmarksType
    from face_alignment.models import FAN

    from medtalk_data.face import create_fitter
    from medtalk_data.face.fan.landmarker import DOWNLOAD_NAMES, FanLandmarker
    from medtalk_data.face.fan.settings import FanSettings
    from medtalk_data.face.ibug68 import MEDIAPIPE_FOR_IBUG68
    from medtalk_data.io.media import iter_frames, probe

    weights = os.environ.get("MEDTALK_FAN_MODEL")
    which = "your FAN weights"
    if not weights:
        weights, which = str(work / "fan4.pth.tar"), "randomly initialised FAN-4 weights (no FAN weights given)"
        torch.save(FAN(4).state_dict(), weights)
    os.environ["TORCH_HOME"] = str(work / "torch")  # face-alignment's loader finds the same weights in its cache
    (work / "torch" / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (work / "torch" / "hub" / "checkpoints" / DOWNLOAD_NAMES["2D"]).write_bytes(Path(weights).read_bytes())
    frames = []
    for decoded in iter_frames(clip, probe(clip).nominal_fps):
        frames.append(decoded.rgb)
        if len(frames) == n_frames:
            break
    tracker = create_fitter("mediapipe")
    started = time.perf_counter()
    faces = [tracker.detect(rgb, 40 * i) for i, rgb in enumerate(frames)]
    mediapipe_s = time.perf_counter() - started
    tracker.close()
    pairs = [(rgb, found[0].landmarks) for rgb, found in zip(frames, faces, strict=True) if found]
    ours = FanLandmarker(FanSettings(model_path=weights))
    library = FaceAlignment(LandmarksType.TWO_D, device="cpu", flip_input=False, face_detector="folder", compile=False)
    ours_s = library_s = 0.0
    for i, (rgb, landmarks) in enumerate(pairs):  # interleaved frame by frame, so drift of the machine hits both
        pts = landmarks[list(MEDIAPIPE_FOR_IBUG68), :2] * np.array([rgb.shape[1], rgb.shape[0]])
        box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
        calls = [("ours", ours.locate, (rgb, landmarks), {}),
                 ("library", library.get_landmarks_from_image, (rgb,), {"detected_faces": [box]})]  # fmt: skip
        spent = {}
        for name, call, args, kwargs in calls if i % 2 else calls[::-1]:  # each goes first on every other frame
            started = time.perf_counter()
            call(*args, **kwargs)
            spent[name] = time.perf_counter() - started
        if i >= 3:  # the first calls compile face-alignment's numba code and warm torch up
            ours_s += spent["ours"]
            library_s += spent["library"]
    pairs = pairs[3:]
    n = len(pairs)
    print(f"\n5. fan backend ({which}), {n} frames of {clip.name}")
    print(f"   MediaPipe detection         {len(frames) / mediapipe_s:6.1f} frames/s")
    print(f"   FAN, our landmarker         {n / ours_s:6.2f} frames/s")
    print(f"   FAN, face-alignment's loop  {n / library_s:6.2f} frames/s")
    print(f"   ours / library time         {ours_s / library_s:6.2f}")
    return {"frames": n, "mediapipe_fps": len(frames) / mediapipe_s, "ours_fps": n / ours_s,
            "library_fps": n / library_s, "ours_over_library": ours_s / library_s}  # fmt: skip


if __name__ == "__main__":
    main()
