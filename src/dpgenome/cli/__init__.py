"""Command-line interface: thin click commands over the library.

This package is the only place that configures logging, progress display and exit codes.
Each stage's commands live in their own module (``cli/<stage>.py``) and are registered on the
``main`` group below. User errors (:class:`dpgenome.errors.DpgenomeError`) become a
one-paragraph message on stderr and exit code 2 (3 for a blocked release); never a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from dpgenome import __version__
from dpgenome.errors import DpgenomeError

#: the one log format of every command (level and logger name: ``WARNING dpgenome.release: ...``)
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# Before the commands are registered: importing them imports Opacus, whose module_utils calls
# logging.basicConfig with its own format at import, after which ours did nothing, and
# ``-v``/``-vv`` showed no info or debug lines.
logging.basicConfig(format=LOG_FORMAT)


class _Group(click.Group):
    """Maps user errors to their exit code and a message naming file and location."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DpgenomeError as err:
            click.echo(f"error: {err.render()}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:  # Ctrl-C: the shell's convention, 128 + SIGINT
            click.echo("Aborted! (interrupted)", err=True)
            sys.exit(130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="dpgenome")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """dpgenome: differentially private synthetic genomic cohorts, audited and policy-gated."""
    logging.getLogger().setLevel(logging.WARNING - 10 * min(verbose, 2))


def _register() -> None:
    from dpgenome.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
