"""Lip-motion quality on speakers held out from training: the model against the baseline ladder.

Leave-speakers-out over the real clips of ``../shared/data``: ten talking clips of ten people are
held out (their own manifest, evaluated with ``--split all``); every other clip with a face —
talking clips with audio, RAVDESS/CREMA-D clips, video-only MEAD clips — trains (the two Barack
Obama clips are one speaker, through a labels CSV; both train). The trained run is scored by
``medtalk-models evaluate`` against the baselines it stores, fitted on the same training frames:
mean pose, energy jaw, ridge from the same audio features per frame and with ±k frames of
context; the table is printed and written as JSON. Emotions: the second MEAD speaker (W011, video
only, seven labels) is held out too; every label is animated on the held-out speech and named by
the classifier the run stored (fitted on the real labelled training clips), next to its accuracy
on W011's real clips, and three real photographs of expressive faces drive image control (see
``medtalk_models.recognise``). No validation split: every training speaker trains.

    python benchmarks/bench_quality.py [--work bench_out/quality] [--preset small] [--config my.yaml]

Extraction is resumable (a second run extracts nothing); ``--reuse-run`` skips training when the
run folder is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDTALK_SHARED_DATA", REPO.parent / "shared" / "data"))

HELD_OUT = (  # ten talking clips, ten people, none of whom appears in a training clip
    "video/edtalk_mouth_source.mp4",
    "video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4",
    "video/pcavs_audio_source_00015.mp4",
    "video/pcavs_audio_source_681100216.mp4",
    "video/pcavs_input_00098.mp4",
    "video/pcavs_pose_source_796100172.mp4",
    "video/retalking_face2.mp4",
    "video/styletalk_KristiNoem.mp4",
    "video/styletalk_andrew_clip_1.mp4",
    "video/styletalk_feifeili_clip1.mp4",
    # the second MEAD speaker (video only, eight emotions): the real reference of emotion recognisability
    *(
        f"video_noaudio/mead_W011_front_{emotion}_001.mp4"
        for emotion in (
            "angry_level3",
            "contempt_level3",
            "disgusted_level3",
            "fear_level3",
            "happy_level3",
            "neutral_level1",
            "sad_level3",
            "surprised_level3",
        )
    ),
)
DEV = (  # --dev: five more talking clips (five people) held out of training to tune on, never the ten above
    "video/latentsync_demo1.mp4",
    "video/liveportrait_d11.mp4",
    "video/pcavs_audio_source_00086.mp4",
    "video/pcavs_input_00010.mp4",
    "video/retalking_face4.mp4",
)
SAME_SPEAKER = {  # clips of one person (PC-AVS names: the first four digits of a long id are the VoxCeleb person)
    "edtalk_uncrop_Obama": "barack_obama",
    "styletalk_Obama_clip1": "barack_obama",
    "pcavs_audio_source_741400104": "voxceleb_7414",
    "pcavs_pose_source_741400163": "voxceleb_7414",
    "pcavs_input_00002": "voxceleb_5176",  # the same woman as pose source 517600055 (checked by eye)
    "pcavs_pose_source_517600055": "voxceleb_5176",
}
FOLDERS = ("video", "video_emotional", "video_noaudio")


def link_clips(target: Path, sources: list[Path]) -> Path:
    """A folder of links to exactly these sources (links to others from an earlier run removed)."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {src.name: src for src in sources}
    for link in target.iterdir():
        if link.name not in wanted:
            link.unlink()
    for name, src in wanted.items():
        if not (target / name).exists():
            (target / name).symlink_to(src)
    return target


def drop_stale_clips(extracted: Path, sources: list[Path]) -> None:
    """Clip folders of sources no longer in the set (an earlier run's) must not reach the manifest."""
    import shutil

    keep = {src.stem for src in sources}
    for folder in (extracted / "clips").iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder)


def extract(videos: Path, out: Path, workers: int, labels_csv: Path | None) -> None:
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.extract.discovery import discover
    from medtalk_pipelines import labels_for_path
    from medtalk_pipelines.labels_csv import apply_overrides, read_labels_csv

    recipe = labels_for_path("auto", root=videos)
    overrides = read_labels_csv(labels_csv, {c.clip_id for c in discover(videos).clips}) if labels_csv else {}
    report = extract_videos(
        videos, out, workers=workers, progress=False,
        labels_for=lambda clip: apply_overrides(recipe(clip.relpath), overrides.get(clip.clip_id, {})),
    )  # fmt: skip
    print(f"extract {videos.name}: {len(report.done)} done, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed ({report.elapsed_s:.0f} s)", flush=True)  # fmt: skip


REFERENCE_IMAGES = {  # real expressive faces of ../shared/data/image (people in no clip) and their emotion
    "image/ravdess_01-01-03-02-01-01-24.png": "happy",
    "image/sadtalker_happy.png": "happy",
    "image/sadtalker_sad.png": "sad",
}


def judge_reference_images(run: Path, manifest: Path, speech_ids: list[str]) -> dict | None:
    """Image control with real photographs (our face fitter → blendshapes → the stage-4 image map), animated
    on the same held-out speech as the labels and named by the run's classifier."""
    from medtalk_data.manifest import load_manifest
    from medtalk_models.animate import Animator, EmotionControl
    from medtalk_models.checkpoint import load_extra
    from medtalk_models.recognise import INTENSITY, EmotionClassifier, Judge, SpeechClip

    arrays = load_extra(run / "model", "emotion_classifier")
    if arrays is None:
        return None
    classifier = EmotionClassifier.from_arrays({k: v.numpy() for k, v in arrays.items()})
    animator = Animator(run)
    try:
        held = load_manifest(manifest)
        rows = {r.clip_id: r for r in held.rows()}
        speech = [SpeechClip(i, str(held.audio_file(rows[i])), rows[i].transcript or None) for i in speech_ids]
        cases = [(rel, EmotionControl(image=DATA / rel, intensity=INTENSITY), label)
                 for rel, label in REFERENCE_IMAGES.items()]  # fmt: skip
        return Judge(animator, classifier, speech).controls(cases)
    finally:
        animator.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=REPO / "bench_out" / "quality")
    ap.add_argument("--preset", choices=("small", "paper"), default="small")
    ap.add_argument("--config", type=Path, default=None, help="A training config on top of the preset.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reuse-run", action="store_true", help="Keep a finished run in --work instead of retraining.")
    ap.add_argument("--json", type=Path, default=None, help="Where to write the figures [default: WORK/quality.json].")
    ap.add_argument("--extract-only", action="store_true", help="Extract and build the manifests, then stop.")
    ap.add_argument(
        "--dev", action="store_true", help="Tune: hold out the DEV clips too and score on them, not the test ten."
    )
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA} (set MEDTALK_SHARED_DATA)")

    from medtalk_data.manifest import build_manifest
    from medtalk_data.manifest.build import BuildOptions
    from medtalk_models.config import load_config
    from medtalk_models.evaluate import evaluate, markdown_table
    from medtalk_models.train import train

    work = args.work
    held = [DATA / rel for rel in HELD_OUT]
    dev = [DATA / rel for rel in DEV]
    training = sorted(p for folder in FOLDERS for p in (DATA / folder).glob("*.mp4") if p not in held)
    if args.dev:
        training = [p for p in training if p not in dev]
    scored = dev if args.dev else held
    tag = "dev" if args.dev else "test"
    labels = work / "labels.csv"
    work.mkdir(parents=True, exist_ok=True)
    labels.write_text("clip_id,speaker\n" + "".join(f"{k},{v}\n" for k, v in SAME_SPEAKER.items()), "utf-8")
    train_videos = work / f"videos_train_{tag}"
    extract(link_clips(train_videos, training), work / f"extracted_train_{tag}", args.workers, labels)
    extract(link_clips(work / f"videos_{tag}", scored), work / f"extracted_{tag}", args.workers, None)
    drop_stale_clips(work / f"extracted_train_{tag}", training)
    drop_stale_clips(work / f"extracted_{tag}", scored)
    train_manifest, test_manifest = work / f"manifest_train_{tag}", work / f"manifest_{tag}"
    build_manifest([work / f"extracted_train_{tag}"], train_manifest, options=BuildOptions(val=0.0, test=0.0),
                   overwrite=True)  # fmt: skip
    build_manifest([work / f"extracted_{tag}"], test_manifest, options=BuildOptions(val=0.0, test=0.0), overwrite=True)

    if args.extract_only:
        print(f"manifests: {train_manifest}, {test_manifest}")
        return
    cfg = load_config(args.config, base=args.preset)
    run = work / f"run_{tag}_{args.preset if args.config is None else args.config.stem}"
    started = time.perf_counter()
    if not (args.reuse_run and (run / "model" / "meta.json").exists()):
        train(train_manifest, cfg, run, "all", overwrite=True, device=args.device, progress=False)
    train_s = time.perf_counter() - started
    report = evaluate(run, test_manifest, "all", "cpu", emotion_speech=len(scored))
    if report.get("recognisability"):
        rec = report["recognisability"]
        rec["reference_images"] = judge_reference_images(run, test_manifest, rec["speech_clips"])
    report["train_seconds"] = round(train_s, 1)
    report["held_out"] = [str(p.relative_to(DATA)) for p in scored]
    out = args.json or work / f"quality_{tag}.json"
    out.write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    print(f"\ntrained {run.name} in {train_s:.0f} s on {train_manifest.name}; held-out speakers: {test_manifest}")
    print(markdown_table(report))
    print(f"figures: {out}")


if __name__ == "__main__":
    main()
