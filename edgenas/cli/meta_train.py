"""`edgenas meta-train`: the few-shot models of a space, meta-trained on a benchmark's devices
(`nas.metatrain.meta_train`)."""
from __future__ import annotations

import click

from .shell import benchmark_at, log, names, store_columns_option


@click.command("meta-train")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder (archs.csv, latency_ms.csv).")
@click.option("--space", default=None, help="Search space of the table [default: the one named like the folder].")
@click.option("--devices", default=None,
              help="Comma-separated latency columns to train on [default: all, the --store's included].")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True)
@click.option("--accuracy-task", default=None,
              help="Source-task accuracy column: the accuracy prior, task predictor and generator learn from it "
                   "[default: the space's source task (nb201: cifar10, effnet: imagenet_top1) where the table has "
                   "it, else the capacity proxy: log FLOPs + log parameters].")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Checkpoint file to write.")
@store_columns_option
def command(data, space, devices, steps, seed, accuracy_task, output, store_path):
    """Meta-train the latency predictor, task predictor and generator across a benchmark's devices."""
    from ..nas.metatrain import CAPACITY, MetaTrainConfig, default_source_task, meta_train

    bench, _ = benchmark_at(data, space, store_path)
    chosen = names(devices) or bench.devices
    if accuracy_task is None:
        accuracy_task = default_source_task(bench)
        if accuracy_task == CAPACITY:
            source = bench.space.source_task
            log(f"{bench.source} has no {source or 'source-task'} accuracies: the accuracy prior is the capacity proxy "
                f"(log FLOPs + log parameters); accuracy shots on your task correct it")
    trained = meta_train(bench, chosen, MetaTrainConfig(steps=steps), seed=seed, log=log, accuracy_task=accuracy_task)
    trained.save(output)
    click.echo(f"checkpoint {output}  ({len(chosen)} devices: {', '.join(chosen)})")
