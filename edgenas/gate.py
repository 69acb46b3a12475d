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

import json
import os
import platform
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import host
from .errors import EdgenasError
from .fleet import time_remote
from .measure import RUNTIMES, Measurement, Remote, Stats, Timing, measure, time_interleaved
from .pipeline import measurement_place, measurement_threads
from .profile import PROFILES, Profile
from .runtime import LIBRARY, checked_library
from .store import Store

DEFAULTS = {"percentile": 90.0, "tolerance": 0.05, "max_regression": 0.10}
# key -> (lowest allowed, whether the lowest itself is allowed, highest allowed)
SETTINGS = {"latency_ms": (0.0, False, None), "percentile": (0.0, False, 100.0), "tolerance": (0.0, True, None),
            "max_regression": (-1.0, False, None)}


@dataclass(frozen=True)
class Check:
    """One decided check (a JUnit testcase, a row of the Markdown table)."""

    name: str
    passed: bool
    message: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class GateResult:
    profile: str
    artifact: Path
    percentile: float
    checks: list[Check]
    stats: Stats
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settings_from: str = ""  # where the budget came from

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def gate(artifact: str | Path, profile: str | Profile, budget_ms: float | None = None,
         percentile: float | None = None, tolerance: float | None = None, baseline: str | Path | None = None,
         max_regression: float | None = None, db: str | Path | None = None, junit: str | Path | None = None,
         markdown: str | Path | None = None, timing: Timing = Timing()) -> GateResult:
    """`edgenas gate`: check, time and judge `artifact` on `profile`; write the JUnit XML / Markdown reports
    asked for. Settings left None come from the configuration found from the current directory up, else the
    profile's budget and the defaults. `db`: also record the measurements there."""
    profile = PROFILES.get(profile) if isinstance(profile, str) else profile
    settings, source = _settings(profile, Path.cwd(), {"latency_ms": budget_ms, "percentile": percentile,
                                                       "tolerance": tolerance, "max_regression": max_regression})
    target = profile.resolved_target()
    new = _checked(Path(artifact), profile)
    old = _checked(Path(baseline), profile) if baseline is not None else None
    remote = measurement_place(profile, target)
    threads = measurement_threads(profile, target, remote)
    x = np.random.default_rng(0).standard_normal(new["shape"]).astype(new["dtype"])
    begin = datetime.now(timezone.utc)
    notes: list[str] = []
    if old is None:
        m = _stable(lambda: _timed(new, x, threads, remote, timing), notes, "the")
        stats, base_stats = m.stats, None
        if db is not None:  # the measurement the verdict rests on, once
            with Store(db) as store:
                store.add(profile.name, new.get("space", "unknown"), new.get("arch", "unknown"), tuple(new["shape"]),
                          new["target"]["tvm"], m)
    else:
        both = _stable(lambda: _interleaved(new, old, x, threads, remote, timing), notes, "the interleaved")
        stats, base_stats = both["new"], both["baseline"]
    q = settings["percentile"]
    checks = [_budget_check(stats, q, settings["latency_ms"], settings["tolerance"], source)]
    if base_stats is not None:
        checks.append(_regression_check(stats, base_stats, q, settings["max_regression"], old["directory"]))
    result = GateResult(profile.name, new["directory"], q, checks, stats, notes,
                        (datetime.now(timezone.utc) - begin).total_seconds(), source)
    if junit:
        Path(junit).write_text(_junit(result, begin))
    text = _markdown(result)
    if markdown:
        Path(markdown).write_text(text)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(text)
    return result


def _settings(profile: Profile, start: Path, given: dict[str, float | None]) -> tuple[dict[str, float], str]:
    """Each setting from `given`, else the configuration's profile section, else its gate section, else the
    profile's budget (latency) or the default; also say where the latency budget came from."""
    config, where, prefix = _config(start)
    section = {k: v for k, v in config.items() if k != "profiles"}
    override = config.get("profiles", {}).get(profile.name, {})
    settings: dict[str, float] = {}
    source = ""
    for key in SETTINGS:
        for value, origin in ((given.get(key), "--budget-ms"),
                              (override.get(key), f"{where} [{prefix}.profiles.{profile.name}]"),
                              (section.get(key), f"{where} [{prefix}]"),
                              (profile.budgets.get(key) if key == "latency_ms" else DEFAULTS.get(key),
                               f"profile '{profile.name}' budgets")):
            if value is not None:
                settings[key] = float(value)
                source = origin if key == "latency_ms" else source
                break
    if "latency_ms" not in settings:
        raise EdgenasError(f"no latency budget for profile '{profile.name}'; pass --budget-ms, set latency_ms in "
                           f"[tool.edgenas.gate] of pyproject.toml, or give the profile budgets.latency_ms")
    return settings, source


def _config(start: Path) -> tuple[dict[str, Any], str, str]:
    """The gate section of the first edgenas.toml, or pyproject.toml with [tool.edgenas], from `start` up;
    checked, with the file and the section's name. ({}, "", "") when there is none."""
    for d in [start.resolve(), *start.resolve().parents]:
        for name, keys in (("edgenas.toml", ("gate",)), ("pyproject.toml", ("tool", "edgenas", "gate"))):
            path = d / name
            if not path.is_file():
                continue
            try:
                data = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise EdgenasError(f"{path} is not valid TOML ({e}); fix the file") from None
            if name == "pyproject.toml" and not (isinstance(data.get("tool"), dict) and "edgenas" in data["tool"]):
                continue
            section: Any = data
            for k in keys:
                section = section.get(k, {}) if isinstance(section, dict) else section
            prefix = ".".join(keys)
            _check_section(section, path, prefix)
            return section, str(path), prefix
    return {}, "", ""


def _check_section(section: Any, path: Path, prefix: str) -> None:
    """Refuse unknown keys and values out of range in a gate section and its per-profile sections."""
    if not isinstance(section, dict):
        raise EdgenasError(f"{path}: {prefix} must be a table ([{prefix}]); fix it")
    for key, value in section.items():
        if key != "profiles":
            _check_values({key: value}, path, prefix)
            continue
        if not isinstance(value, dict):
            raise EdgenasError(f"{path}: {prefix}.profiles must be a table of profile sections; fix it")
        for name, sub in value.items():
            _check_values(sub, path, f"{prefix}.profiles.{name}")


def _check_values(section: Any, path: Path, prefix: str) -> None:
    if not isinstance(section, dict):
        raise EdgenasError(f"{path}: {prefix} must be a table ([{prefix}]); fix it")
    for key, value in section.items():
        if key not in SETTINGS:
            raise EdgenasError(f"{path}: {prefix}.{key} is not a gate setting; use one of {', '.join(SETTINGS)}")
        low, low_ok, high = SETTINGS[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            value > low or (low_ok and value == low)) and (high is None or value <= high)
        if not ok:
            bounds = f"{'>=' if low_ok else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
            raise EdgenasError(f"{path}: {prefix}.{key} = {value!r} must be a number {bounds}; fix it")


def _checked(directory: Path, profile: Profile) -> dict[str, Any]:
    """The artifact's manifest, after checking that its library is the one it names, built for the profile's
    target; with the directory and the library's path added."""
    if not directory.is_dir():
        raise EdgenasError(f"artifact directory {directory} does not exist; pass the -o directory of edgenas compile")
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        digest, inputs = manifest["files"][LIBRARY], manifest["inputs"]
        built_name, built_tvm = manifest["target"]["name"], dict(manifest["target"]["tvm"])
        shape, dtype = list(inputs[0]["shape"]), np.dtype(inputs[0]["dtype"])
    except FileNotFoundError:
        raise EdgenasError(f"{directory} has no manifest.json; pass an artifact directory written by edgenas "
                           f"compile") from None
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise EdgenasError(f"{directory}/manifest.json is not an edgenas manifest ({type(e).__name__}: {e}); "
                           f"recompile the artifact with edgenas compile") from None
    library = checked_library(directory, digest)
    target = profile.resolved_target()
    if built_name != target.name or built_tvm != target.tvm:
        differ = sorted(k for k in set(target.tvm) | set(built_tvm) if target.tvm.get(k) != built_tvm.get(k))
        raise EdgenasError(f"{directory} was built for target '{built_name}' but profile "
                           f"'{profile.name}' resolves to '{target.name}' (differing: {', '.join(differ) or 'name'}); "
                           f"recompile with edgenas compile --target {profile.name}")
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise EdgenasError(f"{directory}/manifest.json has input shape {shape!r}; recompile the artifact")
    return {**manifest, "directory": directory, "library": library, "shape": shape, "dtype": dtype}


def _timed(artifact: dict[str, Any], x: np.ndarray, threads: int | None, remote: Remote | None,
           timing: Timing) -> Measurement:
    m = measure("tvm", artifact["library"], x, threads=threads, timing=timing, remote=remote)
    _check_output(artifact, m.output)
    return m


def _interleaved(new: dict[str, Any], old: dict[str, Any], x: np.ndarray, threads: int | None,
                 remote: Remote | None, timing: Timing) -> dict[str, Stats]:
    """Both libraries on the same device, their repeats taken in turn with the same threads and input."""
    if old["shape"] != new["shape"]:
        raise EdgenasError(f"the baseline takes input {old['shape']} but the artifact {new['shape']}; compare "
                           f"artifacts of the same input shape")
    threads = threads or host.cores()
    if remote:  # both uploaded to one device and timed interleaved there
        new_m, old_m = time_remote(remote, [new["library"], old["library"]], x, threads, timing)
        _check_output(new, new_m.output)
        _check_output(old, old_m.output)
        return {"new": new_m.stats, "baseline": old_m.stats}
    sessions = {name: RUNTIMES["tvm"](art["library"], x, threads) for name, art in (("new", new), ("baseline", old))}
    for name, art in (("new", new), ("baseline", old)):
        _check_output(art, sessions[name].output)
    return time_interleaved({n: s.run for n, s in sessions.items()}, timing)


def _check_output(artifact: dict[str, Any], output: np.ndarray) -> None:
    expected = artifact.get("outputs", [{}])[0].get("shape")
    if expected is not None and list(output.shape) != list(expected):
        raise EdgenasError(f"{artifact['library']} returned shape {list(output.shape)}, the manifest says "
                           f"{expected}; recompile the artifact")
    if not np.all(np.isfinite(output)):
        raise EdgenasError(f"{artifact['library']} returned NaN or infinite values; recompile the artifact")


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


def _budget_check(stats: Stats, q: float, budget_ms: float, tolerance: float, source: str) -> Check:
    measured = stats.percentile(q)
    limit = budget_ms * (1 + tolerance)
    passed = measured <= limit
    verdict = "within" if passed else "over"
    message = (f"p{q:g} {measured:.4f} ms is {verdict} the budget {budget_ms:g} ms + {100 * tolerance:g}% "
               f"tolerance = {limit:.4f} ms (budget from {source})")
    return Check("latency budget", passed, message, {
        "p50_ms": round(stats.p50_ms, 6), f"p{q:g}_ms": round(measured, 6), "spread": round(stats.spread, 6),
        "stable": stats.stable, "repeats": stats.repeats, "budget_ms": budget_ms, "tolerance": tolerance,
        "limit_ms": round(limit, 6), "margin": round((limit - measured) / limit, 6), "budget_source": source})


def _regression_check(stats: Stats, base: Stats, q: float, max_regression: float, baseline: Path) -> Check:
    new_ms, base_ms = stats.percentile(q), base.percentile(q)
    ratio, limit = new_ms / base_ms, base_ms * (1 + max_regression)
    passed = new_ms <= limit
    message = (f"p{q:g} {new_ms:.4f} ms is {100 * (ratio - 1):+.1f}% against the baseline's {base_ms:.4f} ms "
               f"({baseline}); allowed {100 * max_regression:+g}%")
    return Check("regression", passed, message, {
        "p50_ms": round(stats.p50_ms, 6), f"p{q:g}_ms": round(new_ms, 6), "spread": round(stats.spread, 6),
        "baseline_p50_ms": round(base.p50_ms, 6), f"baseline_p{q:g}_ms": round(base_ms, 6),
        "baseline_spread": round(base.spread, 6), "ratio": round(ratio, 6), "max_regression": max_regression,
        "limit_ms": round(limit, 6), "margin": round((limit - new_ms) / limit, 6),
        "baseline": str(baseline)})


def _junit(result: GateResult, begin: datetime) -> str:
    """One testsuite `edgenas.gate`, one testcase per check, a failure element on a miss; the figures as the
    suite's properties, named check.figure (testcase properties are not in the common JUnit schema)."""
    failures = sum(not c.passed for c in result.checks)
    suites = ET.Element("testsuites", name="edgenas gate", tests=str(len(result.checks)), failures=str(failures),
                        errors="0", time=f"{result.seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="edgenas.gate", tests=str(len(result.checks)),
                          failures=str(failures), errors="0", skipped="0", time=f"{result.seconds:.3f}",
                          timestamp=begin.strftime("%Y-%m-%dT%H:%M:%S"), hostname=platform.node() or "localhost")
    props = ET.SubElement(suite, "properties")
    figures = [("profile", result.profile), ("artifact", str(result.artifact)),
               ("percentile", f"{result.percentile:g}")]
    figures += [(f"{c.name.replace(' ', '_')}.{k}", v) for c in result.checks for k, v in c.properties.items()]
    figures += [(f"note.{i}", n) for i, n in enumerate(result.notes, 1)]
    for name, value in figures:
        ET.SubElement(props, "property", name=name, value=str(value).lower() if isinstance(value, bool) else str(value))
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"edgenas.gate.{result.profile}", name=c.name,
                             time=f"{result.seconds / len(result.checks):.3f}")
        if not c.passed:
            ET.SubElement(case, "failure", message=c.message, type="LatencyGateFailure").text = c.message
        else:
            ET.SubElement(case, "system-out").text = c.message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _markdown(result: GateResult) -> str:
    q = f"p{result.percentile:g}"
    lines = [f"### edgenas gate: {'passed' if result.passed else 'FAILED'} ({result.profile}, {result.artifact})", "",
             f"| check | p50 | {q} | spread | budget | margin | verdict |",
             "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
    for c in result.checks:
        p = c.properties
        if c.name == "regression":
            budget = (f"≤ {p['limit_ms']:.4f} ms (baseline {q} {p[f'baseline_{q}_ms']:.4f} ms "
                      f"{100 * p['max_regression']:+g}%)")
        else:
            budget = f"{p['budget_ms']:g} ms + {100 * p['tolerance']:g}% = {p['limit_ms']:.4f} ms"
        lines.append(f"| {c.name} | {p['p50_ms']:.4f} ms | {p[f'{q}_ms']:.4f} ms | {100 * p['spread']:.1f}% | "
                     f"{budget} | {100 * p['margin']:+.1f}% | {'pass' if c.passed else '**FAIL**'} |")
    lines += ["", *(f"- {c.message}" for c in result.checks), *(f"- note: {n}" for n in result.notes)]
    return "\n".join(lines) + "\n\n"
