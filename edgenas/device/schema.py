"""Validation of the YAML files edgenas reads (profiles, targets): types, units, choices, unknown keys.

A spec is a dict of field name -> `Field`. `validate` checks a parsed YAML mapping against it and
raises an `EdgenasError` whose one line names the file, the field and the fix.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import EdgenasError

# Unit suffixes a numeric field name may carry, and how other spellings of the same quantity convert.
UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "_ghz": ("GHz", {"ghz": 1.0, "mhz": 1e-3, "hz": 1e-9}),
    "_gbs": ("GB/s", {"gb/s": 1.0, "gbps": 1.0, "mb/s": 1e-3, "tb/s": 1e3}),
    "_gflops": ("GFLOP/s", {"gflops": 1.0, "gflop/s": 1.0, "tflops": 1e3, "tflop/s": 1e3, "mflops": 1e-3}),
    "_mb": ("MB", {"mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0, "kb": 1 / 1024, "kib": 1 / 1024}),
    "_kb": ("KB", {"kb": 1.0, "kib": 1.0, "mb": 1024.0, "mib": 1024.0, "b": 1 / 1024}),
    "_ms": ("ms", {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}),
    "_bits": ("bits", {"bits": 1.0, "bit": 1.0, "bytes": 8.0}),
}
_QUANTITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ/]+)\s*$")


@dataclass(frozen=True)
class Field:
    """One field: its type ('str', 'int', 'number', 'bool', 'list', 'map', 'section'), whether it is required,
    allowed values, a lower bound for numbers, and for sections the nested spec."""

    type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    fields: dict[str, "Field"] | None = None
    auto: bool = False  # the string "auto" is accepted in place of a value (detected at load time)


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; errors name the file and the line."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise EdgenasError(f"{path}: cannot read ({e.strerror}); check the path") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise EdgenasError(f"{path}: not valid YAML{where} ({problem}); fix the syntax") from None
    if not isinstance(data, dict):
        raise EdgenasError(f"{path}: expected a mapping of fields (key: value), got {type(data).__name__}")
    return data


def validate(data: dict[str, Any], spec: dict[str, Field], source: str, prefix: str = "") -> dict[str, Any]:
    """Check `data` against `spec`; return it with numbers as float/int. Raise on the first problem."""
    for key in data:
        if key not in spec:
            close = difflib.get_close_matches(str(key), list(spec), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known fields: {', '.join(spec)}"
            raise EdgenasError(f"{source}: unknown field '{prefix}{key}'; {hint}")
    out: dict[str, Any] = {}
    for name, field in spec.items():
        where = f"{source}: {prefix}{name}"
        if name not in data or data[name] is None:
            if field.required:
                raise EdgenasError(f"{where} is missing; add it ({_describe(field, name)})")
            continue
        out[name] = _check(data[name], field, name, where, source, f"{prefix}{name}.")
    return out


def _check(value: Any, field: Field, name: str, where: str, source: str, prefix: str) -> Any:
    if field.auto and value == "auto":
        return value
    if field.type == "section":
        if not isinstance(value, dict):
            raise EdgenasError(f"{where}: expected a mapping of fields, got {value!r}")
        return validate(value, field.fields or {}, source, prefix)
    if field.type in ("int", "number"):
        return _number(value, field, name, where)
    expected = {"str": str, "bool": bool, "list": list, "map": dict}[field.type]
    if not isinstance(value, expected):
        raise EdgenasError(f"{where}: expected {_describe(field, name)}, got {value!r}")
    if field.choices and value not in field.choices:
        close = difflib.get_close_matches(str(value), field.choices, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "use one of them"
        raise EdgenasError(f"{where}: '{value}' is not one of {', '.join(field.choices)}; {hint}")
    return value


def _number(value: Any, field: Field, name: str, where: str) -> float | int:
    unit_suffix = next((s for s in UNITS if name.endswith(s)), None)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m and unit_suffix:
            unit, factors = UNITS[unit_suffix]
            factor = factors.get(m.group(2).lower())
            if factor is not None:
                fixed = float(m.group(1)) * factor
                raise EdgenasError(
                    f"{where}: '{value}' carries a unit; the field is a plain number in {unit}: write {name}: {fixed:g}")
            raise EdgenasError(f"{where}: '{value}' has unit '{m.group(2)}'; write a plain number in {unit}")
        raise EdgenasError(f"{where}: expected {_describe(field, name)}, got '{value}'")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EdgenasError(f"{where}: expected {_describe(field, name)}, got {value!r}")
    if not math.isfinite(value):
        raise EdgenasError(f"{where}: {value} is not a finite number; write {_describe(field, name)}")
    if field.type == "int" and int(value) != value:
        raise EdgenasError(f"{where}: expected a whole number, got {value}")
    if field.minimum is not None and value < field.minimum:
        raise EdgenasError(f"{where}: {value} is below the minimum {field.minimum:g}; use a value >= {field.minimum:g}")
    return int(value) if field.type == "int" else float(value)


def _describe(field: Field, name: str) -> str:
    if field.type in ("int", "number"):
        unit = next((u for s, (u, _) in UNITS.items() if name.endswith(s)), None)
        kind = "a whole number" if field.type == "int" else "a number"
        return f"{kind} in {unit}" if unit else kind
    if field.choices:
        return "one of " + ", ".join(field.choices)
    return {"str": "a string", "bool": "true or false", "list": "a list", "map": "a mapping",
            "section": "a mapping"}[field.type]
