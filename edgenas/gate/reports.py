"""The gate's verdict as JUnit XML (one testcase per check) and as a Markdown table (for a pull request or
GitHub's step summary); a gate that could not decide (bad input, an unreachable device) as one errored testcase
and one Markdown line, so that CI shows why."""
from __future__ import annotations

import platform
import xml.etree.ElementTree as ET
from datetime import datetime

from .verdict import GateResult


def junit(result: GateResult, begin: datetime) -> str:
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


def junit_error(message: str, artifact: str, profile: str, begin: datetime) -> str:
    """One testsuite with one testcase `gate` that errored with `message`."""
    suites = ET.Element("testsuites", name="edgenas gate", tests="1", failures="0", errors="1", time="0.000")
    suite = ET.SubElement(suites, "testsuite", name="edgenas.gate", tests="1", failures="0", errors="1", skipped="0",
                          time="0.000", timestamp=begin.strftime("%Y-%m-%dT%H:%M:%S"),
                          hostname=platform.node() or "localhost")
    props = ET.SubElement(suite, "properties")
    for name, value in (("profile", profile), ("artifact", artifact)):
        ET.SubElement(props, "property", name=name, value=value)
    case = ET.SubElement(suite, "testcase", classname=f"edgenas.gate.{profile}", name="gate", time="0.000")
    ET.SubElement(case, "error", message=message, type="EdgenasError").text = message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def markdown_error(message: str, artifact: str) -> str:
    return f"### edgenas gate: ERROR ({artifact})\n\n- error: {message}\n\n"


def markdown(result: GateResult) -> str:
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
