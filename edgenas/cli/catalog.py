"""`edgenas profiles list|show`, `edgenas targets list`, `edgenas arch show`: what edgenas knows of devices,
targets and architectures."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from ..device.profile import PROFILES
from ..device.target import TARGETS
from ..spaces import get_space
from .shell import json_option, space_option


@click.group("profiles")
def profiles():
    """Device profiles."""


@profiles.command("list")
@json_option("Print every profile (as `profiles show` does) as one JSON list.")
def profiles_list(as_json):
    """Every profile: name, kind, target, runtime, how it is measured, description."""
    if as_json:
        click.echo(json.dumps([PROFILES.get(name).describe() for name in PROFILES.names()], indent=2))
        return
    for name in PROFILES.names():
        click.echo(PROFILES.get(name).summary())


@profiles.command("show")
@click.argument("name")
def profiles_show(name):
    click.echo(json.dumps(PROFILES.get(name).describe(), indent=2))


@click.group("targets")
def targets():
    """Compilation targets."""


@targets.command("list")
@json_option("Print every target as one JSON list.")
def targets_list(as_json):
    """Every compilation target: name, machine, device, description."""
    if as_json:
        click.echo(json.dumps([asdict(TARGETS.get(name)) for name in TARGETS.names()], indent=2))
        return
    for name in TARGETS.names():
        click.echo(TARGETS.get(name).summary())


@click.group("arch")
def arch():
    """Architectures of a search space."""


@arch.command("show")
@click.argument("arch")
@space_option
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1))
def arch_show(arch, space, batch):
    """Canonical form, encoding and static costs of ARCH."""
    click.echo(json.dumps(get_space(space, batch=batch).describe(arch), indent=2))
