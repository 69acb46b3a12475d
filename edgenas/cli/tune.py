"""`edgenas tune`: MetaSchedule schedules for every kernel of a search space, or of the user's own model
(`compiler.tune.tune`)."""
from __future__ import annotations

import json

import click

from .shell import (
    Finite,
    Shape,
    batch_option,
    check_model_options,
    json_option,
    log,
    profile_at,
    profile_option,
    space_option,
)


@click.command("tune")
@profile_option
@space_option
@click.option("--trials", default=128, show_default=True, type=click.IntRange(min=1),
              help="Candidates measured per task (a quarter for tasks under 1 MFLOP).")
@click.option("--budget-minutes", type=Finite(min=0.1), default=None,
              help="Wall-clock budget for the whole run: each task gets its share of the trials that fit (by "
                   "the square root of its work, at least 4, at most --trials); a rerun tops them up.")
@click.option("--db", type=click.Path(file_okay=False), default=None,
              help="Tuning database directory [default: the target's, in the edgenas cache].")
@click.option("--data", type=click.Path(), default=None,
              help="Tune for the image size, channels and classes of this data (as compile --data takes it).")
@click.option("--model", default=None,
              help="Tune your own network instead of a space: an .onnx file or package.module:function, as "
                   "compile --model takes it; workloads the database already holds are not tuned again.")
@click.option("--input-shape", type=Shape(), default=None, help="The --model input's shape, as compile takes it.")
@batch_option
@json_option("Print the summary as JSON.")
def command(profile, space, trials, budget_minutes, db, data, model, input_shape, batch, as_json):
    """Tune every operator workload of the search space (or of --model) for the profile's target (MetaSchedule),
    once; any architecture then compiles with tuned schedules. A rerun resumes: tasks with their records are
    skipped."""
    from ..compiler.tune import tune
    from ..data.datasets import load_dataset
    from ..spaces import configure

    check_model_options(model, input_shape, {"--data": data, "--batch": batch})
    profile = profile_at(profile, batch)  # the kernels of another batch size are other workloads, in the same database
    if data:
        space = configure(space, profile.batch, load_dataset(data))
    report = tune(profile, space, trials=trials, db=db, budget_minutes=budget_minutes, log=log, model=model,
                  input_shape=input_shape)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.summary())
