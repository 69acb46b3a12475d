"""`edgenas profiles list|show`, `edgenas targets list`, `edgenas arch show`: what edgenas knows of devices,
targets and architectures."""
from __future__ import annotations

import json

import click

from ..device.profile import PROFILES
from ..device.target import TARGETS
from ..spaces import get_space
from .shell import space_option


@click.group("profiles")
def profiles():
    """Device profiles."""


@profiles.command("list")
def profiles_list():
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
def targets_list():
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
