import pytest

from edgenas import host
from edgenas.device.target import TARGETS, load_target, resolve
from edgenas.errors import EdgenasError


def test_bundled_targets():
    assert {"x86_64", "aarch64", "cuda", "cuda-aarch64"} <= set(TARGETS.names())


@pytest.mark.skipif(host.machine() != "x86_64", reason="detects an x86-64 host")
def test_host_target_uses_the_real_cpu_features():
    import tvm
    from tvm.target import codegen

    t = resolve(TARGETS.get("x86_64"))
    assert t.tvm["mcpu"] == codegen.llvm_get_system_cpu()
    assert t.tvm["num-cores"] == host.cores()
    assert t.compiler is None
    with t.tvm_target():
        features = {str(f) for f in codegen.llvm_get_cpu_features()}
    flags = host.cpu_flags()
    for flag, feature in host.X86_SIMD_FLAGS.items():
        assert (flag in flags) == (feature in features), f"{flag} in /proc/cpuinfo vs {feature} in LLVM target"
    assert tvm.target.Target(t.tvm).kind.name == "llvm"


def test_cross_target_needs_its_toolchain(write_yaml):
    path = write_yaml("mips", """\
        name: mips
        description: test
        machine: aarch64
        device: cpu
        tvm: {kind: llvm, mtriple: aarch64-linux-gnu}
        cross_compiler: no-such-gcc
        toolchain_package: gcc-no-such
    """, folder="targets")
    if host.machine() == "aarch64":
        pytest.skip("this machine builds aarch64 natively")
    with pytest.raises(EdgenasError, match="needs the cross compiler 'no-such-gcc'.*apt-get install gcc-no-such"):
        resolve(load_target(path))


def test_cuda_arch_auto_needs_a_gpu_or_an_override():
    import tvm

    cuda = TARGETS.get("cuda")
    assert resolve(cuda, {"arch": "sm_80"}).tvm["arch"] == "sm_80"
    if not tvm.cuda(0).exist:
        with pytest.raises(EdgenasError, match="cannot detect the CUDA arch.*set target_options.arch"):
            resolve(cuda)


def test_bad_target_file(write_yaml):
    path = write_yaml("t", "name: t\ndescription: d\nmachine: sparc\ndevice: cpu\ntvm: {kind: llvm}\n",
                      folder="targets")
    with pytest.raises(EdgenasError, match="machine: 'sparc' is not one of x86_64, aarch64"):
        load_target(path)
