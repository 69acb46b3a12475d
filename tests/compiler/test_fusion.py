"""Prologue fusion on a real lowered NB201 network: the ReLUs before convolutions stop being kernels."""
from edgenas.compiler.compile import lower
from edgenas.compiler.export import export_onnx
from edgenas.compiler.tune import randomize_batch_norms
from edgenas.device.profile import PROFILES

from ..conftest import ARCH


def called_kernels(mod) -> list[str]:
    import tvm
    from tvm import relax

    call_tir = tvm.ir.Op.get("relax.call_tir")
    names = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            if isinstance(binding.value, relax.Call) and binding.value.op == call_tir:
                names.append(binding.value.args[0].name_hint)
    return names


def test_relus_before_convolutions_are_fused_into_them(small, tmp_path, monkeypatch):
    from tvm import relax

    import edgenas.compiler.compile as compile_module

    exported = export_onnx(randomize_batch_norms(small.build(ARCH)), small.input_shape, tmp_path / "m.onnx")
    target = PROFILES.get("host").resolved_target()
    fused = lower(exported.path, target)
    monkeypatch.setattr(compile_module, "fuse_elementwise_prologues", lambda mod: mod)
    plain = lower(exported.path, target)
    before, after = called_kernels(plain), called_kernels(fused)
    relus = [k for k in before if k.startswith("relu")]
    assert relus, "the unfused module calls ReLU kernels of their own"
    assert not any(k.startswith("relu") for k in after)
    assert len(after) == len(before) - len(relus)
    assert any(k.startswith("fused_relu") and "conv2d" in k for k in after)
    # every kernel the new main calls exists, and nothing unused is left behind
    prim = {gv.name_hint for gv, f in fused.functions.items() if not isinstance(f, relax.Function)}
    assert set(after) == prim
