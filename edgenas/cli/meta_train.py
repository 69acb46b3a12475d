"""`edgenas meta-train`: the few-shot models of a space, meta-trained on a benchmark's devices
(`nas.metatrain.meta_train`)."""
from __future__ import annotations

import click

from .shell import log, names


@click.command("meta-train")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder (archs.csv, latency_ms.csv).")
@click.option("--devices", default=None, help="Comma-separated latency columns to train on [default: all].")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True)
@click.option("--accuracy-task", default="cifar10", show_default=True,
              help="Source-task accuracy column: the accuracy prior, task predictor and generator learn from it.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Checkpoint file to write.")
def command(data, devices, steps, seed, accuracy_task, output):
    """Meta-train the latency predictor, task predictor and generator across a benchmark's devices."""
    from ..nas.benchmark import load_benchmark
    from ..nas.metatrain import MetaTrainConfig, meta_train

    bench = load_benchmark(data)
    chosen = names(devices) or bench.devices
    trained = meta_train(bench, chosen, MetaTrainConfig(steps=steps), seed=seed, log=log, accuracy_task=accuracy_task)
    trained.save(output)
    click.echo(f"checkpoint {output}  ({len(chosen)} devices: {', '.join(chosen)})")
