"""The `edgenas` command: a thin group over the Python API, one module per verb, each owning its options and
calling one public function. Every user error ends as one `error:` line and exit code 2."""
from __future__ import annotations

import click

from .. import __version__, interrupt
from ..device.profile import PROFILES
from ..device.target import TARGETS
from ..errors import EdgenasError
from . import bench, catalog, compile, fleet, gate, measure, meta_train, predict, store, tune
from .shell import Cli, UserError, with_verbosity


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgenas")
@click.option("--profiles", "profile_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of device profiles (*.yaml); its files override bundled ones of the same name.")
@click.option("--targets", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of compilation targets (*.yaml).")
def cli(profile_dirs, target_dirs):
    """Hardware-aware edge deployment compiler: architecture -> ONNX -> TVM -> measured artifact."""
    try:
        for d in profile_dirs:
            PROFILES.add_dir(d)
        for d in target_dirs:
            TARGETS.add_dir(d)
    except EdgenasError as e:
        raise UserError(str(e)) from None


for _command in (compile.command, gate.command, tune.command, measure.command, fleet.group, meta_train.command,
                 store.group, bench.group, predict.command, catalog.profiles, catalog.targets, catalog.arch):
    with_verbosity(_command)
    cli.add_command(_command)


def main() -> None:
    """The `edgenas` command: Ctrl-C leaves at once (exit 130), then the group runs."""
    interrupt.install()
    cli(prog_name="edgenas")
