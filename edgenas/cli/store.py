"""`edgenas store`: the measurement store's contents and upkeep (`list`, `show`, `remove`, `export`, `vacuum`),
and `import` of latencies measured elsewhere, which condition the device's predictions
(`store.Store`, `store.import_latencies`)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..runtimes import RUNTIMES
from .shell import UserError, json_option, space_option

db_option = click.option("--db", type=click.Path(dir_okay=False), default=None,
                         help="Measurement store (SQLite) [default: EDGENAS_DB, else the user's cache folder].")


@click.group("store")
def group():
    """The measurement store."""


@group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "profile", required=True, help="Device profile the latencies were measured on.")
@click.option("--runtime", default=None,
              help=f"Runtime they were measured with ({', '.join(RUNTIMES)}) [default: the one the profile deploys].")
@space_option
@db_option
def import_command(file, profile, runtime, space, db):
    """Add FILE, a CSV with the columns arch and latency_ms (e.g. from LiteRT's benchmark tool on a phone), to the
    store as measurements of the profile's device; every line is checked before anything is written."""
    from ..store import import_latencies

    click.echo(import_latencies(file, profile, space=space, runtime=runtime, db=db).summary())


@group.command("list")
@db_option
@json_option()
def list_command(db, as_json):
    """What the store holds: measurements per profile, runtime, space and device, unstable ones and those taken
    under load (not used as support) counted."""
    from ..store import Store

    with Store(db) as store:
        rows = store.counts()
        where, writable = store.path, store.writable
    if as_json:
        click.echo(json.dumps({"store": str(where), "writable": writable, "groups": rows}, indent=2))
        return
    click.echo(f"{where}{'' if writable else ' (read-only: nothing can be recorded)'}: "
               f"{sum(r['count'] for r in rows)} measurements")
    click.echo(f"{'profile':<16} {'runtime':<12} {'space':<8} {'device':<22} {'count':>6} {'unstable':>8} "
               f"{'loaded':>6}  newest")
    for r in rows:
        click.echo(f"{r['profile']:<16} {r['runtime']:<12} {r['space']:<8} {r['device']:<22} {r['count']:>6} "
                   f"{r['unstable']:>8} {r['under_load']:>6}  {r['newest']}")


@group.command("show")
@click.option("--target", "-t", "profile", required=True, help="Device profile whose measurements to show.")
@click.option("--runtime", default=None, help="Only this runtime's.")
@db_option
@json_option()
def show_command(profile, runtime, db, as_json):
    """Every measurement of one profile, oldest first; unstable ones and those taken under load marked."""
    from ..store import Store

    with Store(db) as store:
        records = list(store.records(profile=profile, runtime=runtime))
    if not records:
        raise UserError(f"the store holds no measurements of '{profile}'"
                        f"{f' on {runtime}' if runtime else ''}; `edgenas store list` shows what it holds")
    if as_json:
        click.echo(json.dumps([{**r.__dict__, "input_shape": list(r.input_shape)} for r in records], indent=2))
        return
    click.echo(f"{'id':>6} {'created':<25} {'runtime':<12} {'p50 ms':>9} {'p90 ms':>9} {'device':<22} "
               f"{'stable':<8} arch")
    for r in records:
        flag = "UNSTABLE" if not r.stable else "LOADED" if r.under_load else "yes"
        click.echo(f"{r.id:>6} {r.created_at:<25} {r.runtime:<12} {r.p50_ms:9.4f} {r.p90_ms:9.4f} {r.device:<22} "
                   f"{flag:<8} {r.arch}")


@group.command("remove")
@click.option("--target", "-t", "profile", required=True, help="Device profile whose measurements to remove.")
@click.option("--device", default=None, help="Only those taken by this device (HOST:PORT of a fleet, or local).")
@click.option("--runtime", default=None, help="Only this runtime's.")
@click.option("--unstable", is_flag=True, help="Only the unstable ones (their repeats spread too wide).")
@db_option
def remove_command(profile, device, runtime, unstable, db):
    """Remove a profile's measurements (e.g. a flagged fleet device's), in one transaction."""
    from ..store import Store

    with Store(db) as store:
        removed = store.remove(profile, device=device, unstable=unstable, runtime=runtime)
    click.echo(f"removed {removed} measurement{'s' * (removed != 1)} of '{profile}'")


@group.command("export")
@click.option("--target", "-t", "profile", default=None, help="Only this profile's measurements.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the CSV here (whole, or not at all) [default: standard output].")
@db_option
def export_command(profile, output, db):
    """Every measurement as CSV, one row each, with all the store's columns."""
    from ..store import Store

    with Store(db) as store:
        if output is None:
            store.export_csv(sys.stdout, profile)
            return
        partial = Path(f"{output}.partial")
        try:
            with open(partial, "w", newline="") as f:
                count = store.export_csv(f, profile)
            os.replace(partial, output)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise UserError(f"cannot write {output} ({e.strerror}); pass a writable path with -o") from None
    click.echo(f"exported {count} measurements to {output}", err=True)


@group.command("vacuum")
@db_option
def vacuum_command(db):
    """Fold the store's journal into its file and compact it."""
    from ..store import Store

    with Store(db) as store:
        before, after = store.vacuum()
    click.echo(f"{before / 1024:.0f} KiB -> {after / 1024:.0f} KiB")
