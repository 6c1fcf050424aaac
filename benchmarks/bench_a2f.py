"""What `export-a2f` gives the Audio2Face-3D framework, measured on real clips in one run.

Per clip, for both skin sources (the MediaPipe canonical face from a ``--landmarks`` manifest, and
FLAME's mesh from a ``--rig flame`` manifest of the same extraction):

- how far the head turned in the video (range of MediaPipe's yaw) and, for the canonical face, how
  much rotation is left in the cache (an unweighted Kabsch fit of its 33 rigid points onto their
  first frame, p95; FLAME's mesh is posed with head pose zero, so it has none by construction);
- the inner-eye-corner distance, a rigid pair, as its 95th/5th-percentile ratio − 1 (the issue's
  figure: "constant within 1 %");
- the time of each export next to the bare library loop that writes the same arrays (``np.save``
  of caches of the same shape), as a ratio.

The FLAME model is the user's (``$MEDTALK_FLAME_MODEL`` and ``$MEDTALK_FLAME_EMBEDDING``) where set,
else the synthetic FLAME-layout stand-in the tests build — whose random expression bases move the eye
corners, so only a real FLAME's eye-corner figure means anything.

    python benchmarks/bench_a2f.py              # 4 clips, ~3 min on 2 cores
    python benchmarks/bench_a2f.py --json figures.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_flame import CLIPS, DEFAULT_DATA, flame_files  # noqa: E402

from tests.geometry import rotation_deg  # noqa: E402


def extract(clips: list[Path], out: Path, model: str, embedding: str) -> Path:
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings

    videos = out / "videos"
    videos.mkdir(parents=True)
    for clip in clips:
        (videos / clip.name).symlink_to(clip.resolve())
    settings = ExtractSettings(stages=["face", "audio"])
    settings.face.backends = ["mediapipe", "flame"]
    settings.face.flame.model_path, settings.face.flame.embedding_path = model, embedding
    report = extract_videos(videos, out / "extracted", settings=settings, workers=1, progress=False)
    assert not report.failed, report.failed
    return out / "extracted"


def measure(export_dir: Path, eye_corners: tuple[int, int], rigid: list[int] | None) -> list[dict]:
    """Per shot: frames, vertices, eye-corner p95/p5 − 1 and (with ``rigid`` vertex ids) the rotation left."""
    rows = []
    for shot in csv.DictReader((export_dir / "shots.csv").open()):
        cache = np.load(export_dir / "data" / shot["actor"] / "cache" / "skin" / shot["shot"] / f"{shot['shot']}.npy")
        eyes = np.linalg.norm(cache[:, eye_corners[0]] - cache[:, eye_corners[1]], axis=1)
        left = None if rigid is None else float(np.percentile(rotation_deg(cache[:, rigid], cache[0, rigid]), 95))
        rows.append({"clip": shot["clip_id"], "frames": len(cache), "vertices": cache.shape[1],
                     "eye_corner_p95_p5": float(np.percentile(eyes, 95) / np.percentile(eyes, 5) - 1),
                     "rotation_left_p95_deg": left})  # fmt: skip
    return rows


def bare_save(export_dir: Path, work: Path) -> float:
    """np.save of arrays of the export's cache shapes: the library loop the export is judged against."""
    shapes = [np.load(p, mmap_mode="r").shape for p in sorted(export_dir.glob("data/*/cache/skin/*/*.npy"))]
    started = time.perf_counter()
    for k, shape in enumerate(shapes):
        np.save(work / f"bare_{k}.npy", np.zeros(shape, np.float32) + k)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from medtalk_data.export.a2f import export_a2f
    from medtalk_data.face.canonical_mesh import load_canonical_mesh
    from medtalk_data.io.arrow import fixed_size_numpy
    from medtalk_data.manifest import build_manifest, load_manifest
    from medtalk_data.manifest.build import BuildOptions

    clips = [args.data / c for c in CLIPS]
    figures: dict = {"skins": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, embedding, which = flame_files(work)
        print(f"FLAME: {which}")
        extracted = extract(clips, work / "x", model, embedding)
        turned = {}
        for skin, options in (("mediapipe", {"landmarks": True}), ("flame", {"rig": "flame"})):
            manifest = work / f"manifest_{skin}"
            build_manifest([extracted], manifest, options=BuildOptions(val=0.0, test=0.0, **options))
            loaded = load_manifest(manifest)
            for row in loaded.rows():
                head = fixed_size_numpy(loaded.frames(["head_rotation_deg"], [row.clip_id])["head_rotation_deg"])
                turned[row.clip_id] = float(np.ptp(head[:, 1]))
            started = time.perf_counter()
            report = export_a2f(manifest, work / f"a2f_{skin}", flame_model=model, flame_embedding=embedding)
            export_s = time.perf_counter() - started
            bare_s = bare_save(work / f"a2f_{skin}", work)
            rigid = load_canonical_mesh().procrustes_ids if skin == "mediapipe" else None
            rows = measure(work / f"a2f_{skin}", report.eye_corners, rigid)
            figures["skins"][skin] = {"export_s": export_s, "bare_save_s": bare_s, "clips": rows}
            frames = sum(r["frames"] for r in rows)
            print(f"\n{skin}: {len(rows)} shots, {frames} frames of {rows[0]['vertices']} vertices; "
                  f"export {export_s:.2f} s ({frames / export_s:.0f} frames/s) against np.save of the same arrays "
                  f"alone {bare_s:.3f} s (ratio {export_s / bare_s:.0f}: the export also reads, aligns or poses, "
                  "and writes the audio)")  # fmt: skip
            print(f"   {'clip':42s} {'frames':>6s} {'head turn':>9s} {'left p95':>8s} {'eye p95/p5-1':>12s}")
            for r in rows:
                left = "   none" if r["rotation_left_p95_deg"] is None else f"{r['rotation_left_p95_deg']:6.2f}°"
                print(f"   {r['clip']:42s} {r['frames']:6d} {turned[r['clip']]:8.1f}° {left:>8s}"
                      f" {100 * r['eye_corner_p95_p5']:11.1f} %")  # fmt: skip
        figures["flame"] = which
        figures["head_turn_deg"] = turned
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
