"""``medtalk-data``: videos → per-clip face data, audio, words and labels (``extract``) → a self-contained
Parquet manifest (``build-manifest``, ``validate``, ``stats``) → an HTML report (``report``) or an
Audio2Face-3D training dataset (``export-a2f``); ``status``, ``preview``, ``recipes`` and ``assets``
help along the way."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from medtalk_data.settings import ALL_STAGES

from .common import (
    CONTEXT_SETTINGS,
    EXIT_INTERRUPTED,
    SetupError,
    engine_options,
    file_option,
    ray_options,
    setup_logging,
)

log = logging.getLogger(__name__)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="medtalk", prog_name="medtalk-data")
def cli(verbose: int, quiet: bool) -> None:
    """Turn a folder of talking-face videos into training data for 3D facial animation.

    \b
    Examples:
      medtalk-data extract videos/ --out extracted/
      medtalk-data status extracted/
      medtalk-data build-manifest extracted/ --out manifests/mydata
      medtalk-data stats manifests/mydata
      medtalk-data assets list
    """
    setup_logging(verbose, quiet)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("videos_dir", type=click.Path(path_type=Path, file_okay=False), required=False)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("extracted"),
    help="Output folder (clips/<clip_id>/ inside).",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel worker processes of the local engine [default: number of CPU cores].",
)
@engine_options("extraction")
@click.option("--recipe", default=None, help="Dataset recipe for labels: auto, generic, … (see `recipes`).")
@click.option(
    "--speaker-from",
    type=click.Choice(["auto", "folder", "file", "none"]),
    default=None,
    help="Speaker of clips no dataset recipe names: the first sub-folder, the file name up to its first _ or -, "
    "or none; auto = folder, except folders named for their contents (video/, clips/, …) [default: auto].",
)
@click.option(
    "--stages", default=None, help=f"Comma-separated stages: {','.join(ALL_STAGES)} [default: all installed]."
)
@click.option("--fps", type=float, default=None, help="Constant output frame rate [default: each clip's source rate].")
@click.option(
    "--language",
    default=None,
    help="Spoken language of every clip (en, zh, …) [default: auto: the recipe's where known, else detected].",
)
@click.option(
    "--asr-model",
    default=None,
    help="Speech recogniser: base (multilingual), tiny.en (English, faster) or a CTranslate2 Whisper folder "
    "[default: base].",
)
@click.option(
    "--face-model",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Path to face_landmarker.task (else $MEDTALK_FACE_LANDMARKER, the cache, or a PyPI package).",
)
@click.option(
    "--face-backend",
    "face_backends",
    default=None,
    help="Comma-separated face backends: mediapipe (always: it finds and tracks the face), flame (FLAME fitted "
    "to the landmarks; needs --flame-model and --flame-embedding), deca (DECA's encoder on the face crops; needs "
    "--deca-model), fan (face-alignment's 68 points; weights from --fan-model or its own download) "
    "[default: mediapipe].",
)
@file_option(
    "--flame-model",
    "Your FLAME model: generic_model.pkl (FLAME 2020) or flame2023.pkl, from flame.is.tue.mpg.de "
    "(else $MEDTALK_FLAME_MODEL).",
)
@file_option(
    "--flame-embedding",
    "FLAME's mediapipe_landmark_embedding.npz (else $MEDTALK_FLAME_EMBEDDING).",
)
@click.option(
    "--flame-device", type=click.Choice(["cpu", "cuda"]), default=None, help="Where FLAME is fitted [default: cpu]."
)
@file_option(
    "--deca-model",
    "Your DECA deca_model.tar, from deca.is.tue.mpg.de (else $MEDTALK_DECA_MODEL).",
)
@click.option("--deca-device", type=click.Choice(["cpu", "cuda"]), default=None, help="Where DECA runs [default: cpu].")
@file_option(
    "--fan-model",
    "face-alignment's 2DFAN4/3DFAN4 .pth.tar (else $MEDTALK_FAN_MODEL, else its download in the torch hub cache).",
)
@file_option("--fan-depth-model", "face-alignment's depth-2a464da4ea.pth.tar, for --fan-landmarks 3D.")
@click.option(
    "--fan-landmarks", type=click.Choice(["2D", "3D"]), default=None, help="FAN's 2-D or 3-D points [default: 2D]."
)
@click.option("--fan-device", type=click.Choice(["cpu", "cuda"]), default=None, help="Where FAN runs [default: cpu].")
@click.option(
    "--flame-landmarks",
    type=click.Choice(["mediapipe", "fan"]),
    default=None,
    help="What FLAME is fitted to: MediaPipe's 478 points, or FAN's 68 (with --face-backend fan and "
    "--flame-embedding flame_static_embedding.pkl) [default: mediapipe].",
)
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="YAML settings (see --print-config); options given here override it.",
)
@click.option(
    "--labels-csv",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="CSV of labels (clip_id + speaker/emotion/intensity/…) that overrides the recipe.",
)
@click.option(
    "--labels-problems",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write every problem found in --labels-csv to this file (the error lists the first ones).",
)
@click.option("--print-config", is_flag=True, help="Print the default settings as YAML and exit.")
@click.option("--overwrite", is_flag=True, help="Redo clips that are already finished.")
@click.option(
    "--verify", is_flag=True, help="Also check finished clips' outputs against their recorded sha256 (sizes always)."
)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would be done, write nothing.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def extract(
    videos_dir: Path | None,
    out_dir: Path,
    workers: int | None,
    engine: str,
    address: str | None,
    cpus_per_clip: float,
    gpus_per_clip: float,
    recipe: str | None,
    speaker_from: str | None,
    stages: str | None,
    fps: float | None,
    language: str | None,
    asr_model: str | None,
    face_model: Path | None,
    face_backends: str | None,
    flame_model: Path | None,
    flame_embedding: Path | None,
    flame_device: str | None,
    deca_model: Path | None,
    deca_device: str | None,
    fan_model: Path | None,
    fan_depth_model: Path | None,
    fan_landmarks: str | None,
    fan_device: str | None,
    flame_landmarks: str | None,
    config: Path | None,
    labels_csv: Path | None,
    labels_problems: Path | None,
    print_config: bool,
    overwrite: bool,
    verify: bool,
    dry_run: bool,
    no_progress: bool,
) -> None:
    """Extract per-frame face data, 16 kHz audio, word timings and expression labels from every clip.

    Finished clips are skipped on a re-run (unless --overwrite); failed ones are retried; clips
    whose outputs are missing or damaged are redone; a changed transcript label or words setting
    redoes only the words of a clip.
    Exit code: 0 all clips done, 1 some clips failed (listed), 2 nothing could run (or the output
    folder became unwritable: finished clips are kept), 130 interrupted.

    \b
    Examples:
      medtalk-data extract videos/
      medtalk-data extract videos/ --out data/extracted --workers 2 --stages face
      medtalk-data extract videos/ --fps 30 --dry-run
      medtalk-data extract mandarin_clips/ --language zh     # else detected per clip
      medtalk-data extract ravdess/ --recipe ravdess --labels-csv fixes.csv
      medtalk-data extract interviews/ --speaker-from file   # alice_take1.mp4 → speaker alice
      medtalk-data extract videos/ --face-backend flame --flame-model ~/flame/generic_model.pkl \\
          --flame-embedding ~/flame/mediapipe_landmark_embedding.npz   # + FLAME parameters per frame
      medtalk-data extract videos/ --face-backend fan,flame --flame-landmarks fan \
          --flame-embedding ~/flame/flame_static_embedding.pkl   # FAN's 68 points, FLAME fitted to them
      medtalk-data extract --print-config > extract.yaml   # edit, then: --config extract.yaml
      medtalk-data extract /nfs/videos --out /nfs/extracted --engine ray --address 10.0.0.5:6379
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.io.files import display_path
    from medtalk_data.settings import default_config_yaml, load_settings
    from medtalk_pipelines import get_recipe

    if print_config:
        click.echo(default_config_yaml(), nl=False)
        return
    if videos_dir is None:
        raise click.UsageError("missing VIDEOS_DIR: the folder that holds your videos")
    try:
        settings = load_settings(config)
        if stages is not None:
            settings.stages = [s.strip() for s in stages.split(",") if s.strip()]
        if fps is not None:
            settings.fps = fps
        if language is not None:
            settings.words.language = language
        if asr_model is not None:
            settings.words.asr_model = asr_model
        if face_model is not None:
            settings.face.model_path = str(face_model)
        if face_backends is not None:
            settings.face.backends = [b.strip() for b in face_backends.split(",") if b.strip()]
            if "mediapipe" not in settings.face.backends:  # the detector and tracker of every backend
                settings.face.backends.insert(0, "mediapipe")
        face = settings.face
        for section, name, value in (
            (face.flame, "model_path", flame_model),
            (face.flame, "embedding_path", flame_embedding),
            (face.flame, "device", flame_device),
            (face.flame, "landmarks", flame_landmarks),
            (face.deca, "model_path", deca_model),
            (face.deca, "device", deca_device),
            (face.fan, "model_path", fan_model),
            (face.fan, "depth_model_path", fan_depth_model),
            (face.fan, "landmarks", fan_landmarks),
            (face.fan, "device", fan_device),
        ):
            if value is not None:  # an option given overrides the config file
                setattr(section, name, str(value) if isinstance(value, Path) else value)
        if recipe is not None:
            settings.recipe = recipe
        if speaker_from is not None:
            settings.speaker_from = speaker_from
        get_recipe(settings.recipe)
        settings.validate()
        labels_for = _labels_function(videos_dir, settings.recipe, settings.speaker_from, labels_csv, labels_problems)
        ray = ray_options(engine, address, cpus_per_clip, gpus_per_clip)
        if ray is not None and workers is not None:
            log.warning("--workers applies to the local engine; Ray places clips by --cpus-per-clip")
        report = extract_videos(
            videos_dir,
            out_dir,
            settings=settings,
            workers=workers,
            overwrite=overwrite,
            dry_run=dry_run,
            labels_for=labels_for,
            progress=not no_progress,
            verify=verify,
            require_stages=stages is not None or config is not None,  # default stages: run what is installed
            ray=ray,
        )
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    except KeyboardInterrupt:
        click.echo("interrupted: finished clips are kept; run the same command again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)

    if dry_run:
        for p in report.planned:
            extra = f" of {p.duplicate_of}" if p.duplicate_of else ""
            click.echo(f"{p.action:9s} {p.clip.clip_id}  ({display_path(p.clip.relpath)}: {p.why}{extra})")
        n_run = sum(p.action == "run" for p in report.planned)
        click.echo(f"dry run: {n_run} to extract, {len(report.skipped)} done, {len(report.duplicates)} duplicates")
        return
    click.echo(
        f"extract: {len(report.done)} done, {len(report.skipped)} skipped (already done), "
        f"{len(report.failed)} failed, {len(report.duplicates)} duplicates"
        f"{f', {len(report.damaged)} redone (damaged outputs)' if report.damaged else ''}, {report.frames} frames "
        f"in {report.elapsed_s:.1f} s → {display_path(report.out_dir / 'clips')}",
        err=True,
    )
    for f in report.failed:
        click.echo(f"  failed {f['source']}: {f['error']}", err=True)
    sys.exit(report.exit_code)


def _labels_function(
    videos_dir: Path, recipe: str, speaker_from: str, labels_csv: Path | None, problems_file: Path | None = None
):
    """Recipe labels per clip, with a user CSV on top (validated against the clips found); warns about
    folders that ``--speaker-from auto`` did not take as speakers."""
    from medtalk_data.clip_labels import ClipLabels
    from medtalk_data.extract.discovery import discover
    from medtalk_pipelines import labels_for_path, media_folder_note
    from medtalk_pipelines.labels_csv import apply_overrides, read_labels_csv

    from_recipe = labels_for_path(recipe, root=videos_dir, speaker_from=speaker_from)
    overrides = {}
    clips = discover(videos_dir).clips if videos_dir.is_dir() else []
    if labels_csv is not None and videos_dir.is_dir():
        known = {c.clip_id for c in clips}
        overrides = read_labels_csv(labels_csv, known, problems_file=problems_file)
    unnamed = [c.relpath for c in clips if not overrides.get(c.clip_id, {}).get("speaker")]
    note = media_folder_note(unnamed, recipe, speaker_from)
    if note:
        click.echo(f"warning: {note}", err=True)
    return lambda clip: ClipLabels.from_dict(
        apply_overrides(from_recipe(clip.relpath), overrides.get(clip.clip_id, {}))
    )


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("extracted_dir", type=click.Path(path_type=Path, file_okay=False, exists=True), default="extracted")
@click.option("--failed", "only_failed", is_flag=True, help="List failed and damaged clips only.")
@click.option("--verify", is_flag=True, help="Also compare every output with its recorded sha256 (sizes always).")
def status(extracted_dir: Path, only_failed: bool, verify: bool) -> None:
    """Show the state of every clip in an extraction folder.

    A finished clip whose outputs are missing or differ from what was written is shown as
    "damaged" (the next extract redoes it). Exit code: 0, or 1 when a clip is damaged.

    \b
    Examples:
      medtalk-data status extracted/
      medtalk-data status extracted/ --failed
      medtalk-data status extracted/ --verify
    """
    from medtalk_data.extract.layout import clip_dir, damaged_outputs, iter_statuses

    rows = iter_statuses(extracted_dir)
    if not rows:
        raise SetupError(
            f"{extracted_dir}: no extracted clips found; run `medtalk-data extract VIDEOS --out {extracted_dir}`"
        )
    counts: dict[str, int] = {}
    for s in rows:
        state = s.state
        damage = damaged_outputs(clip_dir(extracted_dir, s.clip_id), s, verify_hash=verify) if s.done else []
        if damage:
            state = "damaged"
        counts[state] = counts.get(state, 0) + 1
        if only_failed and state == "done":
            continue
        ratio = f"face {s.face.face_found_ratio:.0%}" if s.face is not None else "no face data"
        if s.flame is not None:
            ratio += f"  FLAME {s.flame.residual_mm_median:.1f} mm"  # median landmark error of the fit
        if s.fan is not None:
            ratio += f"  FAN score {s.fan.score_mean:.2f}"  # FAN's mean heatmap peak
        detail = "; ".join(damage) + " (re-run extract to redo it)" if damage else s.error
        detail = detail or ", ".join(s.warnings[:2])
        click.echo(f"{state:7s} {s.clip_id}  {ratio}  {detail}")
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if counts.get("damaged"):
        sys.exit(1)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("extracted_dir", type=click.Path(path_type=Path, file_okay=False, exists=True), default="extracted")
@click.option("--clip", "clip_ids", multiple=True, help="Only these clip ids (repeatable) [default: all].")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the PNGs [default: EXTRACTED_DIR/previews].",
)
def preview(extracted_dir: Path, clip_ids: tuple[str, ...], out_dir: Path | None) -> None:
    """Draw a PNG per clip: a frame with its landmarks, blendshape curves, head pose, audio envelope.

    \b
    Examples:
      medtalk-data preview extracted/
      medtalk-data preview extracted/ --clip pcavs_input_00010 --out previews/
    """
    from medtalk_data.extract.layout import clips_dir, iter_statuses
    from medtalk_data.inspect.preview import render_clip_preview

    out_dir = out_dir or extracted_dir / "previews"
    rows = [s for s in iter_statuses(extracted_dir) if s.done and s.has("frames")]
    if clip_ids:
        unknown = set(clip_ids) - {s.clip_id for s in rows}
        if unknown:
            raise SetupError(f"no extracted face data for clip(s) {', '.join(sorted(unknown))} in {extracted_dir}")
        rows = [s for s in rows if s.clip_id in clip_ids]
    if not rows:
        raise SetupError(f"{extracted_dir}: no clips with face data; run `medtalk-data extract` first")
    for s in rows:
        png = render_clip_preview(clips_dir(extracted_dir) / s.clip_id, out_dir / f"{s.clip_id}.png")
        click.echo(str(png))


def _print_stats(stats: dict) -> None:
    click.echo(
        f"{stats['clips']} clips, {stats['hours']:.3f} h, {stats['frames']} frames, {stats['speakers']} speakers, "
        f"{stats['with_audio']} with audio, {stats['excluded']} excluded"
    )
    splits = ("train", "val", "test")
    click.echo("clips per split: " + ", ".join(f"{s} {stats['clips_per_split'].get(s, 0)}" for s in splits))
    click.echo("speakers per split: " + ", ".join(f"{s} {stats['speakers_per_split'].get(s, 0)}" for s in splits))
    click.echo(f"{'emotion':12s}" + "".join(f"{s:>7s}" for s in splits))
    for emotion, counts in stats["emotions_by_split"].items():
        click.echo(f"{emotion:12s}" + "".join(f"{counts.get(s, 0):7d}" for s in splits))
    if stats["face_found_ratio"] is not None:
        click.echo(f"face found in {stats['face_found_ratio']:.1%} of frames")
    if stats["aligned_word_ratio"] is not None:
        click.echo(f"{stats['words']} words, {stats['aligned_word_ratio']:.1%} aligned")
    for warning in stats["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@cli.command("build-manifest", context_settings=CONTEXT_SETTINGS)
@click.argument("extracted_dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Manifest folder [default: manifests/<name of the first EXTRACTED_DIR>].",
)
@click.option("--val", type=click.FloatRange(0, 1, max_open=True), default=0.1, help="Share of clips for validation.")
@click.option("--test", type=click.FloatRange(0, 1, max_open=True), default=0.1, help="Share of clips for test.")
@click.option("--seed", type=int, default=0, help="Seed of the speaker-disjoint split.")
@click.option("--min-duration", type=float, default=1.0, help="Exclude clips shorter than this (seconds).")
@click.option(
    "--min-face-ratio",
    type=click.FloatRange(0, 1),
    default=0.5,
    help="Exclude video clips whose face was found in fewer frames than this.",
)
@click.option("--require-audio", is_flag=True, help="Exclude clips without audio.")
@click.option("--landmarks", is_flag=True, help="Also store the 478×3 landmarks per frame (large).")
@click.option(
    "--rig",
    type=click.Choice(["mediapipe52", "metahuman174", "flame"]),
    default="mediapipe52",
    help="Curves: MediaPipe's 52 blendshapes, the dataset's 174-channel MetaHuman rig files, or FLAME expression "
    "+ jaw (clips extracted with --face-backend flame).",
)
@click.option(
    "--include-renders", is_flag=True, help="Keep clips a recipe marks as rendered faces (excluded by default)."
)
@click.option(
    "--audio",
    "audio_mode",
    type=click.Choice(["copy", "link", "none"]),
    default="copy",
    show_default=True,
    help="Put each clip's 16 kHz wav inside the manifest (audio/) as a copy or a hard link, or leave audio out.",
)
@click.option(
    "--reference-images/--no-reference-images",
    default=True,
    show_default=True,
    help="Store each video clip's most intense frame as a JPEG (references/), for image encoders that need pixels.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing manifest folder.")
def build_manifest_cmd(
    extracted_dirs: tuple[Path, ...],
    out_dir: Path | None,
    val: float,
    test: float,
    seed: int,
    min_duration: float,
    min_face_ratio: float,
    require_audio: bool,
    landmarks: bool,
    rig: str,
    include_renders: bool,
    audio_mode: str,
    reference_images: bool,
    overwrite: bool,
) -> None:
    """Gather extracted clips into a Parquet manifest with speaker-disjoint splits; validate; print stats.

    The manifest folder holds everything training and evaluation read (curves, head pose, audio,
    reference frames) with paths relative to it: copy or move it whole to another machine.
    Clips that failed, have no face and no audio, or are too short are listed in excluded.parquet,
    never breaking the build. Exit code: 0 built and valid, 1 built but validation found problems,
    2 nothing built.

    \b
    Examples:
      medtalk-data build-manifest extracted/
      medtalk-data build-manifest extracted/ more_extracted/ --out manifests/all --val 0.1 --test 0.1
      medtalk-data build-manifest extracted/ --require-audio --overwrite
      medtalk-data build-manifest emoface_extracted/ --rig metahuman174   # MEDTalk's 174-channel rig
      medtalk-data build-manifest extracted/ --rig flame   # FLAME expression + jaw (extract --face-backend flame)
      medtalk-data build-manifest extracted/ --audio link   # hard links: no second copy on the same disk
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.manifest.build import BuildOptions, build_manifest
    from medtalk_data.manifest.stats import manifest_stats
    from medtalk_data.manifest.validate import validate_manifest

    dirs = list(extracted_dirs) or [Path("extracted")]
    out_dir = out_dir or Path("manifests") / dirs[0].resolve().name
    options = BuildOptions(
        val=val,
        test=test,
        seed=seed,
        min_duration_s=min_duration,
        min_face_ratio=min_face_ratio,
        require_audio=require_audio,
        landmarks=landmarks,
        rig=rig,
        include_renders=include_renders,
        audio=audio_mode,
        reference_images=reference_images,
    )
    try:
        report = build_manifest(dirs, out_dir, options=options, overwrite=overwrite)
    except (MedtalkError, ValueError) as err:
        raise SetupError(str(err)) from err
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for item in report.excluded:
        click.echo(f"excluded {item['source_path']}: {item['reason']}", err=True)
    click.echo(f"manifest: {out_dir} ({report.n_clips} clips, {report.n_frames} frames, {report.elapsed_s:.1f} s)")
    _print_stats(manifest_stats(out_dir))
    problems = validate_manifest(out_dir)
    for problem in problems:
        click.echo(f"invalid {problem}", err=True)
    sys.exit(1 if problems else 0)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("manifest_dir", type=click.Path(path_type=Path, file_okay=False))
def validate(manifest_dir: Path) -> None:
    """Check a manifest and list every problem with its clip.

    Exit code: 0 sound, 1 problems found (listed), 2 the manifest cannot be opened (damaged files,
    missing columns, another schema version).

    \b
    Examples:
      medtalk-data validate manifests/extracted
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.manifest.validate import validate_manifest

    try:
        problems = validate_manifest(manifest_dir)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problems", err=True)
        sys.exit(1)
    click.echo("ok")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("manifest_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def stats(manifest_dir: Path, as_json: bool) -> None:
    """Hours, clips, speakers, emotions × splits, face-found and aligned-word ratios of a manifest.

    \b
    Examples:
      medtalk-data stats manifests/extracted
      medtalk-data stats manifests/extracted --json | jq .hours
    """
    import json

    from medtalk_data.errors import MedtalkError
    from medtalk_data.manifest.stats import manifest_stats

    try:
        numbers = manifest_stats(manifest_dir)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    if as_json:
        click.echo(json.dumps(numbers, indent=2))
    else:
        _print_stats(numbers)


@cli.command("export-a2f", context_settings=CONTEXT_SETTINGS)
@click.argument("manifest_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Dataset folder to write.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Frame rate of every shot [default: the most common clip rate]; other clips are resampled.",
)
@click.option(
    "--min-face-ratio",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Leave out clips whose face was found in fewer frames than this.",
)
@file_option(
    "--flame-model",
    "A --rig flame manifest: the FLAME model its curves were fitted with [default: $MEDTALK_FLAME_MODEL].",
)
@file_option(
    "--flame-embedding",
    "A --rig flame manifest: FLAME's landmark embedding, which names its lip and eyelid "
    "vertices [default: $MEDTALK_FLAME_EMBEDDING].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset folder.")
def export_a2f_cmd(
    manifest_dir: Path,
    out_dir: Path,
    fps: float | None,
    min_face_ratio: float,
    flame_model: Path | None,
    flame_embedding: Path | None,
    overwrite: bool,
) -> None:
    """Write an NVIDIA Audio2Face-3D training-framework dataset from a manifest built with --landmarks.

    Per clip with audio: a head-stabilised vertex cache of the MediaPipe canonical face mesh
    (float32 [frames, 468, 3], cm, +y up) — for a --rig flame manifest FLAME's mesh posed by the
    clip's expression and jaw ([frames, 5023, 3], cm) — and its 16 kHz WAV of the same duration; per speaker
    (the framework's actor): a neutral pose and the lip/eyelid vertex pairs; and
    config_dataset.py with every path filled in. shots.csv lists each shot's clip and emotion.

    \b
    Examples:
      medtalk-data build-manifest extracted/ --landmarks --out manifests/a2f
      medtalk-data export-a2f manifests/a2f --out a2f_dataset
      medtalk-data export-a2f manifests/a2f --out a2f_dataset --fps 30 --overwrite
      medtalk-data build-manifest extracted_flame/ --rig flame --out manifests/flame
      medtalk-data export-a2f manifests/flame --out a2f_flame --flame-model generic_model.pkl \\
          --flame-embedding mediapipe_landmark_embedding.npz
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.export.a2f import export_a2f

    try:
        report = export_a2f(
            manifest_dir,
            out_dir,
            fps=fps,
            overwrite=overwrite,
            min_face_ratio=min_face_ratio,
            flame_model=flame_model,
            flame_embedding=flame_embedding,
        )
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    for clip_id, why in report.skipped.items():
        click.echo(f"skipped {clip_id}: {why}", err=True)
    if report.resampled:
        click.echo(f"resampled to {report.fps:g} fps: {', '.join(report.resampled)}", err=True)
    frames = sum(s.n_frames for s in report.shots)
    click.echo(
        f"Audio2Face-3D dataset: {out_dir} ({len(report.shots)} shots, {len(report.actors)} actors, "
        f"{frames} frames at {report.fps:g} fps, {report.mesh} mesh of {report.n_vertices} vertices); "
        f"config: {out_dir / 'config_dataset.py'}"
    )


@cli.group(context_settings=CONTEXT_SETTINGS)
def assets() -> None:
    """Model files: where they are found and how to get them.

    \b
    Examples:
      medtalk-data assets list
      medtalk-data assets fetch face_landmarker      # online only; verified by sha256
    """


@assets.command("list")
def assets_list() -> None:
    """List every model file, its licence, and where it resolves on this machine.

    \b
    Examples:
      medtalk-data assets list
    """
    from medtalk_data import assets as registry
    from medtalk_data.errors import MedtalkError

    for spec in registry.ASSETS.values():
        try:
            where = str(registry.resolve(spec.name, download=False))
        except MedtalkError as err:
            where = f"MISSING — {err}"
        click.echo(f"{spec.name}: {spec.filename} ({spec.size} bytes, sha256 {spec.sha256[:12]}…, {spec.licence})")
        click.echo(f"  → {where}")


@assets.command("fetch")
@click.argument("name")
def assets_fetch(name: str) -> None:
    """Download a model file into the user cache (needs the network), verified by sha256.

    \b
    Examples:
      medtalk-data assets fetch face_landmarker
    """
    from medtalk_data import assets as registry
    from medtalk_data.errors import MedtalkError

    if name not in registry.ASSETS:
        raise SetupError(f"unknown asset {name!r}; known: {', '.join(registry.ASSETS)}")
    try:
        click.echo(str(registry.resolve(name)))
    except MedtalkError as err:
        raise SetupError(str(err)) from err


@cli.command(context_settings=CONTEXT_SETTINGS)
def recipes() -> None:
    """List the dataset recipes that --recipe accepts.

    \b
    Examples:
      medtalk-data recipes
    """
    from medtalk_pipelines import RECIPES

    click.echo("auto: pick per file from its name (falls back to generic)")
    for recipe in RECIPES.values():
        click.echo(f"{recipe.name}: {recipe.description}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("manifest_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("report.html"),
    help="HTML file to write (one self-contained page).",
)
@click.option(
    "-n", "--max-clips", type=click.IntRange(min=0), default=12, help="Clip sections, spread over emotions (0: none)."
)
@click.option("--clips", "clip_list", default=None, help="Comma-separated clip ids to show instead of the chosen ones.")
@click.option(
    "--frames", "frames_per_clip", type=click.IntRange(0, 12), default=3, help="Video frames with landmarks per clip."
)
@click.option("--title", default=None, help="Page title [default: medtalk report — <manifest folder name>].")
def report(
    manifest_dir: Path, out: Path, max_clips: int, clip_list: str | None, frames_per_clip: int, title: str | None
) -> None:
    """Write one self-contained HTML page about a manifest, for a look before training.

    Overview: summary table, emotions × splits, durations, clips per speaker, face-found and
    aligned-word ratios. Then, per clip: curves, head pose and words on one time axis, and a few
    source frames with the landmarks drawn. Plots are inlined PNGs; the page loads nothing.

    \b
    Examples:
      medtalk-data report manifests/extracted -o report.html
      medtalk-data report manifests/extracted -o report.html --max-clips 4 --frames 0
      medtalk-data report manifests/extracted --clips pcavs_input_00002,pcavs_input_00010
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.inspect.report import render_report
    from medtalk_data.io.files import display_path

    wanted = [c.strip() for c in clip_list.split(",") if c.strip()] if clip_list is not None else None
    if clip_list is not None and not wanted:
        raise click.BadParameter("give at least one clip id", param_hint="--clips")
    try:
        result = render_report(
            manifest_dir,
            out,
            max_clips=max_clips,
            clip_ids=wanted,
            frames_per_clip=frames_per_clip,
            title=title,
            progress=lambda i, n, cid: click.echo(f"clip {i + 1}/{n}: {cid}", err=True),
        )
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    except OSError as err:
        raise SetupError(f"{display_path(out)}: cannot write the report ({err.strerror or err})") from err
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"report: {display_path(result.path)} ({len(result.clip_ids)} of {result.n_manifest_clips} clips, "
        f"{result.size_bytes / 1e6:.1f} MB, {result.elapsed_s:.1f} s)"
    )


def main() -> None:
    cli(prog_name="medtalk-data")


if __name__ == "__main__":
    main()
