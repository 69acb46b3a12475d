"""`edgenas predict`: run an artifact on one input array on this machine (`artifact.load.load`)."""
from __future__ import annotations

import json

import click

from ..errors import EdgenasError


@click.command("predict")
@click.argument("artifact", type=click.Path())
@click.option("--input", "-i", "input_file", required=True, type=click.Path(), help="Input array (.npy).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the output array here (.npy; .npz keyed by output name for a model with several "
                   "outputs) instead of printing it.")
def command(artifact, input_file, output):
    """Run ARTIFACT (a directory `compile` wrote) on this machine's CPU on one input array."""
    import numpy as np

    from ..artifact.load import load

    model = load(artifact)
    try:
        x = np.load(input_file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise EdgenasError(f"cannot read {input_file} as a .npy array ({e}); save the input with numpy.save") from None
    several = len(model.outputs) > 1
    if output and several and not str(output).endswith(".npz"):
        raise EdgenasError(f"{artifact} has {len(model.outputs)} outputs; give --output a .npz file, which keeps "
                           f"each under its name")
    y = model.predict(x)
    named = dict(zip((o.name for o in model.outputs), y if several else (y,)))
    if output and several:
        np.savez(output, **named)
    elif output:
        np.save(output, y)
    else:
        click.echo(json.dumps({name: values.tolist() for name, values in named.items()}))
