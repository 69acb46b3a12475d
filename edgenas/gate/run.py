"""The CI latency gate: is an artifact fast enough on its device, and no slower than a baseline?

`gate` owns the whole check: it verifies the artifact directory (manifest, SHA-256 of model.so, target against
the profile's), times model.so where the profile says (this machine, or an RPC device), re-measures once when
the repeats' spread stays wide, and decides at a percentile of the repeats with a tolerance for noise. With a
baseline artifact both are timed interleaved and the new one fails when it is more than `max_regression`
slower. Budgets and settings come from the caller, else the project's configuration (`[tool.edgenas.gate]` in
pyproject.toml or `[gate]` in edgenas.toml, the first found from the current directory up), else the profile.
It writes the verdict as JUnit XML and as a Markdown table (also appended to `$GITHUB_STEP_SUMMARY`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .. import host
from ..artifact.manifest import MANIFEST, RECOMPILE, Manifest, read
from ..device.profile import Profile, as_profile
from ..errors import EdgenasError
from ..measure.fleet import time_remote
from ..measure.machine import exclusive
from ..measure.place import measure, place, threads_for
from ..measure.timing import Measurement, Stats, Timing, time_interleaved
from ..measure.tracker import Remote
from ..runtimes import get_runtime
from ..store import Store
from .config import settings as gate_settings
from .reports import junit as junit_xml
from .reports import junit_error, markdown_error
from .reports import markdown as markdown_table
from .verdict import GateResult, budget_check, regression_check


def gate(artifact: str | Path, profile: str | Profile, budget_ms: float | None = None,
         percentile: float | None = None, tolerance: float | None = None, baseline: str | Path | None = None,
         max_regression: float | None = None, db: str | Path | None = None, junit: str | Path | None = None,
         markdown: str | Path | None = None, timing: Timing = Timing(),
         log: Callable[[str], None] = lambda _: None, batch: int | None = None) -> GateResult:
    """`edgenas gate`: check, time and judge `artifact` on `profile`; write the JUnit XML / Markdown reports
    asked for. Settings left None come from the configuration found from the current directory up, else the
    profile's budget and the defaults. `db`: also record the measurements there. `batch`: the images per
    inference the artifact must take (it is timed as compiled; the budget is for one inference). An error
    (EdgenasError) is written to the reports too, as one errored testcase, before it is raised."""
    begin = datetime.now(timezone.utc)
    for report in (junit, markdown):
        for directory in (artifact, baseline):
            if report is not None and directory is not None and Path(directory).resolve() in \
                    (Path(report).resolve(), *Path(report).resolve().parents):
                raise EdgenasError(f"the report {report} would be written into the artifact {directory} (and "
                                   f"change what its manifest lists); write it outside the artifact")
    try:
        result = _gate(artifact, profile, budget_ms, percentile, tolerance, baseline, max_regression, db, timing,
                       begin, log, batch)
    except EdgenasError as e:
        _write_reports(junit_error(str(e), str(artifact), str(getattr(profile, "name", profile)), begin),
                       markdown_error(str(e), str(artifact)), junit, markdown)
        raise
    _write_reports(junit_xml(result, begin), markdown_table(result), junit, markdown)
    return result


def _write_reports(xml: str, text: str, junit: str | Path | None, markdown: str | Path | None) -> None:
    """The JUnit XML and the Markdown asked for, each written whole (beside, then renamed), and the Markdown
    appended to GitHub's step summary when there is one."""
    for path, content in ((junit, xml), (markdown, text)):
        if path:
            partial = Path(f"{path}.partial")
            try:
                partial.write_text(content)
                os.replace(partial, path)
            except OSError as e:
                raise EdgenasError(f"cannot write the report {path} ({e.strerror}); pass a writable path") from None
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(text)


def _gate(artifact: str | Path, profile: str | Profile, budget_ms: float | None, percentile: float | None,
          tolerance: float | None, baseline: str | Path | None, max_regression: float | None, db: str | Path | None,
          timing: Timing, begin: datetime, log: Callable[[str], None], batch: int | None) -> GateResult:
    profile = as_profile(profile)
    settings, source = gate_settings(profile, Path.cwd(), {"latency_ms": budget_ms, "percentile": percentile,
                                                           "tolerance": tolerance, "max_regression": max_regression})
    target = profile.resolved_target()
    new = _checked(Path(artifact), profile)
    old = _checked(Path(baseline), profile) if baseline is not None else None
    remote = place(profile, target)
    threads = threads_for(profile, target, remote)
    spec = new.manifest.inputs[0]
    if batch is not None and spec.shape[0] != batch:
        raise EdgenasError(f"{new.manifest.directory} takes batch {spec.shape[0]}, not {batch}; compile it with "
                           f"edgenas compile --batch {batch}")
    x = np.random.default_rng(0).standard_normal(spec.shape).astype(spec.dtype)
    notes: list[str] = []
    where = f"rpc {remote.tracker} key {remote.key}" if remote else "this machine"
    log(f"budget {settings['latency_ms']:g} ms from {source}; timing {new.manifest.directory} on {where}"
        + (f", interleaved with the baseline {old.manifest.directory}" if old else ""))
    if old is None:
        m = _stable(lambda: _timed(new, x, threads, remote, timing), notes, "the")
        stats, base_stats = m.stats, None
        if db is not None:  # the measurement the verdict rests on, once
            with Store(db) as store:
                built = new.manifest
                store.add(profile.name, built.space, built.arch, spec.shape, built.target["tvm"], m)
    else:
        both = _stable(lambda: _interleaved(new, old, x, threads, remote, timing), notes, "the interleaved")
        stats, base_stats = both["new"], both["baseline"]
        log(f"measured: artifact p50 {stats.p50_ms:.4f} ms, baseline p50 {base_stats.p50_ms:.4f} ms")
    q = settings["percentile"]
    checks = [budget_check(stats, q, settings["latency_ms"], settings["tolerance"], source)]
    if base_stats is not None:
        checks.append(regression_check(stats, base_stats, q, settings["max_regression"], old.manifest.directory))
    return GateResult(profile.name, new.manifest.directory, q, checks, stats, notes,
                      (datetime.now(timezone.utc) - begin).total_seconds(), source)


@dataclass(frozen=True)
class _Checked:
    """An artifact whose library was checked once against its manifest (its SHA-256 is not recomputed per timing)."""

    manifest: Manifest
    library: Path


def _checked(directory: Path, profile: Profile) -> _Checked:
    """The artifact's manifest and library, after checking that the library is the one the manifest names, built
    for the profile's target."""
    manifest = read(directory)
    library = manifest.library()
    target = profile.resolved_target()
    built_name, built_tvm = manifest.target["name"], manifest.target["tvm"]
    if built_name != target.name or built_tvm != target.tvm:
        differ = sorted(k for k in set(target.tvm) | set(built_tvm) if target.tvm.get(k) != built_tvm.get(k))
        raise EdgenasError(f"{directory} was built for target '{built_name}' but profile "
                           f"'{profile.name}' resolves to '{target.name}' (differing: {', '.join(differ) or 'name'}); "
                           f"recompile with edgenas compile --target {profile.name}")
    return _Checked(manifest, library)


def _timed(artifact: _Checked, x: np.ndarray, threads: int | None, remote: Remote | None,
           timing: Timing) -> Measurement:
    with _runs(artifact, x):
        m = measure("tvm", artifact.library, x, threads=threads, timing=timing, remote=remote)
    _check_output(artifact, m.outputs)
    return m


@contextmanager
def _runs(artifact: _Checked, x: np.ndarray):
    """TVM's own errors while running a library (e.g. an input shape edited in the manifest) as one line."""
    try:
        yield
    except EdgenasError:
        raise
    except Exception as e:  # noqa: BLE001  (TVM raises its own error types)
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise EdgenasError(f"{artifact.library} failed on the input the manifest describes ({list(x.shape)} "
                           f"{x.dtype}): {first.strip()}; if {MANIFEST} was edited, {RECOMPILE}") from None


def _interleaved(new: _Checked, old: _Checked, x: np.ndarray, threads: int | None,
                 remote: Remote | None, timing: Timing) -> dict[str, Stats]:
    """Both libraries on the same device, their repeats taken in turn with the same threads and input."""
    old_shape, new_shape = old.manifest.inputs[0].shape, new.manifest.inputs[0].shape
    if old_shape != new_shape:
        raise EdgenasError(f"the baseline takes input {list(old_shape)} but the artifact {list(new_shape)}; compare "
                           f"artifacts of the same input shape")
    threads = threads or host.cores()
    if remote:  # both uploaded to one device and timed interleaved there
        new_m, old_m = time_remote(remote, [new.library, old.library], x, threads, timing)
        _check_output(new, new_m.outputs)
        _check_output(old, old_m.outputs)
        return {"new": new_m.stats, "baseline": old_m.stats}
    tvm = get_runtime("tvm")
    sessions = {}
    for name, art in (("new", new), ("baseline", old)):
        with _runs(art, x):
            sessions[name] = tvm.open(art.library, x, threads)
        _check_output(art, sessions[name].outputs)
    with exclusive():
        return time_interleaved({n: s.run for n, s in sessions.items()}, timing)


def _check_output(artifact: _Checked, outputs: tuple[np.ndarray, ...]) -> None:
    """The library's outputs are the manifest's, in number and shapes, and finite."""
    got = [list(o.shape) for o in outputs]
    expected = [list(o.shape) for o in artifact.manifest.outputs]
    if got != expected:
        raise EdgenasError(f"{artifact.library} returned outputs shaped {got}, the manifest says {expected}; "
                           f"recompile the artifact")
    if not all(np.all(np.isfinite(o)) for o in outputs):
        raise EdgenasError(f"{artifact.library} returned NaN or infinite values; recompile the artifact")


def _stable(take, notes: list[str], what: str):
    """Take a measurement; when its spread stayed wide, take it once more and keep the second, with a note."""
    first = take()
    if all(s.stable for s in _each(first)):
        return first
    second = take()
    wide = max(s.spread for s in _each(first))
    if all(s.stable for s in _each(second)):
        notes.append(f"{what} measurement was unstable (spread {100 * wide:.1f}%); re-measured, stable")
    else:
        notes.append(f"{what} measurement was unstable twice (spread {100 * wide:.1f}%, then "
                     f"{100 * max(s.spread for s in _each(second)):.1f}%); decided on the second, treat it with care")
    return second


def _each(taken: Measurement | dict[str, Stats]) -> list[Stats]:
    return [taken.stats] if isinstance(taken, Measurement) else list(taken.values())
