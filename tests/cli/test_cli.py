"""User errors on the real command line: one line on stderr, exit code 2, no traceback."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import edgenas

from ..conftest import ARCH, fails_with


def test_bad_arch_string(tmp_path):
    fails_with("unknown operation 'nor_conv_5x5'", "compile", "--arch", ARCH.replace("3x3~0|+", "5x5~0|+", 1),
               "-o", str(tmp_path / "o"))


def test_unknown_profile(tmp_path):
    fails_with("no profile 'raspi3'; did you mean 'raspi4'?", "compile", "-t", "raspi3", "-a", ARCH,
               "-o", str(tmp_path / "o"))


def test_profile_naming_a_missing_target(tmp_path):
    (tmp_path / "board.yaml").write_text(textwrap.dedent("""\
        name: board
        description: a board whose target does not exist
        kind: cpu
        target: riscv64
        batch: 1
        measure: {via: none}
    """))
    err = fails_with("target 'riscv64' is not a known target", "--profiles", str(tmp_path), "compile",
                     "-t", "board", "-a", ARCH, "-o", str(tmp_path / "o"))
    assert "board.yaml" in err and "add targets/riscv64.yaml" in err


def test_bad_profile_field(tmp_path):
    (tmp_path / "board.yaml").write_text("name: board\ndescription: d\nkind: cpu\ntarget: aarch64\nbatch: 1\n"
                                         "hardware: {clock_ghz: 1.8 GHz}\nmeasure: {via: none}\n")
    fails_with("hardware.clock_ghz: '1.8 GHz' carries a unit", "--profiles", str(tmp_path), "profiles", "show",
               "board")


@pytest.mark.parametrize("kind", ["file", "readonly"])
def test_unwritable_output_dir(tmp_path, kind):
    import os

    if kind == "file":
        out = tmp_path / "taken"
        out.write_text("")
        message = "is a file, not a directory"
    else:
        if os.geteuid() == 0:
            out = "/proc/edgenas-out"  # not writable even for root
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
            out = tmp_path / "ro" / "out"
        message = "cannot write beside output directory"
    err = fails_with(message, "compile", "-a", ARCH, "-o", str(out), "--no-measure")
    assert "-o" in err


def test_missing_profiles_folder():
    fails_with("profile folder /no/such/dir does not exist", "--profiles", "/no/such/dir", "profiles", "list")


def test_help_and_listing():
    out = subprocess.run([sys.executable, "-m", "edgenas", "profiles", "list"], capture_output=True, text=True,
                         check=True).stdout
    assert "raspi4" in out and "host" in out
    out = subprocess.run([sys.executable, "-m", "edgenas", "arch", "show", ARCH], capture_output=True, text=True,
                         check=True).stdout
    assert '"params": 802426' in out


def test_measuring_a_predict_only_profile():
    fails_with("profile 'raspi4' is predict-only (measure.via: none)", "measure", "-t", "raspi4", "-a", ARCH)


def test_local_measurement_of_foreign_code_is_refused_before_any_work(tmp_path):
    (tmp_path / "pi.yaml").write_text("name: pi\ndescription: d\nkind: cpu\ntarget: aarch64\nbatch: 1\n"
                                      "measure: {via: local}\n")
    out = tmp_path / "out"
    fails_with("builds aarch64/cpu code, which cannot run on this machine; use --no-measure",
               "--profiles", str(tmp_path), "compile", "-t", "pi", "-a", ARCH, "-o", str(out))
    assert not out.exists()


def test_bench_and_meta_train_errors(tmp_path, synthetic_benchmark):
    fails_with("benchmark folder /no/such/bench does not exist", "bench", "latency", "--data", "/no/such/bench",
               "--devices", "dev0")
    fails_with("device 'phone' is not a column", "bench", "latency", "--data", str(synthetic_benchmark),
               "--devices", "phone")
    fails_with("task 'imagenet' is not a column", "bench", "nas", "--data", str(synthetic_benchmark), "--device",
               "dev0", "--budget-ms", "p50", "--task", "imagenet")
    fails_with("meta-training needs at least 2 devices", "meta-train", "--data", str(synthetic_benchmark),
               "--devices", "dev0", "-o", str(tmp_path / "m.pt"))
    from edgenas.store import Store

    with Store(tmp_path / "few.db"):  # a store without 100 measured architectures of the space
        pass
    fails_with(f"{tmp_path / 'few.db'} holds no profile and runtime with 100 architectures of space 'nb201' at input "
               f"1x3x32x32; measure more", "meta-train", "--data", str(synthetic_benchmark), "--store",
               str(tmp_path / "few.db"), "-o", str(tmp_path / "m.pt"))
    fails_with("'--store': File '/no/such.db' does not exist", "bench", "latency", "--data", str(synthetic_benchmark),
               "--store", "/no/such.db")


def test_predict(small_artifact, tmp_path):
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-m", "edgenas", "predict", str(small_artifact.directory), "-i",
                          str(tmp_path / "x.npy")], capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(json.loads(out)["logits"], edgenas.load(small_artifact.directory).predict(x), atol=1e-6)
    np.save(tmp_path / "bad.npy", x[:, :, :16])
    fails_with("input has shape (1, 3, 16, 32), the model takes (1, 3, 32, 32)", "predict",
               str(small_artifact.directory), "-i", str(tmp_path / "bad.npy"))
    fails_with("cannot read", "predict", str(small_artifact.directory), "-i", str(tmp_path / "missing.npy"))
    fails_with("artifact directory", "predict", str(tmp_path / "none"), "-i", str(tmp_path / "x.npy"))


@pytest.mark.parametrize("args, message", [
    (("compile", "--latency-ms", "nan"), "Invalid value for '--latency-ms': 'nan' is not a finite number"),
    (("compile", "--latency-ms", "inf"), "'inf' is not a finite number"),
    (("compile", "--memory-mb", "-inf"), "Invalid value for '--memory-mb'"),
    (("gate", "art", "-t", "host", "--percentile", "nan"), "'nan' is not a finite number"),
    (("gate", "art", "-t", "host", "--tolerance", "inf"), "'inf' is not a finite number"),
    (("gate", "art", "-t", "host", "--budget-ms", "NaN"), "'NaN' is not a finite number"),
    (("gate", "art", "-t", "host", "--max-regression", "inf"), "'inf' is not a finite number"),
    (("compile", "--latencyms", "5"), "No such option '--latencyms'. Did you mean '--latency-ms'?; see 'edgenas "
                                      "compile --help'"),
    (("bench", "nas", "--data", "x", "--seeds", "0"), "Invalid value for '--seeds'"),
    (("gate",), "Missing argument 'ARTIFACT'; see 'edgenas gate --help'"),
])
def test_option_errors_are_one_line(args, message):
    """click's own errors (bad numbers, unknown options, missing arguments) end as one `error:` line, exit 2."""
    fails_with(message, *args)


def test_a_group_without_its_command_prints_its_help():
    result = subprocess.run([sys.executable, "-m", "edgenas", "bench"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("Usage: edgenas bench") and not result.stderr


@pytest.mark.parametrize("field, value, message", [
    ("cores: 4,", "cores: .inf,", "hardware.cores: inf is not a finite number; write a whole number"),
    ("latency_ms: 20", "latency_ms: .nan", "budgets.latency_ms: nan is not a finite number; write a number in ms"),
])
def test_profile_numbers_must_be_finite(tmp_path, field, value, message):
    text = (Path(edgenas.__file__).parent.parent / "profiles" / "raspi4.yaml").read_text()
    assert field in text
    (tmp_path / "board.yaml").write_text(text.replace("name: raspi4", "name: board").replace(field, value))
    err = fails_with(message, "--profiles", str(tmp_path), "profiles", "list")
    assert "board.yaml" in err


def test_listings_as_json():
    for what, key in (("profiles", "resolved_target"), ("targets", "machine")):
        out = subprocess.run([sys.executable, "-m", "edgenas", what, "list", "--json"], capture_output=True, text=True,
                             check=True).stdout
        listed = json.loads(out)
        assert {"host", "raspi4"} <= {p["name"] for p in listed} if what == "profiles" else len(listed) >= 3
        assert all(key in p for p in listed)


def test_quiet_leaves_only_the_result(tmp_path):
    """`measure` of what the store already holds: progress on stderr, silenced by --quiet; the table stays."""
    from edgenas.measure.timing import Measurement, Stats
    from edgenas.spaces import get_space
    from edgenas.store import Store

    sp = get_space("nb201")
    db = tmp_path / "db.sqlite"
    stats = Stats.of([1.0, 1.0, 1.0], number=3, max_spread=0.05)
    with Store(db) as store:
        for runtime in ("tvm", "onnxruntime"):
            store.add("host", sp.name, sp.canonical(ARCH), sp.input_shape, {},
                      Measurement(runtime, "1", 2, stats, np.zeros((1, 10), np.float32)))
    args = [sys.executable, "-m", "edgenas", "measure", "-t", "host", "-a", ARCH, "--db", str(db)]
    loud = subprocess.run(args, capture_output=True, text=True, check=True)
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, text=True, check=True)
    assert "1 already in the store" in loud.stderr and quiet.stderr == "" and quiet.stdout == loud.stdout
