"""What both command groups share: logging that does not break progress bars, exit codes."""

from __future__ import annotations

import logging
import sys

import click

EXIT_OK = 0
EXIT_FAILURES = 1  # the command ran, but some items (clips) failed; see the summary
EXIT_SETUP = 2  # bad invocation or a problem that stopped the whole run
EXIT_INTERRUPTED = 130

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


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
