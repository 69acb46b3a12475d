"""`edgenas fleet status`: what a TVM RPC tracker holds (`measure.tracker.status`)."""
from __future__ import annotations

import json

import click

from .shell import UserError, json_option


@click.group("fleet")
def group():
    """Device fleets behind a TVM RPC tracker."""


@group.command("status")
@click.option("--tracker", default=None, help="The tracker's HOST:PORT.")
@click.option("--target", "-t", "profile", default=None, help="Or an RPC profile, whose tracker is asked.")
@json_option()
def status_command(tracker, profile, as_json):
    """The keys a tracker knows, with their devices: how many, free, busy, and requests waiting."""
    from ..device.profile import PROFILES, TRACKER
    from ..measure.tracker import status, status_dict, status_table

    if bool(tracker) == bool(profile):
        raise UserError("give the tracker with --tracker HOST:PORT, or an RPC profile with --target (one of them)")
    if profile:
        how = PROFILES.get(profile).measure
        if how["via"] != "rpc":
            raise UserError(f"profile '{profile}' is not measured through a tracker (measure.via: {how['via']}); "
                            f"give --tracker HOST:PORT")
        tracker = how["tracker"]
    elif not TRACKER.match(tracker):
        raise UserError(f"--tracker '{tracker}' is not HOST:PORT; write e.g. --tracker 127.0.0.1:9190")
    keys = status(tracker)
    click.echo(json.dumps(status_dict(tracker, keys), indent=2) if as_json else status_table(tracker, keys))
