import pytest

from edgenas import host
from edgenas.device.profile import PROFILES, load_profile
from edgenas.errors import EdgenasError

NB201_DEVICES = ["1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
                 "essential_ph_1", "samsung_s7", "titanx_1", "titanx_32", "titanx_256", "gold_6240"]

GOOD = """\
    name: {name}
    description: a test board
    kind: cpu
    target: aarch64
    batch: 1
    hardware: {{cores: 4, clock_ghz: 1.5}}
    budgets: {{latency_ms: 20, memory_mb: 64}}
    measure: {{via: none}}
"""


def test_bundled_profiles_cover_the_required_devices():
    names = PROFILES.names()
    for required in ["host", "raspi4", "jetson-nano", "pixel", "a100", *NB201_DEVICES]:
        assert required in names
    kinds = {PROFILES.get(n).kind for n in names}
    assert {"cpu", "gpu", "mobile-cpu"} <= kinds


@pytest.mark.parametrize("name", NB201_DEVICES + ["raspi4", "jetson-nano", "pixel", "a100"])
def test_every_bundled_profile_resolves_its_target(name):
    p = PROFILES.get(name)
    t = p.resolved_target()
    assert t.tvm["kind"] in ("llvm", "cuda")
    assert p.batch == int(name.rsplit("_", 1)[1]) if name.split("_")[0] in ("1080ti", "titanx") else p.batch == 1
    assert p.hardware, "a device profile carries hardware descriptors for conditioning"


def test_host_profile_is_detected():
    p = PROFILES.get("host")
    assert p.target == host.machine()
    assert p.hardware["cores"] == host.cores()
    assert p.hardware["memory_mb"] > 0
    assert p.measure["via"] == "local"


def test_a_valid_profile_loads(write_yaml):
    p = load_profile(write_yaml("board", GOOD.format(name="board")))
    assert p.hardware == {"cores": 4, "clock_ghz": 1.5}
    assert isinstance(p.hardware["cores"], int)


@pytest.mark.parametrize("change, message", [
    (("kind: cpu", "kind: cpu\n    colour: red"), "unknown field 'colour'"),
    (("hardware: {cores: 4,", "hardware: {corse: 4,"), "unknown field 'hardware.corse'; did you mean 'hardware.cores'?"),
    (("    batch: 1\n", ""), "batch is missing; add it (a whole number)"),
    (("clock_ghz: 1.5", "clock_ghz: 1500 MHz"), "hardware.clock_ghz: '1500 MHz' carries a unit; the field is a plain "
                                                 "number in GHz: write clock_ghz: 1.5"),
    (("latency_ms: 20", "latency_ms: 0.02 s"), "write latency_ms: 20"),
    (("cores: 4", "cores: four"), "hardware.cores: expected a whole number, got 'four'"),
    (("cores: 4", "cores: 4.5"), "hardware.cores: expected a whole number, got 4.5"),
    (("kind: cpu", "kind: cpus"), "kind: 'cpus' is not one of cpu, gpu, mobile-cpu"),
    (("target: aarch64", "target: riscv64"), "target 'riscv64' is not a known target"),
    (("via: none", "via: rpc"), "measure.tracker is missing; 'via: rpc' needs tracker: HOST:PORT"),
    (("via: none", "via: rpc, tracker: nowhere, key: k"), "measure.tracker 'nowhere' is not HOST:PORT"),
    (("via: none", "via: local, key: k"), "measure.key only applies to 'via: rpc'"),
    (("name: board", "name: other"), "name 'other' differs from the file name"),
    (("batch: 1", "batch: 0"), "batch: 0 is below the minimum 1"),
    (("batch: 1", "batch: [1"), "not valid YAML at line"),
])
def test_bad_profiles_get_one_line_errors_naming_file_and_field(write_yaml, change, message):
    path = write_yaml("board", GOOD.format(name="board").replace(*change))
    with pytest.raises(EdgenasError) as e:
        load_profile(path)
    text = str(e.value)
    assert message in text
    assert text.startswith(str(path))
    assert "\n" not in text


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(EdgenasError, match="no profile 'raspi5'; did you mean 'raspi4'"):
        PROFILES.get("raspi5")
    for wrong_case in ("RASPI4", "Raspi4", "RaspI5"):
        with pytest.raises(EdgenasError, match=f"no profile '{wrong_case}'; did you mean 'raspi4'"):
            PROFILES.get(wrong_case)


def test_a_profile_by_the_path_of_its_file(write_yaml, tmp_path):
    path = write_yaml("board", GOOD.format(name="board"))
    assert "board" not in PROFILES.names(), "not on any profile folder: found by its path alone"
    assert PROFILES.get(str(path)).description == "a test board"
    with pytest.raises(EdgenasError, match="profile file nowhere/board.yaml does not exist; pass an existing YAML"):
        PROFILES.get("nowhere/board.yaml")


def test_user_folder_adds_and_overrides_profiles(write_yaml, monkeypatch):
    path = write_yaml("board", GOOD.format(name="board"))
    monkeypatch.setenv("EDGENAS_PROFILES", str(path.parent))
    assert "board" in PROFILES.names()
    assert PROFILES.get("board").description == "a test board"
    override = write_yaml("raspi4", GOOD.format(name="raspi4").replace("a test board", "my own pi"))
    assert override.parent == path.parent
    assert PROFILES.get("raspi4").description == "my own pi"
