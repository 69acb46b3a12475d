"""`edgenas compile --latency-ms`: the architecture with the best expected accuracy that fits the budgets,
generated for the device from the store's measurements of it, each candidate built, measured on the device
and stored (store -> search -> build -> measure -> store), then written as an artifact like `--arch`'s.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import mobile
from ..artifact.manifest import LIBRARY, ONNX, TFLITE
from ..compiler.tuning_db import check_given
from ..data.datasets import Dataset, load_dataset
from ..data.train import train
from ..device.budget import budget_for
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.place import place, ways_to_measure
from ..nas.checkpoint import shipped
from ..nas.conditioning import descriptor_vector
from ..nas.search import search
from ..spaces import DEFAULT_SPACE, SearchSpace, configure
from ..store import Store
from .build import Built, build, litert_here, time_built
from .compile import Artifact, check_output, staged, training_report, write_artifact

OPEN_SAMPLE = 2000  # architectures a search over a space too large to list starts from


def compile_for_budget(profile: str | Profile, latency_ms: float | None, out_dir: str | Path,
                       space: str | SearchSpace = DEFAULT_SPACE,
                       db: str | Path | None = None, memory_mb: float | None = None, measurements: int = 6,
                       seed: int = 0, log: Callable[[str], None] = lambda _: None,
                       tuning_db: str | Path | None = None, data: str | Path | None = None, epochs: int = 30,
                       accuracy_shots: int = 0, shot_epochs: int = 3, force: bool = False) -> Artifact:
    """`edgenas compile --latency-ms`: generate the architecture with the best expected accuracy that fits the
    budgets (`latency_ms` and `memory_mb`, else the profile's), conditioned on the store's measurements of this
    profile; measure each candidate on the device, record it, and re-condition after a miss, within
    `measurements` new measurements. With `data`, the pick
    is trained on it before it is compiled, and `accuracy_shots` sampled architectures, each trained for
    `shot_epochs`, first give the task conditioning (architecture, accuracy) pairs of the user's task. An artifact
    already in `out_dir` is replaced only with `force`."""
    profile = as_profile(profile)
    budget = budget_for(profile, latency_ms, memory_mb)
    if budget.latency_ms is None:
        raise EdgenasError("give --arch, or a latency budget with --latency-ms (the profile has none)")
    latency_ms, memory_mb = budget.latency_ms, budget.memory_mb
    target = profile.resolved_target()
    if accuracy_shots and data is None:
        raise EdgenasError("--accuracy-shots trains sampled architectures on your data; give it with --data")
    if profile.measurable:
        place(profile, target)
        if profile.runtime == "litert" and not mobile.available():
            raise EdgenasError(f"profile '{profile.name}' deploys LiteRT, so its candidates are timed with it: "
                               f"{mobile.MISSING}")
    target = check_output(out_dir, force)
    check_given(tuning_db)
    dataset = load_dataset(data) if data is not None else None
    sp = configure(space, profile.batch, dataset)
    trained = shipped(sp)
    with Store(db) as store:
        if profile.measurable:
            store.require_writable()
        latest = {sp.canonical(a): ms for a, ms in
                  store.latest(profile.name, sp.name, sp.input_shape, runtime=profile.runtime).items()}
    # every architecture where the space can be listed; else the stored ones and a sample, and then whatever the
    # generator proposes (`admit`)
    archs = list(sp.enumerate()) if sp.enumerable else list(dict.fromkeys([*latest, *sp.sample(OPEN_SAMPLE, seed)]))

    def acceptable(arch: str) -> bool:  # a network that ignores its input is no answer; memory is a hard limit
        return not sp.is_degenerate(arch) and (not memory_mb or budget.fits_memory(sp.costs(arch).memory_mb))

    x = np.stack([sp.encode(a) for a in archs])
    allowed = np.array([acceptable(a) for a in archs])
    prior_accuracy = trained.accuracy.predict(x)

    def admit(encoding: np.ndarray) -> tuple[float, bool]:
        archs.append(sp.decode(encoding))
        return float(trained.accuracy.predict(encoding[None])[0]), acceptable(archs[-1])

    shots = accuracy_shot_pairs(sp, archs, allowed, dataset, accuracy_shots, shot_epochs, seed, log) \
        if accuracy_shots else {}
    row = {a: i for i, a in enumerate(archs)}
    with Store(db) as store, tempfile.TemporaryDirectory(prefix="edgenas-") as tmp, staged(target) as out_dir:
        support = ([row[a] for a in latest], list(latest.values()))
        log(f"{len(latest)} stored {profile.runtime} measurements of '{profile.name}' condition the predictor")
        if not profile.measurable and not latest:
            log(f"'{profile.name}' is predict-only and the store has none of its measurements: a zero-shot pick "
                f"from its descriptors ({ways_to_measure(profile)})")
        built: dict[int, tuple[Built, dict[str, Any]]] = {}

        def measure_candidate(i: int) -> float:
            work = Path(tmp) / str(i)
            work.mkdir()
            b = build(profile, archs[i], work, space=sp, seed=seed, tuning_db=tuning_db, log=log)
            built[i] = (b, time_built(b, store, log=log))
            ms = built[i][1][profile.runtime]["p50_ms"]
            verdict = "fits" if budget.fits_latency(ms) else "misses"
            log(f"measured {archs[i]}: {ms:.3f} ms ({verdict} {latency_ms:g} ms)")
            return ms

        result = search(x, trained, descriptor_vector(profile), latency_ms, measure_candidate,
                        measurements if profile.measurable else 0, prior_accuracy, allowed=allowed,
                        memory_mb=memory_mb, support=support, seed=seed,
                        accuracy_support=([row[a] for a in shots], list(shots.values())),
                        admit=None if sp.enumerable else admit)
        report = {"latency_budget_ms": latency_ms, "memory_budget_mb": memory_mb,
                  "stored_measurements_used": len(latest), "new_measurements": len(result.candidates),
                  "accuracy_shots_used": len(shots),
                  "verified": result.verified, "accuracy_prior": trained.accuracy_task,
                  "candidates": [{"arch": archs[c.index],
                                  "predicted_ms": None if c.predicted_ms is None else round(c.predicted_ms, 4),
                                  "measured_ms": round(c.measured_ms, 4), "fits": budget.fits_latency(c.measured_ms),
                                  "predicted_accuracy": c.predicted_accuracy} for c in result.candidates]}
        if profile.measurable and not result.verified:
            closest = min((c.measured_ms for c in result.candidates), default=float("nan"))
            raise EdgenasError(f"no candidate measured within {latency_ms:g} ms after {len(result.candidates)} "
                               f"measurements (fastest {closest:.3f} ms); raise --latency-ms or --measurements")
        pick = archs[result.pick]
        extra: dict[str, Any] = {"search": report}
        model = None
        if dataset is not None:
            log(f"training the pick {pick}")
            done = train(lambda: sp.build(pick, seed=seed), dataset, epochs=epochs, seed=seed, log=log)
            model, extra["training"] = done.model, training_report(dataset, done, epochs, seed)
            if shots:
                extra["accuracy_shots"] = compare_with_shots(sp, pick, shots, dataset, shot_epochs, seed, log)
        if result.stored_ms is not None:
            report["stored_ms"] = round(result.stored_ms, 4)
            log(f"the pick {pick} was measured before: {result.stored_ms:.3f} ms in the store")
        if not profile.measurable:  # a stored measurement fits, or the calibrated 90 % upper bound does
            b = build(profile, pick, out_dir, space=sp, seed=seed, tuning_db=tuning_db, model=model, log=log)
            if not result.verified:
                report["predicted_ms"] = round(result.predicted_ms, 4)
                report["predicted_interval_ms"] = [round(v, 4) for v in result.interval_ms]
                report["interval"] = "calibrated 90 %"
                log(f"unverified pick {pick}: predicted {result.predicted_ms:.3f} ms, 90 % interval "
                    f"{result.interval_ms[0]:.3f}-{result.interval_ms[1]:.3f} ms (budget {latency_ms:g} ms)")
            if profile.ships_tflite:  # timed here; recorded unless the store is read-only
                extra["litert"] = litert_here(b, store if store.writable else None)
            art = write_artifact(b, out_dir, {}, {**extra, "not_measured_because":
                                                  f"profile '{profile.name}' has measure.via: none (predict-only)"},
                                 budget)
            return Artifact(target, art.manifest, art.report)
        if model is not None or result.pick not in built:  # trained weights, or a stored pick: built, measured
            b = build(profile, pick, out_dir, space=sp, seed=seed, tuning_db=tuning_db, model=model, log=log)
            latency = time_built(b, store, log=log)
        else:
            b, latency = built[result.pick]
            for name in (ONNX, LIBRARY, *((TFLITE,) if b.tflite else ())):
                shutil.copyfile(b.directory / name, out_dir / name)
        if profile.ships_tflite:
            extra["litert"] = litert_here(b, store)
        art = write_artifact(b, out_dir, latency, extra, budget)
    return Artifact(target, art.manifest, art.report)


def accuracy_shot_pairs(sp: SearchSpace, archs: list[str], allowed: np.ndarray, data: Dataset, shots: int,
                        epochs: int, seed: int, log: Callable[[str], None]) -> dict[str, float]:
    """`shots` architectures sampled from the `allowed` ones (within the memory budget, not degenerate), each
    trained briefly (`epochs`) on `data`: their validation accuracies are the task's support set."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(allowed)
    pairs = {}
    for k, i in enumerate(rng.choice(pool, size=min(shots, len(pool)), replace=False), start=1):
        arch = archs[int(i)]
        done = train(lambda: sp.build(arch, seed=seed), data, epochs=epochs, seed=seed, patience=epochs)
        pairs[arch] = done.val_accuracy
        log(f"accuracy shot {k}/{shots}: {arch} {done.val_accuracy:.2f}% after {done.epochs_run} epochs")
    return pairs


def compare_with_shots(sp: SearchSpace, pick: str, shots: dict[str, float], data: Dataset, epochs: int, seed: int,
                       log: Callable[[str], None]) -> dict[str, Any]:
    """The pick's accuracy after the shots' short training, beside the sampled architectures' accuracies."""
    same = shots.get(pick)
    if same is None:
        same = train(lambda: sp.build(pick, seed=seed), data, epochs=epochs, seed=seed, patience=epochs).val_accuracy
    beaten = sum(a < same for a in shots.values())
    log(f"the pick reaches {same:.2f}% after {epochs} epochs; the {len(shots)} sampled architectures "
        f"{min(shots.values()):.2f}-{max(shots.values()):.2f}% (it beats {beaten})")
    return {"epochs": epochs, "sampled": [{"arch": a, "val_accuracy": round(v, 3)} for a, v in shots.items()],
            "pick_val_accuracy": round(same, 3), "pick_beats": beaten,
            "best_sampled_val_accuracy": round(max(shots.values()), 3)}
