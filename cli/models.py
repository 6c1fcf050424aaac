"""``medtalk-models``: train and run MEDTalk models on manifests built by ``medtalk-data``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    CONTEXT_SETTINGS,
    EXIT_INTERRUPTED,
    SetupError,
    engine_options,
    file_option,
    ray_options,
    setup_logging,
)

if TYPE_CHECKING:
    import numpy as np

STAGE_CHOICES = ("all", "disentangle", "audio_content", "intensity", "emotion_control")


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="medtalk", prog_name="medtalk-models")
def cli(verbose: int, quiet: bool) -> None:
    """Train and run MEDTalk emotional facial-animation models.

    \b
    Examples:
      medtalk-models train --manifest manifests/mydata --out runs/first
      medtalk-models animate -k runs/first -a speech.wav --emotion happy --intensity 0.8
      medtalk-models evaluate -k runs/first -m manifests/mydata --split test
      medtalk-models features -m manifests/mydata --engine ray --address HEAD:6379
      medtalk-models zoo list
      medtalk-models play out/speech.npz --live-link 127.0.0.1:11111
    """
    setup_logging(verbose, quiet)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-m",
    "--manifest",
    type=click.Path(path_type=Path, file_okay=False),
    help="Manifest folder from `medtalk-data build-manifest`.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML config (see --print-config); its keys override the --preset.",
)
@click.option(
    "--preset", type=click.Choice(["small", "paper"]), default="small", help="Built-in config the file builds on."
)
@click.option(
    "--stage", type=click.Choice(STAGE_CHOICES), default="all", help="Stage to train (needs the earlier ones)."
)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("runs/medtalk"), help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Start again in an existing --out.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after N steps (resume later).")
@click.option("--seed", type=int, default=None, help="Random seed [default: the config's train.seed].")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def train(
    manifest: Path | None,
    config_path: Path | None,
    preset: str,
    stage: str,
    out: Path,
    resume: bool,
    overwrite: bool,
    device: str,
    max_steps: int | None,
    seed: int | None,
    print_config: bool,
    no_progress: bool,
) -> None:
    """Train the MEDTalk stages (disentangle → audio_content → intensity → emotion_control).

    The rig (channel names, fps) comes from the manifest. Checkpoints (safetensors), log.csv and
    TensorBoard logs go to --out; `model/` there holds the latest finished stage. Multi-GPU:
    `torchrun --nproc-per-node N $(which medtalk-models) train ...`.

    Exit codes: 0 done (or stopped by --max-steps: continue with --resume), 2 bad input (config,
    manifest, run folder), 130 interrupted (checkpoints kept: use --resume).

    \b
    Examples:
      medtalk-models train --manifest manifests/mydata --out runs/first
      medtalk-models train --manifest manifests/mydata --out runs/first --resume
      medtalk-models train --manifest manifests/emoface --preset paper --device cuda --out runs/paper
      medtalk-models train --manifest manifests/mydata --stage disentangle --max-steps 50 --out runs/try
      medtalk-models train --print-config > my.yaml
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.config import dump_config, load_config

    try:
        overrides = {"train": {"seed": seed}} if seed is not None else None
        cfg = load_config(config_path, base=preset, overrides=overrides)
        if print_config:
            click.echo(dump_config(cfg), nl=False)
            return
        if manifest is None:
            raise SetupError("--manifest is required (a folder from `medtalk-data build-manifest`)")
        from medtalk_models.train import train as run_training

        result = run_training(
            manifest,
            cfg,
            out,
            stage,
            resume=resume,
            overwrite=overwrite,
            device=device,
            max_steps=max_steps,
            progress=not no_progress and sys.stderr.isatty(),
        )
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    except KeyboardInterrupt:
        click.echo(f"interrupted; continue with: medtalk-models train ... --out {out} --resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    done = ", ".join(result.stages_done) or "none"
    click.echo(f"stages finished: {done}")
    if result.skipped:
        click.echo(f"stages skipped (nothing to learn from, see the warnings): {', '.join(result.skipped)}")
    if result.labels is not None:
        click.echo(result.labels.summary())
        for line in result.labels.table():
            click.echo(f"  {line}")
    click.echo(f"run folder: {out}  (model/: latest finished stage; log.csv; tb/ for TensorBoard)")
    if result.stopped_early:
        click.echo(f"stopped by --max-steps; continue with --resume --out {out}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-m",
    "--manifest",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Manifest folder from `medtalk-data build-manifest`.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The YAML config training will use (its audio backbones and data.cache_dir).",
)
@click.option("--preset", type=click.Choice(["small", "paper"]), default="small", help="Built-in config.")
@click.option(
    "--device",
    default="cpu",
    help="cpu or cuda: the device training will use (a backbone's numeric type, hence its cache entry, follows it).",
)
@engine_options("its features")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def features(
    manifest: Path,
    config_path: Path | None,
    preset: str,
    device: str,
    engine: str,
    address: str | None,
    cpus_per_clip: float,
    gpus_per_clip: float,
    no_progress: bool,
) -> None:
    """Compute the frozen-backbone audio features of every clip into the cache `train` reads.

    Run it before a GPU training job so that the job does not spend its first epoch in Whisper;
    with --engine ray the clips are spread over a cluster whose nodes see the manifest (and
    data.cache_dir) at the same path. Clips already cached are checked, not recomputed.

    \b
    Examples:
      medtalk-models features --manifest manifests/mydata
      medtalk-models features --manifest /nfs/manifests/mead --engine ray --address 10.0.0.5:6379
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.config import load_config
    from medtalk_models.precompute import precompute_features

    ray = ray_options(engine, address, cpus_per_clip, gpus_per_clip)
    try:
        cfg = load_config(config_path, base=preset)
        report = precompute_features(manifest, cfg, device=device, ray=ray, progress=not no_progress)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    except KeyboardInterrupt:
        click.echo("interrupted: the features computed so far are cached; run the same command again", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(
        f"features: {report.clips} clips with audio, {report.computed} computed, {report.cached} already cached "
        f"({report.engine}) → {report.cache_dir}"
    )


def _parse_blend(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.partition(":")
        try:
            out[name.strip()] = float(weight) if sep else 1.0
        except ValueError as err:
            raise SetupError(f"--blend {text!r}: write label:weight pairs, e.g. happy:0.7,surprise:0.3") from err
    return out


def _read_intensity_curve(path: Path) -> np.ndarray:
    """Two columns (time_s, intensity 0..1), CSV with or without a header, or .npy of that shape."""
    import numpy as np

    try:
        data = np.load(path) if path.suffix == ".npy" else np.genfromtxt(path, delimiter=",", comments="#")
    except (OSError, ValueError) as err:
        raise SetupError(f"{path}: cannot read the intensity curve ({err})") from err
    data = np.atleast_2d(data)
    data = data[~np.isnan(data).any(axis=1)] if data.ndim == 2 else data
    if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise SetupError(f"{path}: an intensity curve has two columns, time_s and intensity (0..1), one row per time")
    return data


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--checkpoint",
    "-k",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder (or its model/ folder) from `medtalk-models train`.",
)
@click.option(
    "--audio",
    "-a",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Speech: any file PyAV reads (wav, mp3, m4a, flac, a video's audio).",
)
@click.option("--emotion", default=None, help="Emotion label (see the error for the model's list).")
@click.option("--intensity", type=float, default=0.5, help="0 none, 0.5 as predicted from the speech, 1 strongest.")
@click.option(
    "--intensity-curve",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Frame-wise intensity: CSV time_s,intensity (0..1); replaces --intensity.",
)
@click.option("--blend", default=None, help="A mix of labels, e.g. happy:0.7,surprise:0.3.")
@click.option(
    "--image",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Reference face image whose expression to take.",
)
@click.option("--text", default=None, help='Free-text description, e.g. "a furious face".')
@click.option("--transcript", default=None, help="What is said (else speech recognition).")
@click.option("--fps", type=float, default=None, help="Output frame rate [default: the model's].")
@click.option(
    "--format",
    "formats",
    default=None,
    help="Comma-separated: csv,livelink,npz,txt,mp4,png,glb,usd (glb/usd: the face mesh with 52 ARKit morph targets "
    "for Blender, Unreal, Maya, Omniverse; the speech beside it as <name>.audio.wav; usd needs medtalk[usd]); "
    "FLAME rigs: flame (.flame.npz), vertices (FLAME's mesh, with --flame-model) "
    "[default: the curve formats that fit the rig, mp4, png].",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, file_okay=False), default=Path("animations"), help="Output folder."
)
@click.option("--smooth/--no-smooth", default=True, help="Savitzky–Golay smoothing (official: 5 taps at 60 fps).")
@click.option(
    "--side-by-side",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Source video to show beside the rendered face in the mp4.",
)
@click.option(
    "--basis",
    "basis_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Blendshape basis for the mp4 (from `medtalk-models basis`) [default: the shipped one].",
)
@file_option(
    "--flame-model",
    "FLAME-rig models: your FLAME model for --format vertices (else $MEDTALK_FLAME_MODEL).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
def animate(
    checkpoint: Path,
    audio: Path,
    emotion: str | None,
    intensity: float,
    intensity_curve: Path | None,
    blend: str | None,
    image: Path | None,
    text: str | None,
    transcript: str | None,
    fps: float | None,
    formats: str | None,
    out: Path,
    smooth: bool,
    side_by_side: Path | None,
    basis_file: Path | None,
    flame_model: Path | None,
    overwrite: bool,
    device: str,
) -> None:
    """Speech in, emotional facial animation out (ARKit CSV, Live Link Face CSV, npz, MEDTalk txt, mp4;
    FLAME-rig models: .flame.npz and the FLAME mesh's vertices).

    Exactly one emotion source: --emotion (with --intensity or --intensity-curve), --blend,
    --image or --text; none means neutral. Files, options and output names are checked before the
    model loads. Exit codes: 0 written, 2 bad input.

    \b
    Examples:
      medtalk-models animate -k runs/first -a speech.wav --emotion happy --intensity 0.8
      medtalk-models animate -k runs/first -a talk.m4a --blend angry:0.6,sad:0.4 --format csv,mp4
      medtalk-models animate -k runs/first -a speech.wav --text "a furious face" --out anims/
      medtalk-models animate -k runs/first -a speech.wav --image ref.png --fps 60 --format livelink
      medtalk-models animate -k runs/first -a speech.wav --emotion sad --format glb,usd
      medtalk-models animate -k runs/first -a clip.mp4 --emotion sad --side-by-side clip.mp4
      medtalk-models animate -k runs/flame -a speech.wav --format flame,vertices --flame-model generic_model.pkl
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.resample import resampled_length
    from medtalk_models.animate import Animator, EmotionControl, check_request
    from medtalk_models.export_run import export_animation, plan_export

    sources = [x for x in (emotion, blend, image, text) if x]
    if len(sources) > 1:
        raise SetupError("give one emotion source: --emotion, --blend, --image or --text")
    if not 0.0 <= intensity <= 1.0:
        raise SetupError(f"--intensity {intensity}: use a value from 0 (none) to 1 (strongest)")
    control = EmotionControl(
        label=emotion,
        intensity=intensity,
        intensity_curve=_read_intensity_curve(intensity_curve) if intensity_curve else None,
        blend=_parse_blend(blend),
        image=image,
        text=text,
    )
    format_list = formats.split(",") if formats else None
    try:  # everything that can be checked before the model loads (which takes seconds)
        meta = check_request(checkpoint, audio, control)
        names = meta["rig"]["channel_names"]
        plan_export(out, audio.stem, names, format_list, fps=fps, overwrite=overwrite, audio_beside=True)
        for given, option in ((side_by_side, "--side-by-side"), (basis_file, "--basis")):
            if given is not None and not given.is_file():
                raise SetupError(f"{option} {given}: no such file")
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    try:
        animator = Animator(checkpoint, device=device)
        try:
            result = animator.animate(audio, control, transcript=transcript, smooth=smooth)
        finally:
            animator.close()
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        written = export_animation(
            result,
            out,
            audio.stem,
            format_list,
            fps=fps,
            audio=audio,
            side_by_side=side_by_side,
            basis=basis_file,
            overwrite=overwrite,
            flame_model=flame_model,
        )
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    out_fps = fps or result.fps
    frames = resampled_length(result.info["frames"], result.fps, out_fps)
    click.echo(f"{frames} frames at {out_fps:g} fps ({result.info['emotion_source']}); "
               f"transcript: {result.transcript[:80]!r}")  # fmt: skip
    if "jawOpen" in result.names:
        import numpy as np

        jaw = result.values[:, result.names.index("jawOpen")]
        click.echo(f"mouth: jawOpen 95th percentile {np.percentile(jaw, 95):.3f}, std {jaw.std():.3f} "
                   f"(real speech in the bundled clips: 95th percentile 0.05-0.32)")  # fmt: skip
    for path in written:
        click.echo(f"  {path}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--checkpoint", "-k", type=click.Path(path_type=Path), required=True, help="Run folder or model/.")
@click.option("--manifest", "-m", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--split", default="test", help="Manifest split to evaluate on: train, val, test, or all (every clip).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write every figure (per clip too) here.",
)
@click.option(
    "--markdown",
    "md_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the summary table here.",
)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@click.option(
    "--emotion-speech",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Speech clips of the split that every label is animated on for recognisability (0: skip it).",
)
@file_option(
    "--flame-model",
    "FLAME-rig models: your FLAME model, for LVE/FDD on FLAME's mesh (else $MEDTALK_FLAME_MODEL).",
)
@file_option(
    "--flame-masks",
    "FLAME_masks.pkl: the lip and upper-face vertices (else $MEDTALK_FLAME_MASKS, else from the embedding).",
)
@file_option(
    "--flame-embedding",
    "mediapipe_landmark_embedding.npz, where no masks file is given (else $MEDTALK_FLAME_EMBEDDING).",
)
def evaluate(
    checkpoint: Path,
    manifest: Path,
    split: str,
    json_path: Path | None,
    md_path: Path | None,
    device: str,
    emotion_speech: int,
    flame_model: Path | None,
    flame_masks: Path | None,
    flame_embedding: Path | None,
) -> None:
    """Agreement with the real face, lip sync, MEDTalk-style metrics and emotion accuracy, against baselines.

    Per channel group (mouth, jaw, upper face, whole rig): Pearson r with the ground truth at the best
    lag within ±3 frames, and the amplitude ratio; MLE, MEE, EIE, FRD, LVE, FDD; lip sync. The
    baselines are scored on the same clips in the same run: ridge regression from the same audio
    features (per frame and with ±k frames of context) and the mean pose, all fitted on the model's
    own training frames (stored in the checkpoint); an audio-energy jaw heuristic; another clip's
    ground truth. Emotions: the checkpoint's classifier names the emotion of every label animated on
    the same speech (accuracy, confusion, displacement from neutral against the real faces', text and
    image control), next to its accuracy on the split's real labelled clips; and the table of labels
    the model trained on. Exit codes: 0 done, 2 bad input.

    \b
    Examples:
      medtalk-models evaluate -k runs/first -m manifests/mydata --split test
      medtalk-models evaluate -k runs/first -m manifests/other_speakers --split all
      medtalk-models evaluate -k runs/first -m manifests/mydata --json eval.json --markdown eval.md
      medtalk-models evaluate -k runs/flame -m manifests/flame --flame-model generic_model.pkl \\
          --flame-masks FLAME_masks.pkl   # a FLAME-rig model: LVE/FDD on FLAME's mesh
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.evaluate import evaluate as run_evaluation
    from medtalk_models.evaluate import markdown_table, write_report

    try:
        files = {"model_path": flame_model, "masks_path": flame_masks, "embedding_path": flame_embedding}
        report = run_evaluation(checkpoint, manifest, split, device, emotion_speech, files)
        write_report(report, json_path, md_path)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    click.echo(markdown_table(report), nl=False)


@cli.group(context_settings=CONTEXT_SETTINGS)
def zoo() -> None:
    """Named model presets and the import of the official MEDTalk weights.

    \b
    Examples:
      medtalk-models zoo list
      medtalk-models zoo info medtalk-official
      medtalk-models zoo import-official weights/ --names metahuman_attr_names.txt --out runs/official
    """


@zoo.command("list", context_settings=CONTEXT_SETTINGS)
def zoo_list() -> None:
    """One line per preset.

    \b
    Examples:
      medtalk-models zoo list
    """
    from medtalk_models.zoo import PRESETS

    for p in PRESETS.values():
        click.echo(f"{p.name:<20} {p.rig:<13} {p.description}")


@zoo.command("info", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
def zoo_info(name: str) -> None:
    """Config, rig, weights (with sha256) and where they come from; for a run folder, its rig, stages and
    the table of labels it trained on.

    \b
    Examples:
      medtalk-models zoo info small-arkit52
      medtalk-models zoo info runs/first
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.zoo import describe_run, preset

    if Path(name).is_dir():
        try:
            lines = describe_run(Path(name))
        except MedtalkError as err:
            raise SetupError(str(err)) from err
        click.echo("\n".join(lines))
        return

    try:
        p = preset(name)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    click.echo(
        f"name:        {p.name}\ndescription: {p.description}\nconfig:      --preset {p.config}\nrig:         {p.rig}"
    )
    for file, sha in p.weights.items():
        click.echo(
            f"weights:     {file}  sha256 {sha or 'not published by the authors; recorded in meta.json on import'}"
        )
    click.echo(f"source:      {p.source}\nlicence:     {p.licence}")


@zoo.command("import-official", context_settings=CONTEXT_SETTINGS)
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--names",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="MEDTalk's metahuman_attr_names.txt (174 controller names).",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Run folder to create."
)
def zoo_import_official(folder: Path, names: Path, out: Path) -> None:
    """Convert the official audio_semantic.pth (+ clip_emotion.pth) in FOLDER into a checkpoint.

    \b
    Examples:
      medtalk-models zoo import-official weights/ --names metahuman_attr_names.txt --out runs/official
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.zoo import import_official

    try:
        where = import_official(folder, names, out)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    click.echo(f"converted: {where} (point its backbones at your local wav2vec2/RoBERTa/CLIP copies to animate)")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Basis file (.npz).")
@click.option("--held-out", is_flag=True, help="Also report leave-one-clip-out errors.")
def basis(sources: tuple[Path, ...], out: Path, held_out: bool) -> None:
    """Fit the blendshape basis for mp4 previews from manifests or extraction folders.

    \b
    Examples:
      medtalk-models basis manifests/mydata -o my_basis.npz --held-out
    """
    import json

    from medtalk_data.errors import MedtalkError
    from medtalk_models.render.build_basis import build_basis_from_extractions

    try:
        fitted = build_basis_from_extractions(list(sources), held_out=held_out)
        fitted.save(out)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    click.echo(json.dumps(fitted.provenance, indent=2))
    click.echo(f"wrote {out}; use it with: medtalk-models animate ... --basis {out}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("animation", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--live-link",
    "address",
    required=True,
    metavar="HOST:PORT",
    help="Where Unreal listens for Live Link Face (its default port is 11111).",
)
@click.option("--subject", default="medtalk", show_default=True, help="The Live Link subject name Unreal shows.")
@click.option("--loop", "loops", type=click.IntRange(1), default=1, show_default=True, help="Play it this many times.")
def play(animation: Path, address: str, subject: str, loops: int) -> None:
    """Play an animation in real time as Live Link Face packets (the iPhone app's UDP stream).

    ANIMATION is a file animate wrote (npz, ARKit CSV or Live Link Face CSV). Unreal's Live Link
    receives it as it receives the app (same packets, same default port); the subject then drives
    whatever the app's subject would. Head and eye rotations are sent where a Live Link Face CSV
    holds them, else zero.

    \b
    Examples:
      medtalk-models play out/speech.npz --live-link 127.0.0.1:11111
      medtalk-models play out/speech.livelink.csv --live-link 192.168.1.20:11111 --subject Ada --loop 3
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_models.export.formats import read_any
    from medtalk_models.export.livelink_udp import parse_address
    from medtalk_models.export.livelink_udp import play as play_live_link

    try:
        target = parse_address(address)
        curves = read_any(animation)
        seconds = curves.n_frames / curves.fps
        click.echo(
            f"playing {curves.n_frames} frames ({seconds:.1f} s at {curves.fps:g} fps) to {address} as {subject!r}"
        )
        sent = 0
        for _ in range(loops):
            sent += play_live_link(curves, target, subject=subject)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(f"sent {sent} packets")


@cli.command("flame-mapping", context_settings=CONTEXT_SETTINGS)
@click.argument("extracted", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Mapping file (.npz)."
)
@click.option("--heldout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.25,
              help="Share of speakers held out to measure the maps (then refitted on all).")  # fmt: skip
@click.option("--seed", type=int, default=0, help="Seed of the held-out speakers.")
@click.option("--overwrite", is_flag=True, help="Replace an existing mapping file.")
def flame_mapping(extracted: tuple[Path, ...], out: Path, heldout: float, seed: int, overwrite: bool) -> None:
    """Fit FLAME ↔ ARKit maps from extractions that hold both (``extract --face-backend flame``).

    Ridge maps in both directions (ARKit blendshapes → FLAME expression + jaw, and back), measured on
    held-out speakers (Pearson r and RMSE per channel, next to predicting the training mean), then
    refitted on every clip and written to OUT for `medtalk-models convert`.

    \b
    Examples:
      medtalk-models flame-mapping extracted/ --out flame_arkit.npz
      medtalk-models flame-mapping mead/extracted hdtf/extracted --out flame_arkit.npz --heldout 0.2
    """
    import numpy as np

    from medtalk_data.errors import MedtalkError
    from medtalk_data.io.files import display_path
    from medtalk_models.flame_mapping import fit_mapping, heldout_scores

    if out.exists() and not overwrite:
        raise SetupError(f"{display_path(out)} exists; pass --overwrite to replace it")
    try:
        mapping = fit_mapping(list(extracted), heldout_share=heldout, seed=seed)
        mapping.save(out)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    meta = mapping.meta
    click.echo(
        f"{meta['clips']} clips, {meta['frames']} frames (FLAME {meta['version']}, {meta['n_expression']} expression "
        f"coefficients); held out: {len(meta['heldout_speakers'])} speakers, {meta['heldout_frames']} frames"
    )
    for direction, score in heldout_scores(mapping).items():
        names = mapping.flame_names if direction == "arkit_to_flame" else mapping.arkit_names
        rmse, floor = float(np.mean(score.rmse)), float(np.mean(score.rmse_mean_pose))
        worst = np.argsort(np.nan_to_num(score.r, nan=-1))[:3]
        click.echo(
            f"  {direction}: mean r {score.mean_r:.3f}, RMSE {rmse:.4f} (training mean: {floor:.4f}); "
            f"weakest {', '.join(f'{names[i]} {score.r[i]:.2f}' for i in worst)}"
        )
    click.echo(f"mapping → {display_path(out)}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("animation", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--to", "target", type=click.Choice(["arkit", "flame"]), required=True, help="Representation to write.")
@click.option("--mapping", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="A mapping from `medtalk-models flame-mapping`.")  # fmt: skip
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Output file; the suffix picks the format (.flame.npz, .npz, .arkit.csv, .livelink.csv).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def convert(animation: Path, target: str, mapping: Path, out: Path, overwrite: bool) -> None:
    """Convert an animation between ARKit blendshapes and FLAME expression + jaw.

    ANIMATION is any curves file medtalk reads (npz, ARKit CSV, Live Link Face CSV) or a FLAME
    ``.flame.npz`` (keys exp, jaw_pose; what EMOTE and DiffPoseTalk write).

    \b
    Examples:
      medtalk-models convert out/speech.npz --to flame --mapping flame_arkit.npz --out speech.flame.npz
      medtalk-models convert emote_result.flame.npz --to arkit --mapping flame_arkit.npz --out result.arkit.csv
    """
    from medtalk_data.errors import MedtalkError
    from medtalk_data.io.files import display_path
    from medtalk_models.export.curves import rig_kind
    from medtalk_models.export.formats import FORMATS, format_of, read_any
    from medtalk_models.flame_mapping import FlameArkitMapping

    if out.exists() and not overwrite:
        raise SetupError(f"{display_path(out)} exists; pass --overwrite to replace it")
    try:
        fmt = FORMATS[format_of(out)] if not out.name.lower().endswith(".csv") else None
        if fmt is None:  # a CSV to be: by its suffix, not by a header it does not have yet
            fmt = FORMATS["livelink" if out.name.lower().endswith(".livelink.csv") else "csv"]
        converted = FlameArkitMapping.load(mapping).convert(read_any(animation), target)
        if rig_kind(converted.names) not in fmt.rigs:
            raise MedtalkError(f"{display_path(out)}: {fmt.name} files do not hold {target} curves; use .npz or "
                               f"{'.flame.npz' if target == 'flame' else '.arkit.csv'}")  # fmt: skip
        fmt.write(out, converted)
    except MedtalkError as err:
        raise SetupError(str(err)) from err
    click.echo(f"{converted.n_frames} frames at {converted.fps:g} fps → {display_path(out)} ({target})")


def main() -> None:
    cli(prog_name="medtalk-models")


if __name__ == "__main__":
    main()
