"""`edgenas compile`: an architecture, the user's own ONNX model, or the best architecture generated for the
budgets, into a measured artifact (`pipeline.compile.compile_artifact`, `compile_model`,
`pipeline.budget.compile_for_budget`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .shell import (
    Finite,
    Shape,
    UserError,
    batch_option,
    check_model_options,
    json_option,
    log,
    profile_at,
    profile_option,
    space_option,
)


@click.command("compile")
@profile_option
@click.option("--arch", "-a", default=None, help="Architecture string; without it, one is generated for the budget.")
@click.option("--model", default=None,
              help="Your own network instead of a space's: an .onnx file, or package.module:function returning a "
                   "torch.nn.Module (importable from the working directory; give --input-shape).")
@click.option("--input-shape", type=Shape(), default=None,
              help="The --model input's shape, e.g. 1,3,224,224: fixes an ONNX file's dynamic dimensions (batch, "
                   "size); a PyTorch model's example input.")
@click.option("--latency-ms", type=Finite(min=0, min_open=True), default=None,
              help="Latency budget: a generated architecture fits it; --arch is judged against it (exit 1 when "
                   "missed) [default: the profile's].")
@click.option("--memory-mb", type=Finite(min=0, min_open=True), default=None,
              help="Memory budget (weights + peak activations), like --latency-ms [default: the profile's].")
@click.option("--measurements", default=6, show_default=True, type=click.IntRange(min=1),
              help="New device measurements a generation may spend.")
@click.option("--output", "-o", type=click.Path(), default=None, help="Artifact directory [default: out/PROFILE].")
@click.option("--force", is_flag=True, help="Replace an artifact already in the output directory.")
@space_option
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Measurement store (SQLite).")
@click.option("--tuning-db", type=click.Path(file_okay=False), default=None,
              help="Tuning database directory [default: the target's, when `edgenas tune` made one].")
@click.option("--no-measure", is_flag=True, help="Compile only; do not time the library (needs --arch).")
@click.option("--data", type=click.Path(), default=None,
              help="Train the network on this data first: an image folder (a sub-folder per class), a .npz with "
                   "x and y, or a CIFAR-10/100 python batch folder.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1),
              help="Most training epochs (training stops early when validation accuracy stops improving).")
@click.option("--accuracy-shots", default=0, show_default=True, type=click.IntRange(min=0),
              help="Before generating, train this many sampled architectures briefly on --data and condition "
                   "the generator on their accuracies.")
@click.option("--shot-epochs", default=3, show_default=True, type=click.IntRange(min=1),
              help="Training epochs of each accuracy shot.")
@batch_option
@json_option("Print the report as JSON.")
def command(profile, arch, model, input_shape, latency_ms, memory_mb, measurements, output, force, space, db,
            tuning_db, no_measure, data, epochs, accuracy_shots, shot_epochs, batch, as_json):
    """Compile ARCH, your own --model, or the best architecture generated for the budgets, into a measured
    artifact."""
    from ..artifact.report import budget_verdicts, summary
    from ..pipeline.budget import compile_for_budget
    from ..pipeline.compile import compile_artifact, compile_model

    out = output if output is not None else Path("out") / profile
    check_model_options(model, input_shape, {"--arch": arch, "--data": data, "--accuracy-shots": accuracy_shots,
                                             "--batch": batch})
    profile = profile_at(profile, batch)
    if model:
        art = compile_model(profile, model, out, input_shape, db=db, measure_latency=not no_measure,
                            tuning_db=tuning_db, log=log, force=force, latency_ms=latency_ms, memory_mb=memory_mb)
    elif arch:
        if accuracy_shots:
            raise UserError("--accuracy-shots conditions a generated architecture; leave out --arch")
        art = compile_artifact(profile, arch, out, space=space, db=db, measure_latency=not no_measure,
                               tuning_db=tuning_db, data=data, epochs=epochs, log=log, force=force,
                               latency_ms=latency_ms, memory_mb=memory_mb)
    else:
        if no_measure:
            raise UserError("--no-measure needs --arch: a generated architecture is verified by measuring it")
        art = compile_for_budget(profile, latency_ms, out, space=space, db=db, memory_mb=memory_mb,
                                 measurements=measurements, log=log, tuning_db=tuning_db, data=data,
                                 epochs=epochs, accuracy_shots=accuracy_shots, shot_epochs=shot_epochs,
                                 force=force)
    click.echo(json.dumps(art.report, indent=2) if as_json else summary(art.report, art.directory))
    given = {"latency_ms": latency_ms, "memory_mb": memory_mb}
    missed = [text for name, met, text in budget_verdicts(art.report) if given[name] is not None and not met]
    if missed:  # like gate: a budget the user gave and the artifact breaks fails the step
        click.echo(f"over budget: {'; '.join(missed)} (the artifact is written)", err=True)
        sys.exit(1)
