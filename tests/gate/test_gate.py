"""The CI latency gate on one real small artifact: exit codes, artifact checks, budgets from the command line,
the project's configuration and the profile, JUnit XML and Markdown, and the interleaved baseline."""
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgenas.cli import cli
from edgenas.gate import gate
from edgenas.measure.timing import Timing
from edgenas.pipeline.compile import compile_artifact

from ..conftest import ARCH

ARCH_TINY = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # no convolution in any cell
FAST = Timing(warmup_s=0.05, min_repeat_ms=5, min_repeats=5, max_repeats=15, max_seconds=1.0)
WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "github-actions.yml"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, small):
    """The artifact under test and a much faster baseline (its cells hold only skips), both of the small space."""
    tmp = tmp_path_factory.mktemp("gate")
    compile_artifact("host", ARCH, tmp / "new", space=small, measure_latency=False)
    compile_artifact("host", ARCH_TINY, tmp / "tiny", space=small, measure_latency=False)
    return tmp / "new", tmp / "tiny"


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch, tmp_path):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)  # away from the repository: only configuration a test writes is found


def run(*args, profiles=None):
    return CliRunner().invoke(cli, [*(["--profiles", str(profiles)] if profiles else []), "gate", *map(str, args)])


def test_within_budget_exits_0_and_writes_junit_and_markdown(artifacts, tmp_path):
    new, _ = artifacts
    result = run(new, "--target", "host", "--budget-ms", 10_000, "--junit", tmp_path / "g.xml",
                 "--markdown", tmp_path / "g.md")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pass  latency budget  p90 ")
    assert result.stderr.startswith("budget 10000 ms from --budget-ms; timing "), "it says what it does"
    root = ET.parse(tmp_path / "g.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "edgenas.gate" and suite.get("tests") == "1" and suite.get("failures") == "0"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["latency_budget.budget_ms"] == "10000.0" and props["latency_budget.budget_source"] == "--budget-ms"
    assert props["latency_budget.stable"] in ("true", "false") and props["percentile"] == "90"
    assert 0 < float(props["latency_budget.p50_ms"]) <= float(props["latency_budget.p90_ms"]) < 10_000
    (case,) = suite.findall("testcase")
    assert case.get("name") == "latency budget" and case.find("failure") is None
    md = (tmp_path / "g.md").read_text()
    assert "| check | p50 | p90 | spread | budget | margin | verdict |" in md
    row = next(line for line in md.splitlines() if line.startswith("| latency budget |"))
    assert "10000 ms + 5% = 10500.0000 ms" in row and row.endswith("| pass |")


def test_json_verdict_and_quiet(artifacts):
    result = run(artifacts[0], "--target", "host", "--budget-ms", 0.0001, "--json", "--quiet")
    verdict = json.loads(result.stdout)
    assert result.exit_code == 1 == verdict["exit_code"] and not result.stderr, "--quiet: the verdict only"
    assert not verdict["passed"] and verdict["checks"][0]["name"] == "latency budget"
    assert verdict["checks"][0]["budget_ms"] == 0.0001 and verdict["stats"]["p50_ms"] > 0


def test_over_budget_exits_1_with_a_failure_element(artifacts, tmp_path):
    new, _ = artifacts
    result = run(new, "--target", "host", "--budget-ms", 0.0001, "--percentile", 50, "--junit", tmp_path / "g.xml")
    assert result.exit_code == 1, result.output
    assert "FAIL  latency budget  p50 " in result.output and "over the budget 0.0001 ms" in result.output
    suite = ET.parse(tmp_path / "g.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"
    failure = suite.find("testcase").find("failure")
    assert "over the budget 0.0001 ms" in failure.get("message") and failure.text == failure.get("message")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.so").write_bytes(bytes(b ^ 0xFF for b in (d / "model.so").read_bytes())),
     "does not match the SHA-256"),
    (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda d: (d / "manifest.json").write_text("{"), "manifest.json is not readable JSON"),
    (lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text().replace('"float32"', '"f99"', 1)),
     "manifest.json has a malformed target or input/output entry"),
    (lambda d: (d / "model.onnx").unlink(), "model.onnx is missing"),
    (lambda d: (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes()[:-10]),
     "model.onnx does not match the SHA-256"),
    (lambda d: (d / "manifest.json").write_text(re.sub(r'"shape": \[\s*1,\s*3,\s*32,\s*32\s*\]',
                                                       '"shape": [1, 3, 16, 16]', (d / "manifest.json").read_text())),
     "failed on the input the manifest describes ([1, 3, 16, 16] float32)"),
])
def test_a_damaged_artifact_is_a_one_line_error(artifacts, tmp_path, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(artifacts[0], broken)
    damage(broken)
    result = run(broken, "--target", "host")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("error: ") and message in result.stderr.splitlines()[-1]
    assert not result.stdout and "Traceback" not in result.stderr


def test_an_error_is_reported_to_ci_too(artifacts, tmp_path):
    broken = shutil.copytree(artifacts[0], tmp_path / "broken")
    (broken / "model.onnx").unlink()
    result = run(broken, "--target", "host", "--junit", tmp_path / "g.xml", "--markdown", tmp_path / "g.md")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    suite = ET.parse(tmp_path / "g.xml").getroot().find("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    error = suite.find("testcase").find("error")
    assert "model.onnx is missing" in error.get("message") and error.get("type") == "EdgenasError"
    assert (tmp_path / "g.md").read_text().startswith(f"### edgenas gate: ERROR ({broken})")


def test_a_report_inside_the_artifact_is_refused(artifacts):
    before = {p.name: p.read_bytes() for p in artifacts[0].iterdir()}
    for report in ("--junit", "--markdown"):
        result = run(artifacts[0], "--target", "host", "--budget-ms", 1000, report, artifacts[0] / "manifest.json")
        assert result.exit_code == 2 and "would be written into the artifact" in result.output
    assert {p.name: p.read_bytes() for p in artifacts[0].iterdir()} == before


def test_missing_artifact_and_other_target_are_errors(artifacts, tmp_path):
    result = run(tmp_path / "nowhere", "--target", "host")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run(artifacts[0], "--target", "raspi4")  # an aarch64 profile: the x86-64 library is not its build
    assert result.exit_code == 2 and "was built for target 'x86_64'" in result.output
    assert "profile 'raspi4' resolves to 'aarch64'" in result.output


def test_budget_from_pyproject_with_a_per_profile_override(artifacts, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.edgenas.gate]\nlatency_ms = 0.0001\npercentile = 50\ntolerance = 0\n"
        "[tool.edgenas.gate.profiles.other]\nlatency_ms = 10000\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found from a subdirectory
    result = gate(artifacts[0], "host", timing=FAST)
    assert not result.passed and result.exit_code == 1 and result.percentile == 50
    assert result.settings_from == f"{tmp_path / 'pyproject.toml'} [tool.edgenas.gate]"
    assert result.checks[0].properties["tolerance"] == 0.0
    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text().replace("profiles.other", "profiles.host"))
    result = gate(artifacts[0], "host", timing=FAST)
    assert result.passed and result.settings_from == f"{tmp_path / 'pyproject.toml'} [tool.edgenas.gate.profiles.host]"
    assert gate(artifacts[0], "host", budget_ms=0.0001, timing=FAST).exit_code == 1  # --budget-ms wins


def test_edgenas_toml_and_the_profile_budget(artifacts, tmp_path, monkeypatch):
    result = gate(artifacts[0], "host", timing=FAST)  # no configuration: host's budgets.latency_ms (10 ms)
    assert result.settings_from == "profile 'host' budgets" and result.checks[0].properties["budget_ms"] == 10
    (tmp_path / "edgenas.toml").write_text("[gate]\nlatency_ms = 10000\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    (tmp_path / "summary.md").write_text("earlier step\n")
    result = gate(artifacts[0], "host", timing=FAST)
    assert result.passed and result.settings_from == f"{tmp_path / 'edgenas.toml'} [gate]"
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("earlier step\n### edgenas gate: passed (host, ")


@pytest.mark.parametrize("text, message", [
    ("[tool.edgenas.gate]\npercentile = 'high'\n", "tool.edgenas.gate.percentile = 'high' must be a number > 0"),
    ("[tool.edgenas.gate]\ntolerance = -0.1\n", "tool.edgenas.gate.tolerance = -0.1 must be a number >= 0"),
    ("[tool.edgenas.gate]\nbudget = 3\n", "tool.edgenas.gate.budget is not a gate setting"),
    ("[tool.edgenas.gate.profiles.host]\nlatency_ms = 0\n", "tool.edgenas.gate.profiles.host.latency_ms = 0"),
    ("[tool.edgenas.gate\n", "is not valid TOML"),
    ("[tool.edgenas.gate]\ntolerance = inf\n", "tool.edgenas.gate.tolerance = inf must be a number >= 0"),
    ("[tool.edgenas.gate]\nmax_regression = nan\n", "tool.edgenas.gate.max_regression = nan must be a number"),
])
def test_invalid_configuration_names_the_key(artifacts, tmp_path, text, message):
    (tmp_path / "pyproject.toml").write_text(text)
    result = run(artifacts[0], "--target", "host", "--budget-ms", 1)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


def test_baseline_against_itself_passes_and_against_a_faster_network_fails(artifacts, tmp_path):
    new, tiny = artifacts
    # the median and a generous threshold: other people's tests share these 2 cores
    same = gate(new, "host", budget_ms=10_000, percentile=50, baseline=new, max_regression=1.0, timing=FAST)
    assert same.passed and [c.name for c in same.checks] == ["latency budget", "regression"]
    assert 0.5 < same.checks[1].properties["ratio"] < 2
    slower = gate(new, "host", budget_ms=10_000, baseline=tiny, max_regression=0, timing=FAST,
                  junit=tmp_path / "g.xml", markdown=tmp_path / "g.md")
    assert slower.exit_code == 1 and slower.checks[0].passed and not slower.checks[1].passed
    assert slower.checks[1].properties["ratio"] > 1.5  # convolutions against none: really slower
    cases = ET.parse(tmp_path / "g.xml").getroot().find("testsuite").findall("testcase")
    assert [c.get("name") for c in cases] == ["latency budget", "regression"]
    assert cases[0].find("failure") is None and "against the baseline's" in cases[1].find("failure").get("message")
    assert "| regression |" in (tmp_path / "g.md").read_text() and "**FAIL**" in (tmp_path / "g.md").read_text()


def test_an_unstable_measurement_is_taken_again_and_noted(artifacts, tmp_path):
    from dataclasses import replace

    never_stable = replace(FAST, max_spread=0.0)  # no real spread is zero: both measurements count as unstable
    result = gate(artifacts[0], "host", budget_ms=10_000, timing=never_stable, markdown=tmp_path / "g.md")
    assert result.passed and not result.stats.stable
    assert len(result.notes) == 1 and result.notes[0].startswith("the measurement was unstable twice (spread ")
    assert "- note: the measurement was unstable twice" in (tmp_path / "g.md").read_text()


def test_records_in_the_store_when_asked(artifacts, tmp_path):
    import sqlite3

    gate(artifacts[0], "host", budget_ms=10_000, db=tmp_path / "s.sqlite", timing=FAST)
    db = sqlite3.connect(tmp_path / "s.sqlite")
    rows = db.execute("SELECT profile, arch, input_shape FROM measurements").fetchall()
    manifest = json.loads((artifacts[0] / "manifest.json").read_text())
    assert rows == [("host", manifest["arch"], "[1, 3, 32, 32]")]


@pytest.mark.slow  # times two libraries interleaved over RPC, twice when unstable: ~1 min
def test_an_rpc_profile_is_gated_on_the_tracker_device_with_a_baseline(artifacts, tmp_path, rpc_tracker):
    from edgenas.measure.loopback import free_port

    def board(name, tracker):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\ndescription: this machine behind a tracker\n"
                                               f"kind: cpu\ntarget: native\nbatch: 1\n"
                                               f"measure: {{via: rpc, tracker: '{tracker}', key: loopback}}\n")

    board("board", rpc_tracker)
    board("gone", f"127.0.0.1:{free_port()}")
    result = run(artifacts[0], "--target", "board", "--budget-ms", 10_000, profiles=tmp_path)
    assert result.exit_code == 0, result.output
    result = run(artifacts[0], "--target", "gone", "--budget-ms", 10_000, profiles=tmp_path)
    assert result.exit_code == 2 and result.output.startswith("error: cannot reach the RPC tracker at 127.0.0.1:")
    # both libraries in one RPC session, interleaved on the device: the convolutions are really slower
    result = run(artifacts[0], "--target", "board", "--budget-ms", 10_000, "--percentile", 50,
                 "--baseline", artifacts[1], "--max-regression", 0, profiles=tmp_path)
    assert result.exit_code == 1 and "FAIL  regression" in result.output, result.output


def test_the_github_actions_example_is_a_workflow_that_gates():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    assert workflow[True] == {"pull_request": None, "push": {"branches": ["main"]}}  # YAML 1.1 reads `on` as True
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in steps)
    runs = " ".join(s.get("run", "") for s in steps)
    assert "edgenas compile --target host" in runs
    assert "edgenas gate out/model --target host --junit gate.xml --markdown gate.md" in runs
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    assert "self-hosted" in WORKFLOW.read_text()


def test_a_batch_the_artifact_was_not_compiled_for_is_refused(artifacts):
    new, _ = artifacts
    result = run(new, "--target", "host", "--batch", 4, "--budget-ms", 10_000)
    assert result.exit_code == 2 and "takes batch 1, not 4; compile it with edgenas compile --batch 4" in result.output
    assert run(new, "--target", "host", "--batch", 1, "--budget-ms", 10_000).exit_code == 0
