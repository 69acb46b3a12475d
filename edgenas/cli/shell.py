"""What every command shares: user errors as one `error:` line with exit code 2, Ctrl-C as exit 130, progress on
stderr, and the options several commands take."""
from __future__ import annotations

import math
import sys
import traceback

import click

from .. import interrupt
from ..errors import EdgenasError
from ..spaces import DEFAULT_SPACE


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        line = self.message.replace("\n", " ")  # one line, whatever the message quotes (a file's text, TVM's)
        click.echo(f"error: {line}", err=True)


class Cli(click.Group):
    """A command group whose commands end an EdgenasError as a UserError and leave at once on Ctrl-C, and whose
    option and argument errors are one `error:` line too (click's own are a Usage/Try/Error block)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            value = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # a group without its command: its help, as asked
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.UsageError as e:
            command = e.ctx.command_path if e.ctx else (prog_name or "edgenas")
            click.echo(f"error: {e.format_message().rstrip('.')}; see '{command} --help'", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        if not standalone_mode:
            return value
        sys.exit(value if isinstance(value, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgenasError as e:
            detail("".join(traceback.format_exc()))  # --verbose: where it was raised, for a bug report
            raise UserError(str(e)) from None
        except KeyboardInterrupt:  # `finally` blocks have run (staging folders gone, RPC sessions closed)
            sys.stdout.flush()
            # Every store commits each record as it is written, so nothing is lost by leaving at once; a normal
            # exit would wait on (or, in C++, abort under) a build still running in a background thread.
            interrupt.leave()


class Finite(click.FloatRange):
    """A number in a range that is neither NaN nor infinite (click's FloatRange lets both through)."""

    name = "finite number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


VERBOSITY = {"level": 1}  # 0: --quiet (errors only), 1: progress, 2: --verbose (also the details)


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the result (a table, or JSON); --quiet silences it."""
    if VERBOSITY["level"] >= 1:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """What only --verbose shows (the traceback behind an error)."""
    if VERBOSITY["level"] >= 2:
        click.echo(message, err=True)


def with_verbosity(command: click.Command) -> None:
    """Give `command` (and every subcommand of a group) --quiet and --verbose."""
    def set_level(level: int):
        def callback(ctx, param, value):
            if value:
                VERBOSITY["level"] = level
        return callback

    command.params += [
        click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, is_eager=True, callback=set_level(0),
                     help="Print only the result and errors, no progress."),
        click.Option(["--verbose", "-v"], is_flag=True, expose_value=False, is_eager=True, callback=set_level(2),
                     help="Also print details (the traceback behind an error, for a bug report).")]
    for sub in getattr(command, "commands", {}).values():
        with_verbosity(sub)


def names(text: str | None) -> list[str] | None:
    """A comma-separated list of names (devices, budgets), or None when not given."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


profile_option = click.option("--target", "-t", "profile", default="host", show_default=True,
                              help="Device profile: a name, or the path of its YAML file.")
space_option = click.option("--space", default=DEFAULT_SPACE, show_default=True)
batch_option = click.option("--batch", type=click.IntRange(min=1), default=None,
                            help="Images per inference [default: the profile's, 1 for every shipped profile].")


class Shape(click.ParamType):
    """A tensor shape written as comma-separated positive integers: 1,3,224,224."""

    name = "shape"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            shape = tuple(int(d) for d in str(value).replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            self.fail(f"{value!r} is not a shape; write positive integers separated by commas, e.g. 1,3,224,224",
                      param, ctx)
        return shape


def check_model_options(model: str | None, input_shape: tuple[int, ...] | None, others: dict[str, object]) -> None:
    """Refuse --input-shape without --model, and with --model the first of `others` (option -> value) given."""
    if input_shape and not model:
        raise UserError("--input-shape fixes the input of a --model file; a space's architectures take the "
                        "profile's input (--batch sets its batch)")
    given = [name for name, value in others.items() if value] if model else []
    if given:
        raise UserError(f"{given[0]} does not apply to --model (a trained network of your own); leave it out"
                        f"{' and set the batch with --input-shape' if given[0] == '--batch' else ''}")


def profile_at(name: str, batch: int | None):
    """The profile `name`, at `batch` images per inference when given (`--batch`)."""
    from ..device.profile import PROFILES

    return PROFILES.get(name).at_batch(batch)


def json_option(help: str | None = None):
    return click.option("--json", "as_json", is_flag=True, help=help)


def space_of_folder(data: str) -> str:
    """The space a benchmark folder is for, by its name (../shared/benchmarks/fbnet -> fbnet), else the default."""
    from pathlib import Path

    from ..spaces import DEFAULT_SPACE, SPACES

    name = Path(data).resolve().name
    return name if name in SPACES else DEFAULT_SPACE


store_columns_option = click.option(
    "--store", "store_path", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Also meta-train on what edgenas measured itself (a measurement store): a latency column per profile and "
         "runtime measured on the table's space, named PROFILE:RUNTIME.")


def benchmark_at(data: str, space: str | None, store_path: str | None):
    """The benchmark folder `data` (of `space`, default: the folder's name) with, from the store at `store_path`,
    a column per profile and runtime measured on at least `metatrain.MIN_MEASURED` of its architectures; and the
    names of the columns added."""
    from ..nas.benchmark import load_benchmark
    from ..nas.metatrain import MIN_MEASURED
    from ..store import Store

    bench = load_benchmark(data, space or space_of_folder(data))
    if not store_path:
        return bench, []
    with Store(store_path) as store:
        found = store.columns(bench.space.name, bench.space.input_shape)
    columns = {name: column for name, column in found.items() if len(column) >= MIN_MEASURED}
    for name in sorted(set(found) - set(columns)):
        log(f"{name}: {len(found[name])} architectures measured; meta-training needs {MIN_MEASURED}: left out")
    if not columns:
        raise UserError(f"{store_path} holds no profile and runtime with {MIN_MEASURED} architectures of space "
                        f"'{bench.space.name}' at input {'x'.join(map(str, bench.space.input_shape))}; measure "
                        f"more (edgenas measure --space {bench.space.name} --sample N) or leave --store out")
    return bench.with_columns(columns), list(columns)

