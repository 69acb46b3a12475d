"""`edgenas measure`: build, time and store architectures (or the user's own model) on a profile's device, or a
fleet of them (`pipeline.measure_archs.measure_archs`, `measure_model`)."""
from __future__ import annotations

import json
import sys

import click

from ..runtimes import RUNTIMES
from .shell import (
    Shape,
    UserError,
    batch_option,
    check_model_options,
    json_option,
    log,
    profile_at,
    profile_option,
    space_option,
)


@click.command("measure")
@profile_option
@click.option("--arch", "-a", "archs", multiple=True, help="Architecture (repeatable).")
@click.option("--archs", "archs_file", type=click.Path(dir_okay=False), default=None,
              help="File of architectures: one per line ('#' comments), or a CSV with an 'arch' column.")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Measure N architectures sampled from the space (the same N and --seed give the same ones).")
@click.option("--seed", default=0, show_default=True, help="Seed of --sample.")
@click.option("--model", default=None,
              help="Your own network instead of architectures: an .onnx file or package.module:function, as "
                   "compile --model takes it; stored under the model's hash.")
@click.option("--input-shape", type=Shape(), default=None, help="The --model input's shape, as compile takes it.")
@click.option("--parallel", type=click.IntRange(min=1), default=None,
              help="Devices measuring at once, on an RPC profile [default: every device under its key].")
@click.option("--runtime", "runtimes", multiple=True, type=click.Choice(list(RUNTIMES)),
              help="Runtimes to time [default: tvm; on this machine also onnxruntime, and litert where the profile "
                   "ships LiteRT].")
@space_option
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Measurement store (SQLite).")
@batch_option
@json_option()
def command(profile, archs, archs_file, sample, seed, model, input_shape, parallel, runtimes, space, db, batch,
            as_json):
    """Build, compile and time architectures on a profile's device (on an RPC profile, across every device of
    its key in parallel); each result goes into the store as it arrives, and what the store already holds for
    the profile is skipped, so a rerun resumes."""
    from ..pipeline.measure_archs import measure_archs, measure_model
    from ..spaces import configure, read_archs

    check_model_options(model, input_shape, {"--arch": archs, "--archs": archs_file, "--sample": sample,
                                             "--parallel": parallel, "--batch": batch})
    if model:
        run = measure_model(profile_at(profile, None), model, input_shape, db=db, runtimes=runtimes or None,
                            log=log)
        click.echo(json.dumps(run.as_dict(), indent=2) if as_json else run.table())
        return
    profile = profile_at(profile, batch)
    sp = configure(space, profile.batch)
    wanted = [*archs, *(read_archs(archs_file, sp) if archs_file else []),
              *(sp.sample(sample, seed) if sample else [])]
    if not wanted:
        raise UserError("name the architectures to measure: --arch ARCH, --archs FILE or --sample N")
    run = measure_archs(profile, wanted, space=sp, db=db, runtimes=runtimes or None, parallel=parallel, log=log)
    click.echo(json.dumps(run.as_dict(), indent=2) if as_json else run.table())
    if run.failed:
        for arch, why in run.failed.items():
            click.echo(f"failed {arch}: {why}", err=True)
        click.echo(f"error: {len(run.failed)} architectures were not measured (above); run the same command again "
                   f"to retry them", err=True)
        sys.exit(1)
