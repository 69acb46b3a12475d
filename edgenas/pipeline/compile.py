"""`edgenas compile --arch`: one architecture (trained on the user's data, if given) built, timed where the
profile says, and written as a deployable artifact: model.onnx, model.so (model.tflite), model.h,
manifest.json, report.json and report.html. `edgenas compile --model`: the user's own ONNX file, the same way.

An artifact is written whole or not at all: into a staging folder beside the output directory, renamed into
place at the end (`staged`); an existing artifact is replaced only when asked (`force`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import __version__, interrupt
from ..artifact.header import c_header
from ..artifact.manifest import HEADER, LIBRARY, MANIFEST, ONNX, TFLITE
from ..artifact.manifest import write as write_manifest
from ..artifact.report import write_report
from ..compiler.export import OPSET
from ..compiler.tuning_db import check_given
from ..data.datasets import Dataset, load_dataset
from ..data.train import TrainResult, train
from ..device.budget import Budget, budget_for
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.place import place
from ..spaces import DEFAULT_SPACE, SearchSpace, configure
from ..store import Store
from .build import Built, build, build_model, import_user_model, kernel_profile, litert_here, time_built


@dataclass(frozen=True)
class Artifact:
    directory: Path
    manifest: dict[str, Any]
    report: dict[str, Any]


def compile_artifact(profile: str | Profile, arch: str, out_dir: str | Path, space: str | SearchSpace = DEFAULT_SPACE,
                     db: str | Path | None = None, measure_latency: bool = True, seed: int = 0,
                     tuning_db: str | Path | None = None, data: str | Path | None = None, epochs: int = 30,
                     log: Callable[[str], None] = lambda _: None, force: bool = False,
                     latency_ms: float | None = None, memory_mb: float | None = None) -> Artifact:
    """`edgenas compile --arch`: write model.onnx, model.so, manifest.json and report.json for `arch`; with
    `data`, the network is trained on it first and the trained weights are compiled. The report judges it
    against `latency_ms` and `memory_mb`, else the profile's budgets. An artifact already in `out_dir` is
    replaced only with `force`."""
    profile = as_profile(profile)
    target = _checked_first(profile, out_dir, force, tuning_db, db,
                            measure_latency and (profile.measurable or profile.ships_tflite), measure_latency)
    with staged(target) as staging:
        art = _compile_into(profile, arch, staging, space, db, measure_latency, seed, tuning_db, data, epochs, log,
                            budget_for(profile, latency_ms, memory_mb))
    return Artifact(target, art.manifest, art.report)


def _checked_first(profile: Profile, out_dir: str | Path, force: bool, tuning_db: str | Path | None,
                   db: str | Path | None, stores: bool, measures: bool) -> Path:
    """Before any work: the device is reachable where it is measured, the output directory and the tuning
    database are usable, and the store is writable where measurements will go to it; returns the artifact's
    directory."""
    if measures and profile.measurable:
        place(profile, profile.resolved_target())
    target = check_output(out_dir, force)
    check_given(tuning_db)
    if stores:
        with Store(db) as store:
            store.require_writable()
    return target


def _compile_into(profile: Profile, arch: str, out_dir: Path, space: str | SearchSpace, db: str | Path | None,
                  measure_latency: bool, seed: int, tuning_db: str | Path | None, data: str | Path | None,
                  epochs: int, log: Callable[[str], None], budget: Budget) -> Artifact:
    extra: dict[str, Any] = {}
    sp = configure(space, profile.batch)
    if sp.is_degenerate(sp.canonical(arch)):
        warning = (f"{sp.canonical(arch)} is degenerate: no path leads from the network's input to its output, so "
                   f"its output is the same for every input; compile it only to test a toolchain")
        log(f"warning: {warning}")
        extra["warnings"] = [warning]
    model = None
    if data is not None:
        dataset = load_dataset(data)
        space = configure(space, profile.batch, dataset)
        trained = train(lambda: space.build(space.canonical(arch), seed=seed), dataset, epochs=epochs, seed=seed,
                        log=log)
        model, extra["training"] = trained.model, training_report(dataset, trained, epochs, seed)
    b = build(profile, arch, out_dir, space=space, seed=seed, tuning_db=tuning_db, model=model, log=log)
    latency, measured = _measured(b, db, measure_latency, log)
    return write_artifact(b, out_dir, latency, {**extra, **measured}, budget)


def _measured(b: Built, db: str | Path | None, measure_latency: bool,
              log: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Time `b` where its profile says (into the store `db`), its .tflite here for phones, and profile its
    kernels; the report's latency entry and its `litert`, `kernels` or `not_measured_because` entries."""
    profile = b.profile
    latency: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if measure_latency and (profile.measurable or b.tflite):
        with Store(db) as store:
            latency = time_built(b, store, log=log) if profile.measurable else {}
            if profile.ships_tflite:
                extra["litert"] = litert_here(b, store)
        if latency:
            extra["kernels"] = kernel_profile(b)
    elif profile.ships_tflite:
        extra["litert"] = litert_here(b, None, measure_here=False)
    if not latency:
        extra["not_measured_because"] = "--no-measure" if not measure_latency else \
            f"profile '{profile.name}' has measure.via: none (predict-only)"
    return latency, extra


def compile_model(profile: str | Profile, source: str | Path, out_dir: str | Path,
                  input_shape: tuple[int, ...] | None = None, db: str | Path | None = None,
                  measure_latency: bool = True, tuning_db: str | Path | None = None,
                  log: Callable[[str], None] = lambda _: None, force: bool = False, latency_ms: float | None = None,
                  memory_mb: float | None = None) -> Artifact:
    """`edgenas compile --model`: the user's ONNX file checked and simplified (`input_shape` fixes its dynamic
    dimensions), or a PyTorch factory `package.module:function` exported for an input of `input_shape`;
    compiled for the profile's target, timed where the profile says (TVM, and onnxruntime beside it on the same
    file), every output checked against the reference (onnxruntime on the file as given; PyTorch), and written
    as the artifact of a generated network is, judged against `latency_ms` and `memory_mb` (else the profile's
    budgets). Its measurements are stored under space `model` and the model's hash."""
    profile = as_profile(profile)
    target = _checked_first(profile, out_dir, force, tuning_db, db,
                            measure_latency and (profile.measurable or profile.ships_tflite), measure_latency)
    with staged(target) as staging:
        b = build_model(profile, import_user_model(source, staging, input_shape, log), staging, tuning_db, log=log)
        model = b.space
        latency, extra = _measured(b, db, measure_latency, log)
        extra["model"] = {"source": model.source, "sha256": model.sha256, "opset": model.opset,
                          "input": model.input_name, "outputs": list(model.output_names)}
        extra["export"] = {"opset": model.opset, "reference": b.onnx.reference,
                           f"max_abs_error_onnxruntime_vs_{b.onnx.reference}": b.onnx.max_abs_error}
        if profile.ships_tflite and b.onnx.reference == "onnxruntime":  # an ONNX file: nothing to convert
            extra["litert"] = {"missing": "no model.tflite: LiteRT's converter takes PyTorch networks, not ONNX "
                                          "files; give --model package.module:factory to get one"}
        art = write_artifact(b, staging, latency, extra, budget_for(profile, latency_ms, memory_mb))
    return Artifact(target, art.manifest, art.report)


def training_report(data: Dataset, trained: TrainResult, epochs: int, seed: int) -> dict[str, Any]:
    return {"data": data.source, "classes": list(data.classes), "image_shape": list(data.image_shape),
            "preprocessing": data.preprocessing, "max_epochs": epochs, "seed": seed, **trained.as_dict()}


def write_artifact(b: Built, out_dir: Path, latency: dict[str, Any], extra: dict[str, Any], budget: Budget) -> Artifact:
    """Write model.h, manifest.json, report.json and report.html (with report.png) beside model.onnx, model.so
    (and model.tflite) in `out_dir`; the latency budget is checked on the runtime the profile deploys."""
    profile = b.profile
    costs = b.space.costs(b.arch)
    manifest = {
        "edgenas_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "space": b.space.name,
        "arch": b.arch,
        "profile": profile.name,
        "runtime": profile.runtime,
        "target": {"name": b.target.name, "machine": b.target.machine, "device": b.target.device,
                   "tvm": b.target.tvm, "host": b.target.host},
        "inputs": [{"name": b.onnx.input_name, "shape": list(b.onnx.input_shape), "dtype": "float32",
                    **({"preprocessing": extra["training"]["preprocessing"]} if "training" in extra else {})}],
        "outputs": [{"name": name, "shape": list(shape), "dtype": "float32",
                     **({"classes": extra["training"]["classes"]} if "training" in extra else {})}
                    for name, shape in zip(b.onnx.output_names, b.onnx.output_shapes)],
        "versions": _versions(),
    }
    (out_dir / HEADER).write_text(c_header(manifest))
    manifest = write_manifest(out_dir, manifest, [ONNX, LIBRARY, HEADER, *((TFLITE,) if b.tflite else ())])
    report = {
        "arch": b.arch,
        "profile": profile.name,
        "runtime": profile.runtime,
        "target": b.target.name,
        "costs": costs.as_dict(),
        "budgets": budget.as_dict(),
        "fits_memory_budget": budget.fits_memory(costs.memory_mb),
        "export": {"opset": OPSET, "max_abs_error_onnxruntime_vs_pytorch": b.onnx.max_abs_error},
        "compile": {"seconds": round(b.library.seconds, 3), "kernels": len(b.library.kernels),
                    "tuned": list(b.library.tuned), "fallback": list(b.library.fallback),
                    "tuning_db": str(b.library.tuning_db) if b.library.tuning_db else None,
                    "schedule_from": dict(b.library.schedule_from)},
        "measured": bool(latency),
        "latency_ms": latency,
        **extra,
    }
    if latency:
        tvm_p50 = latency["tvm"]["p50_ms"]
        if "onnxruntime" in latency:
            report["tvm_vs_onnxruntime"] = round(tvm_p50 / latency["onnxruntime"]["p50_ms"], 4)
        if budget.latency_ms is not None and profile.runtime in latency:
            report["fits_latency_budget"] = budget.fits_latency(latency[profile.runtime]["p50_ms"])
    write_report(report, out_dir)
    return Artifact(out_dir, manifest, report)


def check_output(out_dir: str | Path, force: bool = False) -> Path:
    """The artifact directory, absolute, after checking before any work is done that it can be written: new,
    empty, or (with `force`) an artifact to replace; never a file or a folder of other things. Its parent is
    created and proved writable."""
    if not str(out_dir).strip():
        raise EdgenasError("-o '' names no directory; pass the folder the artifact goes to, e.g. -o out/host")
    target = Path(out_dir).absolute()
    if target.exists() and not target.is_dir():
        raise EdgenasError(f"output path {out_dir} is a file, not a directory; pass a directory with -o")
    if target.is_dir() and any(target.iterdir()):
        if not (target / MANIFEST).is_file():
            raise EdgenasError(f"output directory {out_dir} holds files but no artifact; pass a new or empty "
                               f"directory with -o (edgenas replaces only an artifact it wrote)")
        if not force:
            raise EdgenasError(f"output directory {out_dir} already holds an artifact; pass --force to replace it, "
                               f"or another directory with -o")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as e:
        raise EdgenasError(f"cannot write beside output directory {out_dir} ({e.strerror}); pass a writable "
                           f"directory with -o") from None
    return target


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A staging folder beside `target`; when the block completes, it replaces `target` in one rename (an old
    artifact there is moved aside first, then removed). On any error or interrupt the staging folder is removed
    and `target` is as it was."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    handle = interrupt.on_interrupt(staging)
    try:
        yield staging
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / target.name)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        interrupt.done(handle)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import tvm

    return {"edgenas": __version__, "tvm": tvm.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}
