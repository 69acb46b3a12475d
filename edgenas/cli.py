"""The `edgenas` command: a thin layer over the Python API. Every user error ends as one line and exit code 2."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import EdgenasError


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgenasError as e:
            raise UserError(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; measurements and tuning records already stored are kept", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            # Every store commits each record as it is written, so nothing is lost by leaving at once; a normal
            # exit would wait on (or, in C++, abort under) a build still running in a background thread.
            os._exit(130)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgenas")
@click.option("--profiles", "profile_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of device profiles (*.yaml); its files override bundled ones of the same name.")
@click.option("--targets", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of compilation targets (*.yaml).")
def cli(profile_dirs, target_dirs):
    """Hardware-aware edge deployment compiler: architecture -> ONNX -> TVM -> measured artifact."""
    from .profile import PROFILES
    from .target import TARGETS

    try:
        for d in profile_dirs:
            PROFILES.add_dir(d)
        for d in target_dirs:
            TARGETS.add_dir(d)
    except EdgenasError as e:
        raise UserError(str(e)) from None


@cli.command("compile")
@click.option("--target", "-t", "profile", default="host", show_default=True, help="Device profile name.")
@click.option("--arch", "-a", default=None, help="Architecture string; without it, one is generated for the budget.")
@click.option("--latency-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Latency budget for a generated architecture [default: the profile's].")
@click.option("--memory-mb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Memory budget (weights + peak activations) [default: the profile's].")
@click.option("--measurements", default=6, show_default=True, type=click.IntRange(min=1),
              help="New device measurements a generation may spend.")
@click.option("--output", "-o", type=click.Path(), default=None, help="Artifact directory [default: out/PROFILE].")
@click.option("--space", default="nb201", show_default=True)
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
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def compile_cmd(profile, arch, latency_ms, memory_mb, measurements, output, space, db, tuning_db, no_measure,
                data, epochs, accuracy_shots, shot_epochs, as_json):
    """Compile ARCH, or the best architecture generated for the budgets, into a measured artifact."""
    from .pipeline import compile_artifact, compile_for_budget
    from .profile import PROFILES

    out = output or Path("out") / profile
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if arch:
        if accuracy_shots:
            raise UserError("--accuracy-shots conditions a generated architecture; leave out --arch")
        art = compile_artifact(profile, arch, out, space=space, db=db, measure_latency=not no_measure,
                               tuning_db=tuning_db, data=data, epochs=epochs, log=log)
    else:
        budget = latency_ms or PROFILES.get(profile).budgets.get("latency_ms")
        if not budget:
            raise UserError("give --arch, or a latency budget with --latency-ms (the profile has none)")
        if no_measure:
            raise UserError("--no-measure needs --arch: a generated architecture is verified by measuring it")
        art = compile_for_budget(profile, budget, out, space=space, db=db, memory_mb=memory_mb,
                                 measurements=measurements, log=log, tuning_db=tuning_db, data=data,
                                 epochs=epochs, accuracy_shots=accuracy_shots, shot_epochs=shot_epochs)
    if as_json:
        click.echo(json.dumps(art.report, indent=2))
        return
    r = art.report
    files = "model.onnx, model.so, " + ("model.tflite, " if (art.report.get("litert") or {}).get("file") else "")
    click.echo(f"artifact   {art.directory}/  ({files}manifest.json, report.json, report.html)")
    click.echo(f"arch       {r['arch']}")
    c = r["costs"]
    click.echo(f"costs      {c['mflops']:.1f} MFLOPs, {c['params'] / 1e6:.3f} M params, "
               f"{c['peak_activation_mb']:.3f} MB peak activations")
    if "training" in r:
        t = r["training"]
        test = "" if t["test_accuracy"] is None else f", test {t['test_accuracy']:.2f}%"
        click.echo(f"trained    val {t['val_accuracy']:.2f}%{test} (best epoch {t['best_epoch']} of {t['epochs_run']}; "
                   f"{t['samples']['train']} train / {t['samples']['val']} val samples, {len(t['classes'])} classes)")
    if "accuracy_shots" in r:
        a = r["accuracy_shots"]
        click.echo(f"shots      after {a['epochs']} epochs the pick reaches {a['pick_val_accuracy']:.2f}%, beating "
                   f"{a['pick_beats']} of {len(a['sampled'])} sampled architectures (best "
                   f"{a['best_sampled_val_accuracy']:.2f}%)")
    comp = r["compile"]
    from .tune import SHIPPED

    if comp["tuning_db"] is None:
        how = f"untuned: no tuning database for this target; run edgenas tune --target {r['profile']}"
    elif comp["fallback"]:
        how = f"{len(comp['tuned'])} tuned, {len(comp['fallback'])} untuned: {', '.join(comp['fallback'])}"
        if len(comp["fallback"]) > len(comp["tuned"]):
            how += f"; edgenas tune --target {r['profile']}{' --data DATA' if 'training' in r else ''} tunes them"
    else:
        how = "all tuned"
    if comp["tuning_db"] and Path(comp["tuning_db"]).parent == SHIPPED:
        how += f"; from the database shipped for {Path(comp['tuning_db']).name}, edgenas tune --target " \
               f"{r['profile']} tunes for this CPU"
    click.echo(f"compiled   {comp['kernels']} kernels in {comp['seconds']:.1f} s ({how})")
    if not r["measured"]:
        click.echo(f"latency    not measured: {r['not_measured_because']}")
    for runtime, s in r["latency_ms"].items():
        flag = "" if s["stable"] else "  (unstable: spread above 5%)"
        click.echo(f"latency    {runtime:<12} p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms  "
                   f"min {s['min_ms']:.3f} ms  ({s['repeats']}x{s['number']} runs, {s['threads']} threads, "
                   f"{s['where']}){flag}")
    if "tvm_vs_onnxruntime" in r:
        click.echo(f"ratio      tvm / onnxruntime = {r['tvm_vs_onnxruntime']:.2f}")
    lite = r.get("litert")
    if lite and "missing" in lite:
        click.echo(f"litert     {lite['missing']}")
    elif lite:
        click.echo(f"litert     {lite['file']} by {lite['converter']} in {lite['seconds']:.1f} s, LiteRT output within "
                   f"{lite['max_abs_error_vs_pytorch']:.2g} of PyTorch's")
        if "latency_here" in lite:
            s = lite["latency_here"]
            click.echo(f"litert     p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms on this machine "
                       f"({s['version']}, {s['threads']} threads; stored under profile 'host': it says nothing of "
                       f"the device)")
    for c in r.get("search", {}).get("candidates", []):
        predicted = "reference" if c["predicted_ms"] is None else f"{c['predicted_ms']:9.3f}"
        click.echo(f"candidate  predicted {predicted:>9} ms  measured {c['measured_ms']:9.3f} ms  "
                   f"{'fits  ' if c['fits'] else 'misses'}  {c['arch']}")


@cli.command("gate")
@click.argument("artifact", type=click.Path())
@click.option("--target", "-t", "profile", required=True, help="Device profile to time the artifact on.")
@click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Latency budget [default: the project's gate configuration, else the profile's].")
@click.option("--percentile", type=click.FloatRange(min=0, max=100, min_open=True), default=None,
              help="Percentile of the repeats that must fit [default: 90].")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Allowed excess over the budget, as a fraction [default: 0.05].")
@click.option("--baseline", type=click.Path(), default=None, help="Old artifact to time interleaved against.")
@click.option("--max-regression", type=click.FloatRange(min=-1, min_open=True), default=None,
              help="Allowed slowdown against --baseline, as a fraction [default: 0.10].")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write the verdict as JUnit XML.")
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="Write the verdict as Markdown.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Also record the measurement in this store (not with --baseline).")
def gate_cmd(artifact, profile, budget_ms, percentile, tolerance, baseline, max_regression, junit, markdown, db):
    """CI latency gate: time ARTIFACT on the profile's device; exit 0 within budget, 1 over it or regressed,
    2 on bad input or an unreachable device."""
    from .gate import gate

    result = gate(artifact, profile, budget_ms=budget_ms, percentile=percentile, tolerance=tolerance,
                  baseline=baseline, max_regression=max_regression, db=db, junit=junit, markdown=markdown)
    for c in result.checks:
        click.echo(f"{'pass' if c.passed else 'FAIL'}  {c.name:<15} {c.message}")
    for note in result.notes:
        click.echo(f"note  {note}")
    sys.exit(result.exit_code)


@cli.command("tune")
@click.option("--target", "-t", "profile", default="host", show_default=True, help="Device profile name.")
@click.option("--space", default="nb201", show_default=True)
@click.option("--trials", default=128, show_default=True, type=click.IntRange(min=1),
              help="Candidates measured per task (a quarter for tasks under 1 MFLOP).")
@click.option("--db", type=click.Path(file_okay=False), default=None,
              help="Tuning database directory [default: the target's, in the edgenas cache].")
@click.option("--data", type=click.Path(), default=None,
              help="Tune for the image size, channels and classes of this data (as compile --data takes it).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def tune_cmd(profile, space, trials, db, data, as_json):
    """Tune every operator workload of the search space for the profile's target (MetaSchedule), once;
    any architecture then compiles with tuned schedules. A rerun resumes: tasks with their records are skipped."""
    from .pipeline import configured_space
    from .profile import PROFILES
    from .train import load_dataset
    from .tune import tune

    if data:
        space = configured_space(space, PROFILES.get(profile), load_dataset(data))
    report = tune(profile, space, trials=trials, db=db, log=lambda m: click.echo(m, err=True))
    skipped = sum(t.skipped for t in report.tasks)
    if as_json:
        click.echo(json.dumps({"database": str(report.database), "target": report.target, "archs": report.archs,
                               "seconds": round(report.seconds, 1), "trials_run": report.trials_run,
                               "tasks": [t.__dict__ for t in report.tasks]}, indent=2))
        return
    total = sum(t.best_us * t.weight for t in report.tasks if t.best_us is not None)
    click.echo(f"tuned      {len(report.tasks) - skipped} tasks ({report.trials_run} trials) in "
               f"{report.seconds:.0f} s; {skipped} already tuned")
    click.echo(f"kernels    sum of best kernel times over the {len(report.archs)} covering architectures: "
               f"{total / 1e3:.3f} ms")
    click.echo(f"database   {report.database}")


@cli.command("measure")
@click.option("--target", "-t", "profile", default="host", show_default=True, help="Device profile name.")
@click.option("--arch", "-a", "archs", multiple=True, help="Architecture (repeatable).")
@click.option("--archs", "archs_file", type=click.Path(dir_okay=False), default=None,
              help="File of architectures: one per line ('#' comments), or a CSV with an 'arch' column.")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Measure N architectures sampled from the space (the same N and --seed give the same ones).")
@click.option("--seed", default=0, show_default=True, help="Seed of --sample.")
@click.option("--parallel", type=click.IntRange(min=1), default=None,
              help="Devices measuring at once, on an RPC profile [default: every device under its key].")
@click.option("--runtime", "runtimes", multiple=True, type=click.Choice(["tvm", "onnxruntime", "litert"]),
              help="Runtimes to time [default: tvm; on this machine also onnxruntime, and litert where the profile "
                   "ships LiteRT].")
@click.option("--space", default="nb201", show_default=True)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Measurement store (SQLite).")
@click.option("--json", "as_json", is_flag=True)
def measure_cmd(profile, archs, archs_file, sample, seed, parallel, runtimes, space, db, as_json):
    """Build, compile and time architectures on a profile's device (on an RPC profile, across every device of
    its key in parallel); each result goes into the store as it arrives, and what the store already holds for
    the profile is skipped, so a rerun resumes."""
    from .pipeline import configured_space, measure_archs
    from .profile import PROFILES

    sp = configured_space(space, PROFILES.get(profile))
    wanted = [*archs, *(_read_archs(archs_file, sp) if archs_file else []),
              *(sp.sample(sample, seed) if sample else [])]
    if not wanted:
        raise UserError("name the architectures to measure: --arch ARCH, --archs FILE or --sample N")
    run = measure_archs(profile, wanted, space=sp, db=db, runtimes=runtimes or None, parallel=parallel,
                        log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps({"rows": run.rows, "skipped": run.skipped, "failed": run.failed,
                               "fleet": run.fleet.as_dict() if run.fleet else None,
                               "seconds": round(run.seconds, 2)}, indent=2))
    else:
        for row in run.rows:
            click.echo(row["arch"])
            for runtime, s in row.items():
                if runtime != "arch":
                    click.echo(f"  {runtime:<12} p50 {s['p50_ms']:9.3f} ms  p90 {s['p90_ms']:9.3f} ms  "
                               f"spread {100 * s['spread']:4.1f}%  on {s['device']}  stored as #{s['store_id']}")
        rate = f", {60 * len(run.rows) / run.seconds:.1f} per minute" if run.rows and run.seconds else ""
        click.echo(f"measured {len(run.rows)} in {run.seconds:.1f} s{rate}; {len(run.skipped)} already stored")
        if run.fleet:
            f = run.fleet
            for device, n in sorted(f.jobs_per_device.items()):
                canary = f"  reference {f.canary_ms[device]:.3f} ms" if device in f.canary_ms else ""
                flag = f"  FLAGGED: {f.flagged[device]:.2f}x its siblings' median" if device in f.flagged else ""
                click.echo(f"device {device:<21} {n:4d} measured{canary}{flag}")
            for device, why in sorted(f.dropped.items()):
                click.echo(f"device {device:<21} dropped: {why}")
    if run.failed:
        for arch, why in run.failed.items():
            click.echo(f"failed {arch}: {why}", err=True)
        click.echo(f"error: {len(run.failed)} architectures were not measured (above); run the same command again "
                   f"to retry them", err=True)
        sys.exit(1)


def _read_archs(path: str, sp) -> list[str]:
    """The architectures of a file: one per line ('#' comments and blank lines skipped), or a CSV whose header
    has an 'arch' column; each checked against the space, an error naming the line."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EdgenasError(f"cannot read {path} ({getattr(e, 'strerror', None) or e}); give a text file of "
                           f"architectures") from None
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    column = None
    if numbered and "," in numbered[0][1]:
        header = [h.strip() for h in numbered[0][1].split(",")]
        if "arch" not in header:
            raise EdgenasError(f"{path}: a CSV needs an 'arch' column (header: {numbered[0][1]}); add one, or "
                               f"write one architecture per line")
        column, numbered = header.index("arch"), numbered[1:]
    archs = []
    for n, line in numbered:
        fields = line.split(",") if column is not None else [line]
        try:
            archs.append(sp.canonical(fields[column or 0].strip()))
        except (EdgenasError, IndexError) as e:
            raise EdgenasError(f"{path}:{n}: {e if isinstance(e, EdgenasError) else 'no arch field'}") from None
    if not archs:
        raise EdgenasError(f"{path} holds no architectures; write one per line")
    return archs


@cli.group("fleet")
def fleet_group():
    """Device fleets behind a TVM RPC tracker."""


@fleet_group.command("status")
@click.option("--tracker", default=None, help="The tracker's HOST:PORT.")
@click.option("--target", "-t", "profile", default=None, help="Or an RPC profile, whose tracker is asked.")
@click.option("--json", "as_json", is_flag=True)
def fleet_status_cmd(tracker, profile, as_json):
    """The keys a tracker knows, with their devices: how many, free, busy, and requests waiting."""
    from .fleet import status
    from .profile import PROFILES, TRACKER

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
    if as_json:
        click.echo(json.dumps({"tracker": tracker, "keys": {k: {"devices": list(v.servers), "free": v.free,
                                                                "busy": v.busy, "pending": v.pending}
                                                            for k, v in keys.items()}}, indent=2))
        return
    click.echo(f"tracker {tracker}: {len(keys)} keys, {sum(len(v.servers) for v in keys.values())} devices")
    click.echo(f"{'key':<20} {'devices':>7} {'free':>5} {'busy':>5} {'waiting':>7}")
    for k, v in keys.items():
        click.echo(f"{k:<20} {len(v.servers):7d} {v.free:5d} {v.busy:5d} {v.pending:7d}")
        for server in v.servers:
            click.echo(f"  {server}")


def _devices(text: str | None) -> list[str] | None:
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


@cli.command("meta-train")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder (archs.csv, latency_ms.csv).")
@click.option("--devices", default=None, help="Comma-separated latency columns to train on [default: all].")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True)
@click.option("--accuracy-task", default="cifar10", show_default=True,
              help="Source-task accuracy column: the accuracy prior, task predictor and generator learn from it.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Checkpoint file to write.")
def meta_train_cmd(data, devices, steps, seed, accuracy_task, output):
    """Meta-train the latency predictor, task predictor and generator across a benchmark's devices."""
    from .benchmark import load_benchmark
    from .metatrain import meta_train

    bench = load_benchmark(data)
    names = _devices(devices) or bench.devices
    trained = meta_train(bench, names, steps=steps, seed=seed, log=lambda m: click.echo(m, err=True),
                         accuracy_task=accuracy_task)
    trained.save(output)
    click.echo(f"checkpoint {output}  ({len(names)} devices: {', '.join(names)})")


@cli.group("bench")
def bench_group():
    """Benchmarks against ground-truth tables (printed as a table, or JSON with --json)."""


@bench_group.command("latency")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder.")
@click.option("--devices", required=True, help="Comma-separated held-out devices (latency columns).")
@click.option("--support", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--meta-train-devices", default=None, help="Devices meta-training may use [default: all columns].")
@click.option("--json", "as_json", is_flag=True)
def bench_latency_cmd(data, devices, support, seeds, meta_train_devices, as_json):
    """Few-shot latency prediction on held-out devices: Spearman over all architectures, with baselines."""
    from .bench import bench_latency
    from .benchmark import load_benchmark

    result = bench_latency(load_benchmark(data), _devices(devices), support=support, seeds=seeds,
                           meta_train_devices=_devices(meta_train_devices), log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"Spearman, K={support} support measurements, mean over {seeds} seeds")
    click.echo(f"{'device':<16} {'edgenas':>8} {'FLOPs':>8} {'ridge':>8} {'lin.comb':>9}")
    rows = list(result["devices"].items()) + [("mean", {"spearman": result["mean_spearman"],
                                                        "baselines": result["mean_baselines"]})]
    for name, e in rows:
        b = e["baselines"]
        click.echo(f"{name:<16} {e['spearman']:8.4f} {b['flops']:8.4f} {b['ridge_onehot']:8.4f} "
                   f"{b['linear_combination']:9.4f}")


@bench_group.command("nas")
@click.option("--data", required=True, type=click.Path(), help="Benchmark folder.")
@click.option("--device", "devices", required=True, help="Held-out device(s), comma-separated.")
@click.option("--budget-ms", "budgets", required=True,
              help="Latency budget(s), comma-separated: milliseconds, or pNN for the device's NN-th percentile.")
@click.option("--task", default="cifar100", show_default=True, help="Target task (accuracy column).")
@click.option("--source-task", default="cifar10", show_default=True, help="Prior-knowledge task ('' for none).")
@click.option("--latency-queries", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--accuracy-queries", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--seeds", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--meta-train-devices", default=None, help="Devices meta-training may use [default: all columns].")
@click.option("--json", "as_json", is_flag=True)
def bench_nas_cmd(data, devices, budgets, task, source_task, latency_queries, accuracy_queries, seeds,
                  meta_train_devices, as_json):
    """Latency-constrained search on held-out devices: accuracy of the pick over the exhaustive oracle's."""
    from .bench import bench_nas
    from .benchmark import load_benchmark

    result = bench_nas(load_benchmark(data), _devices(devices), _devices(budgets), task=task,
                       source_task=source_task or None, latency_queries=latency_queries,
                       accuracy_queries=accuracy_queries, seeds=seeds,
                       meta_train_devices=_devices(meta_train_devices), log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{task}, {latency_queries} latency + {accuracy_queries} accuracy queries, {seeds} seeds")
    click.echo(f"{'device':<15} {'budget ms':>9} {'pick ms':>8} {'acc':>6} {'oracle':>6} {'ratio':>7} {'over':>4}")
    for r in result["runs"]:
        click.echo(f"{r['device']:<15} {r['budget_ms']:9.3f} {r['latency_ms']:8.3f} {r['accuracy']:6.2f} "
                   f"{r['oracle_accuracy']:6.2f} {r['ratio']:7.4f} {'yes' if r['violation'] else '':>4}")
    click.echo(f"mean ratio {result['mean_ratio']:.4f}, violations {result['violations']} of {len(result['runs'])}")


@bench_group.command("runtime")
@click.option("--target", "profile", default="host", show_default=True, help="Profile whose target runs here.")
@click.option("--archs", "count", default=6, show_default=True, type=click.IntRange(min=1),
              help="Architectures at evenly spaced FLOPs quantiles of the space.")
@click.option("--arch", "archs", multiple=True, help="An architecture to time instead (repeatable).")
@click.option("--space", default="nb201", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_runtime_cmd(profile, count, archs, space, as_json):
    """The same networks through tuned TVM, onnxruntime and PyTorch eager, interleaved, same threads."""
    from .bench_runtime import bench_runtime, table

    result = bench_runtime(profile, list(archs) or None, count=count, space=space,
                           log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(table(result))


@bench_group.command("fleet")
@click.option("--servers", default="1,2", show_default=True, help="Fleet sizes to time, comma-separated.")
@click.option("--archs", "count", default=10, show_default=True, type=click.IntRange(min=1),
              help="Architectures sampled from the space, built once and timed by every fleet.")
@click.option("--space", default="nb201", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_fleet_cmd(servers, count, space, seed, as_json):
    """Measurement throughput with 1, 2, ... devices: a real tracker and RPC servers on 127.0.0.1."""
    from .bench_fleet import bench_fleet, table

    try:
        sizes = tuple(int(v) for v in servers.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise UserError(f"--servers '{servers}' is not a list of server counts; write e.g. --servers 1,2,4")
    result = bench_fleet(sizes, count=count, space=space, seed=seed, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, indent=2) if as_json else table(result))


@cli.command("predict")
@click.argument("artifact", type=click.Path())
@click.option("--input", "-i", "input_file", required=True, type=click.Path(), help="Input array (.npy).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the output array here (.npy) instead of printing it.")
def predict_cmd(artifact, input_file, output):
    """Run ARTIFACT (a directory `compile` wrote) on this machine's CPU on one input array."""
    import numpy as np

    from .runtime import load

    model = load(artifact)
    try:
        x = np.load(input_file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise EdgenasError(f"cannot read {input_file} as a .npy array ({e}); save the input with numpy.save") from None
    y = model.predict(x)
    if output:
        np.save(output, y)
    else:
        click.echo(json.dumps({model.outputs[0].name: y.tolist()}))


@cli.group("profiles")
def profiles_group():
    """Device profiles."""


@profiles_group.command("list")
def profiles_list():
    from .profile import PROFILES

    for name in PROFILES.names():
        p = PROFILES.get(name)
        click.echo(f"{name:<16} {p.kind:<11} {p.target:<13} {p.runtime:<7} {p.measure['via']:<6} {p.description}")


@profiles_group.command("show")
@click.argument("name")
def profiles_show(name):
    from dataclasses import asdict

    from .profile import PROFILES

    p = PROFILES.get(name)
    click.echo(json.dumps({**asdict(p), "resolved_target": _resolved(p)}, indent=2))


def _resolved(p):
    try:
        t = p.resolved_target()
        return {"tvm": t.tvm, "host": t.host, "linker": t.compiler or "native"}
    except EdgenasError as e:
        return f"unresolved here: {e}"


@cli.group("targets")
def targets_group():
    """Compilation targets."""


@targets_group.command("list")
def targets_list():
    from .target import TARGETS

    for name in TARGETS.names():
        t = TARGETS.get(name)
        click.echo(f"{name:<13} {t.machine:<8} {t.device:<5} {t.description}")


@cli.group("arch")
def arch_group():
    """Architectures of a search space."""


@arch_group.command("show")
@click.argument("arch")
@click.option("--space", default="nb201", show_default=True)
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1))
def arch_show(arch, space, batch):
    """Canonical form, encoding and static costs of ARCH."""
    from .spaces import get_space

    sp = get_space(space, batch=batch)
    canonical = sp.canonical(arch)
    info = {"space": sp.name, "arch": canonical, "input_shape": list(sp.input_shape),
            "encoding": [int(v) for v in sp.encode(canonical)], "costs": sp.costs(canonical).as_dict()}
    if hasattr(sp, "index"):
        info["index"] = sp.index(canonical)
    if hasattr(sp, "is_degenerate"):
        info["degenerate"] = sp.is_degenerate(canonical)
    click.echo(json.dumps(info, indent=2))


def main() -> None:
    cli(prog_name="edgenas")
