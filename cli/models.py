"""``medtalk-models``: train and run MEDTalk models on manifests built by ``medtalk-data``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .common import CONTEXT_SETTINGS, EXIT_INTERRUPTED, SetupError, setup_logging

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
      medtalk-models train --print-config > my.yaml
      medtalk-models train --manifest manifests/mead --config my.yaml --stage intensity --out runs/first
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
    click.echo(f"run folder: {out}  (model/: latest finished stage; log.csv; tb/ for TensorBoard)")
    if result.stopped_early:
        click.echo(f"stopped by --max-steps; continue with --resume --out {out}")


def main() -> None:
    cli(prog_name="medtalk-models")


if __name__ == "__main__":
    main()
