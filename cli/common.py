"""What both command groups share: logging that does not break progress bars, exit codes, the engine options."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

EXIT_OK = 0
EXIT_FAILURES = 1  # the command ran, but some items (clips) failed; see the summary
EXIT_SETUP = 2  # bad invocation or a problem that stopped the whole run
EXIT_INTERRUPTED = 130

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def file_option(name: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option naming a file the user brings (FLAME, DECA: licence-gated, never downloaded); default None."""
    from pathlib import Path

    return click.option(name, type=click.Path(path_type=Path, dir_okay=False), default=None, help=help)


class SetupError(click.ClickException):
    """A problem that stops the whole command (exit code 2), printed as one line."""

    exit_code = EXIT_SETUP


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never crash the command
            self.handleError(record)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def engine_options(task: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--engine, --address, --cpus-per-clip, --gpus-per-clip: where a command's per-clip work runs."""

    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            (
                click.option(
                    "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                    help=f"local: on this machine; ray: one Ray task per clip ({task}) on a cluster (extra: cluster).",
                ),
                click.option(
                    "--address", default=None,
                    help="--engine ray: the head node HOST:PORT of a running cluster [default: $RAY_ADDRESS, "
                    "else Ray on this machine only].",
                ),
                click.option(
                    "--cpus-per-clip", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                    help="--engine ray: CPUs each clip's task reserves.",
                ),
                click.option(
                    "--gpus-per-clip", type=click.FloatRange(min=0), default=0.0, show_default=True,
                    help="--engine ray: GPUs (or a share) each clip's task reserves.",
                ),
            )
        ):  # fmt: skip
            command = option(command)
        return command

    return add


def ray_options(engine: str, address: str | None, cpus_per_clip: float, gpus_per_clip: float) -> Any:
    """The RayOptions the engine options ask for (None: the local engine)."""
    if engine != "ray":
        if address is not None:
            raise click.UsageError("--address needs --engine ray")
        return None
    from medtalk_data.cluster import RayOptions

    return RayOptions(address or os.environ.get("RAY_ADDRESS") or None, cpus_per_clip, gpus_per_clip)
