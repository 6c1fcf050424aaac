"""``medtalk-models``: train and run MEDTalk models on manifests built by ``medtalk-data``."""

from __future__ import annotations

import click

from .common import CONTEXT_SETTINGS, setup_logging


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="medtalk", prog_name="medtalk-models")
def cli(verbose: int, quiet: bool) -> None:
    """Train and run MEDTalk emotional facial-animation models.

    The training and animation commands arrive with the model package; see the README's roadmap.

    \b
    Examples:
      medtalk-models --version
    """
    setup_logging(verbose, quiet)


def main() -> None:
    cli(prog_name="medtalk-models")


if __name__ == "__main__":
    main()
