"""`edgenas bench latency|nas|runtime|models|fleet`: benchmarks that print figures, as a table or JSON (`bench/`)."""
from __future__ import annotations

import json

import click

from .shell import (
    Finite,
    Shape,
    UserError,
    batch_option,
    benchmark_at,
    json_option,
    log,
    names,
    profile_at,
    space_option,
    store_columns_option,
)


@click.group("bench")
def group():
    """Benchmarks against ground-truth tables (printed as a table, or JSON with --json)."""


@group.command("latency")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder.")
@click.option("--space", default=None, help="Search space of the table [default: the one named like the folder].")
@click.option("--devices", default=None,
              help="Comma-separated held-out devices [default: the validation devices of the space's reference split].")
@click.option("--support", default="0,3,5,10,20,50", show_default=True,
              help="Support measurements K, comma-separated.")
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=1), help="Support sets per K.")
@click.option("--meta-seeds", default=3, show_default=True, type=click.IntRange(min=1),
              help="Meta-training seeds (where the shipped checkpoint cannot be used).")
@click.option("--meta-train-devices", default=None,
              help="Devices meta-training may use [default: the reference split's meta-training devices, and the "
                   "--store's columns].")
@store_columns_option
@json_option()
def latency_command(data, space, devices, support, seeds, meta_seeds, meta_train_devices, store_path, as_json):
    """Few-shot latency prediction on held-out devices: Spearman over all architectures for each K, with
    baselines, over support and meta-training seeds."""
    from ..bench.latency import bench_latency, table

    try:
        supports = tuple(int(k) for k in names(support))
    except (TypeError, ValueError):
        raise UserError(f"--support '{support}' is not a list of measurement counts; write e.g. --support 0,5,10") \
            from None
    bench, added = benchmark_at(data, space, store_path)
    result = bench_latency(bench, names(devices), supports=supports, seeds=seeds, meta_seeds=meta_seeds,
                           meta_train_devices=meta_train_with(bench, names(meta_train_devices), added), log=log)
    click.echo(json.dumps(result, indent=2) if as_json else table(result))


@group.command("nas")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder.")
@click.option("--space", default=None, help="Search space of the table [default: the one named like the folder].")
@click.option("--device", "devices", default=None,
              help="Held-out device(s), comma-separated [default: the reference split's validation devices].")
@click.option("--budget-ms", "budgets", default="p25,p50,p75", show_default=True,
              help="Latency budget(s), comma-separated: milliseconds, or pNN for the device's NN-th percentile.")
@click.option("--task", default=None,
              help="Target task: an accuracy column, or synthetic_imagenet16 (an unseen ImageNet16-120-style task) "
                   "[default: the space's judged task: nb201 cifar100, effnet imagenet_top1].")
@click.option("--task-seed", default=0, show_default=True, type=int, help="Seed of the synthetic task.")
@click.option("--source-task", default=None,
              help="Prior-knowledge task, '' for none [default: the space's source task (nb201: cifar10) unless it is "
                   "the judged task].")
@click.option("--latency-queries", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--accuracy-queries", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--meta-train-devices", default=None,
              help="Devices meta-training may use [default: the reference split's meta-training devices, and the "
                   "--store's columns].")
@store_columns_option
@json_option()
def nas_command(data, space, devices, budgets, task, task_seed, source_task, latency_queries, accuracy_queries,
                seeds, meta_train_devices, store_path, as_json):
    """Latency-constrained search on held-out devices: accuracy of the pick over the exhaustive oracle's."""
    from ..bench.nas import bench_nas, table

    bench, added = benchmark_at(data, space, store_path)
    result = bench_nas(bench, names(devices), names(budgets), task=task, source_task=source_task,
                       latency_queries=latency_queries, accuracy_queries=accuracy_queries, seeds=seeds,
                       meta_train_devices=meta_train_with(bench, names(meta_train_devices), added),
                       task_seed=task_seed, log=log)
    click.echo(json.dumps(result, indent=2) if as_json else table(result))


def meta_train_with(bench, given: list[str] | None, added: list[str]) -> list[str] | None:
    """The devices meta-training may use: `given`, else (where a store added columns) the reference split's
    meta-training devices and the `added` columns, else the bench's default (None)."""
    split = bench.space.reference_split.get("meta_train")
    return given or ([*split, *added] if split and added else None)


@group.command("runtime")
@click.option("--target", "profile", default="host", show_default=True, help="Profile whose target runs here.")
@click.option("--archs", "count", default=6, show_default=True, type=click.IntRange(min=1),
              help="Architectures at evenly spaced FLOPs quantiles of the space.")
@click.option("--arch", "archs", multiple=True, help="An architecture to time instead (repeatable).")
@space_option
@batch_option
@json_option()
def runtime_command(profile, count, archs, space, batch, as_json):
    """The same networks through tuned TVM, onnxruntime and PyTorch eager, interleaved, same threads."""
    from ..bench.runtime import bench_runtime, table

    result = bench_runtime(profile_at(profile, batch), list(archs) or None, count=count, space=space, log=log)
    click.echo(json.dumps(result, indent=2) if as_json else table(result))


@group.command("models")
@click.option("--target", "profile", default="host", show_default=True, help="Profile whose target runs here.")
@click.option("--models", "models", default=None,
              help="Comma-separated networks of the zoo [default: all: resnet18, mobilenet_v2, squeezenet1_1, "
                   "shufflenet_v2, efficientnet_b0].")
@click.option("--input-shape", type=Shape(), default="1,3,224,224", show_default=True, help="Input of every network.")
@click.option("--budget-minutes", type=Finite(min=0.1), default=20.0, show_default=True,
              help="tune --model's budget for each network.")
@click.option("--trials", default=128, show_default=True, type=click.IntRange(min=1),
              help="tune --model's candidates per task.")
@click.option("--db", type=click.Path(file_okay=False), default=None,
              help="Tuning database directory [default: the target's, in the edgenas cache].")
@json_option()
def models_command(profile, models, input_shape, budget_minutes, trials, db, as_json):
    """Public CNNs as a user's own models: tune --model with a budget, compile, then TVM against onnxruntime."""
    from ..bench.models import bench_models, table

    result = bench_models(profile, names(models), input_shape=input_shape, budget_minutes=budget_minutes,
                          trials=trials, db=db, log=log)
    click.echo(json.dumps(result, indent=2) if as_json else table(result))
