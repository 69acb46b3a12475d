"""`edgenas gate`: the CI latency gate over an artifact (`gate.run.gate`)."""
from __future__ import annotations

import json
import sys

import click

from .shell import Finite, json_option, log


@click.command("gate")
@click.argument("artifact", type=click.Path())
@click.option("--target", "-t", "profile", required=True, help="Device profile to time the artifact on.")
@click.option("--budget-ms", type=Finite(min=0, min_open=True), default=None,
              help="Latency budget [default: the project's gate configuration, else the profile's].")
@click.option("--percentile", type=Finite(min=0, max=100, min_open=True), default=None,
              help="Percentile of the repeats that must fit [default: 90].")
@click.option("--tolerance", type=Finite(min=0), default=None,
              help="Allowed excess over the budget, as a fraction [default: 0.05].")
@click.option("--baseline", type=click.Path(), default=None, help="Old artifact to time interleaved against.")
@click.option("--max-regression", type=Finite(min=-1, min_open=True), default=None,
              help="Allowed slowdown against --baseline, as a fraction [default: 0.10].")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write the verdict as JUnit XML.")
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="Write the verdict as Markdown.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Also record the measurement in this store (not with --baseline).")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Images per inference the artifact must take (it is timed at the batch it was compiled for; "
                   "a mismatch is an error) [default: any].")
@json_option("Print the verdict as JSON (checks, figures, notes, exit code).")
def command(artifact, profile, budget_ms, percentile, tolerance, baseline, max_regression, junit, markdown, db,
            batch, as_json):
    """CI latency gate: time ARTIFACT on the profile's device; exit 0 within budget, 1 over it or regressed,
    2 on bad input or an unreachable device."""
    from ..gate import gate

    result = gate(artifact, profile, budget_ms=budget_ms, percentile=percentile, tolerance=tolerance,
                  baseline=baseline, max_regression=max_regression, db=db, junit=junit, markdown=markdown, log=log,
                  batch=batch)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else "\n".join(result.lines()))
    sys.exit(result.exit_code)
