"""The Dockerfile: lint-clean under hadolint, pinned installs, a non-root user, `edgenas --help` by default."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined.splitlines() if ln.strip()]


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split("==") for d in deps if "==" in d)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed; ./setup.sh installs it (.[dev])")
def test_hadolint_reports_nothing():
    """Every rule at every level, info and style included; ignores belong in .hadolint.yaml with a reason."""
    result = subprocess.run([HADOLINT, "--format", "json", "--failure-threshold", "style", "Dockerfile"],
                            cwd=ROOT, capture_output=True, text=True)
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and not findings, "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings) or result.stderr


def test_default_command_is_help_as_a_non_root_user():
    found = dict(instructions())  # the last of each instruction is the one that counts
    assert json.loads(found["ENTRYPOINT"]) + json.loads(found["CMD"]) == ["edgenas", "--help"]
    assert found["USER"].split(":")[0] not in {"root", "0"}


def test_every_pip_install_is_pinned():
    pins = pyproject_pins()
    installs = [cmd for kind, args in instructions() if kind == "RUN"
                for cmd in re.split(r"&&|;", args) if re.search(r"\bpip install\b", cmd)]
    assert installs
    for cmd in installs:
        words = shlex.split(cmd.split("pip install", 1)[1])
        takes_value = {"--index-url", "--extra-index-url", "-i", "-c", "--constraint", "-r", "--requirement"}
        packages = [w for i, w in enumerate(words)
                    if not w.startswith("-") and not (i and words[i - 1] in takes_value)]
        assert packages, cmd
        for p in packages:
            assert p == "." or "==" in p, f"unpinned pip install of {p!r}: pin it (pkg==version) or install ."
            if "==" in p:  # the same version the project pins, or the project would replace it
                name, version = p.split("==")
                assert pins.get(name, version) == version, f"{p} differs from pyproject's {name}=={pins[name]}"
