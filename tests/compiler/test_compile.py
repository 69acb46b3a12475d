import numpy as np
import pytest

from edgenas import host
from edgenas.compiler.compile import compile_onnx
from edgenas.compiler.export import export_onnx
from edgenas.compiler.tune import randomize_batch_norms
from edgenas.device.profile import PROFILES

from ..conftest import ARCH

EM_X86_64, EM_AARCH64 = 62, 183


def elf_machine(path) -> int:
    header = open(path, "rb").read(20)
    assert header[:4] == b"\x7fELF" and header[4] == 2, "a 64-bit ELF file"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def small_onnx(small, tmp_path_factory):
    return export_onnx(randomize_batch_norms(small.build(ARCH)), small.input_shape,
                       tmp_path_factory.mktemp("onnx") / "small.onnx")


def test_full_nb201_network_runs_in_tvm_and_matches_pytorch(nb201, tmp_path):
    import tvm
    from tvm import relax

    exported = export_onnx(randomize_batch_norms(nb201.build(ARCH), seed=7), nb201.input_shape,
                           tmp_path / "model.onnx")
    target = PROFILES.get("host").resolved_target()
    lib = compile_onnx(exported.path, target, tmp_path / "model.so")
    assert elf_machine(lib.path) == {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}[host.machine()]
    assert len(lib.kernels) > 10 and lib.modules[0] == "llvm"
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib.path)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(exported.reference_input)).numpy()
    assert got.shape == (1, 10)
    assert np.max(np.abs(got - exported.reference_outputs[0])) <= 1e-4


def test_aarch64_library_is_an_arm_elf(small_onnx, tmp_path):
    target = PROFILES.get("raspi4").resolved_target()
    assert target.tvm["mcpu"] == "cortex-a72" and target.tvm["mtriple"] == "aarch64-linux-gnu"
    lib = compile_onnx(small_onnx.path, target, tmp_path / "model.so")
    assert elf_machine(lib.path) == EM_AARCH64


def test_cuda_library_carries_cuda_kernels(small_onnx, tmp_path):
    target = PROFILES.get("a100").resolved_target()
    lib = compile_onnx(small_onnx.path, target, tmp_path / "model.so")
    assert lib.modules == ("llvm", "cuda")
    assert elf_machine(lib.path) == EM_X86_64
    assert b"sm_80" in lib.path.read_bytes() or b"__global__" in lib.path.read_bytes()


def test_jetson_library_has_aarch64_host_code_and_cuda_kernels(small_onnx, tmp_path):
    target = PROFILES.get("jetson-nano").resolved_target()
    assert target.host["mcpu"] == "cortex-a57" and target.tvm["arch"] == "sm_53"
    lib = compile_onnx(small_onnx.path, target, tmp_path / "model.so")
    assert lib.modules == ("llvm", "cuda")
    assert elf_machine(lib.path) == EM_AARCH64


def test_silu_epilogues_use_the_vectorisable_sigmoid_and_stay_exact(tmp_path):
    """SiLU after a convolution: its sigmoid goes through fast_tanh (no scalar expf per element), fused into the
    convolution's kernel, and matches PyTorch's even where the input saturates the sigmoid."""
    import torch
    import tvm
    from tvm import relax

    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.SiLU()).eval()
    with torch.no_grad():
        net[0].weight.mul_(100)  # pre-activations far beyond the sigmoid's range, both ways
    exported = export_onnx(net, (1, 4, 12, 10), tmp_path / "silu.onnx")
    lib = compile_onnx(exported.path, PROFILES.get("host").resolved_target(), tmp_path / "silu.so")
    assert any("conv2d" in k and "fast_sigmoid" in k for k in lib.kernels), lib.kernels
    assert not any("tir_sigmoid" in k for k in lib.kernels), lib.kernels
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib.path)), tvm.cpu())
    x = exported.reference_input
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    with torch.no_grad():
        hidden = net[0](torch.from_numpy(x))
        expected = net(torch.from_numpy(x)).numpy()
    assert hidden.max() > 88 and hidden.min() < -88, "the test reaches fast_tanh's clamped range (|x / 2| > 9)"
    assert np.max(np.abs(got - expected) / np.maximum(1, np.abs(expected))) <= 1e-5


def test_a_relu6_follows_the_layout_and_fuses_into_its_convolution(tmp_path):
    """Clip (ReLU6) as imported is two opaque kernels that ConvertLayout wrapped in transposes; as Relax's
    maximum and minimum it fuses into the convolution's epilogue."""
    import torch
    import tvm
    from tvm import relax

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU6(),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.ReLU6()).eval()
    exported = export_onnx(net, (1, 3, 16, 16), tmp_path / "relu6.onnx")
    lib = compile_onnx(exported.path, PROFILES.get("host").resolved_target(), tmp_path / "relu6.so")
    convs = [k for k in lib.kernels if "conv2d" in k]
    assert len(convs) == 2 and all("maximum" in k and "minimum" in k for k in convs), lib.kernels
    assert not [k for k in lib.kernels if "maximum" in k and "conv2d" not in k], lib.kernels
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib.path)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(exported.reference_input)).numpy()
    assert np.max(np.abs(got - exported.reference_outputs[0])) <= 1e-5
