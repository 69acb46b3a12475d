"""The gate's settings: each from the caller, else the project's configuration (`[tool.edgenas.gate]` in
pyproject.toml or `[gate]` in edgenas.toml, the first found from the current directory up, with per-profile
sections), else the profile's budget and the defaults; every value checked, every error naming the file.
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from ..device.budget import budget_for
from ..device.profile import Profile
from ..errors import EdgenasError

DEFAULTS = {"percentile": 90.0, "tolerance": 0.05, "max_regression": 0.10}
# key -> (lowest allowed, whether the lowest itself is allowed, highest allowed)
SETTINGS = {"latency_ms": (0.0, False, None), "percentile": (0.0, False, 100.0), "tolerance": (0.0, True, None),
            "max_regression": (-1.0, False, None)}


def settings(profile: Profile, start: Path, given: dict[str, float | None]) -> tuple[dict[str, float], str]:
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
                              (budget_for(profile).latency_ms if key == "latency_ms" else DEFAULTS.get(key),
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
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
            value > low or (low_ok and value == low)) and (high is None or value <= high)
        if not ok:
            bounds = f"{'>=' if low_ok else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
            raise EdgenasError(f"{path}: {prefix}.{key} = {value!r} must be a number {bounds}; fix it")
