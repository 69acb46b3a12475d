"""What every command shares: user errors as one `error:` line with exit code 2, Ctrl-C as exit 130, progress on
stderr, and the options several commands take."""
from __future__ import annotations

import os
import sys

import click

from ..errors import EdgenasError
from ..spaces import DEFAULT_SPACE


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Cli(click.Group):
    """A command group whose commands end an EdgenasError as a UserError and leave at once on Ctrl-C."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgenasError as e:
            raise UserError(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; measurements and tuning records already stored are kept", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            # Every store commits each record as it is written, so nothing is lost by leaving at once; a normal
            # exit would wait on (or, in C++, abort under) a build still running in a background thread.
            os._exit(130)


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the result (a table, or JSON)."""
    click.echo(message, err=True)


def names(text: str | None) -> list[str] | None:
    """A comma-separated list of names (devices, budgets), or None when not given."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


profile_option = click.option("--target", "-t", "profile", default="host", show_default=True,
                              help="Device profile name.")
space_option = click.option("--space", default=DEFAULT_SPACE, show_default=True)


def json_option(help: str | None = None):
    return click.option("--json", "as_json", is_flag=True, help=help)


def space_of_folder(data: str) -> str:
    """The space a benchmark folder is for, by its name (../shared/benchmarks/fbnet -> fbnet), else the default."""
    from pathlib import Path

    from ..spaces import DEFAULT_SPACE, SPACES

    name = Path(data).resolve().name
    return name if name in SPACES else DEFAULT_SPACE
