"""`edgenas store import`: latencies measured elsewhere into the store, where they condition the device's
predictions (`store.import_latencies`)."""
from __future__ import annotations

import click

from ..runtimes import RUNTIMES
from .shell import space_option


@click.group("store")
def group():
    """The measurement store."""


@group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "profile", required=True, help="Device profile the latencies were measured on.")
@click.option("--runtime", default=None,
              help=f"Runtime they were measured with ({', '.join(RUNTIMES)}) [default: the one the profile deploys].")
@space_option
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Measurement store (SQLite).")
def import_command(file, profile, runtime, space, db):
    """Add FILE, a CSV with the columns arch and latency_ms (e.g. from LiteRT's benchmark tool on a phone), to the
    store as measurements of the profile's device; every line is checked before anything is written."""
    from ..store import import_latencies

    click.echo(import_latencies(file, profile, space=space, runtime=runtime, db=db).summary())
