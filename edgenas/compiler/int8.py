"""int8: post-training static quantisation of an exported ONNX model, and the rewrite that makes TVM run its
convolutions and matrix products as integer kernels.

`quantize_onnx` writes onnxruntime's QDQ form of a float model (QuantizeLinear/DequantizeLinear around every
convolution and matrix product): int8 weights, symmetric per output channel; int8 activations, one scale and zero
point per tensor, calibrated on the arrays given (`CALIBRATIONS` names the methods). onnxruntime runs that file
with its integer kernels. TVM's ONNX frontend imports the same file as `dequantize -> float op -> quantize`, which
runs in float; `integer_kernels` rewrites each `conv2d(dequantize(x), dequantize(w))` and
`matmul(dequantize(x), permute_dims(dequantize(w)))` into the integer operator on the quantised tensors, int32
accumulation, and a float epilogue (zero-point correction, scale) that TVM fuses into the kernel with the bias and
the next quantize:

    sum_k (x_k - zx) w_k = sum_k x_k w_k - zx sum_k w_k      (x padded with its zero point, so padding is exact)

Activations are taken as uint8 (int8 + 128, the zero point with them), so x86's VNNI instruction (u8 x s8 -> s32,
`vpdpbusd`) applies. The result equals onnxruntime's on the QDQ file up to float rounding of the epilogue.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import EdgenasError

CALIBRATIONS = ("minmax", "entropy", "percentile")  # onnxruntime's calibration methods edgenas offers


def quantize_onnx(float_path: str | Path, out_path: str | Path, calibration: Iterable[np.ndarray],
                  method: str = "minmax") -> Path:
    """Write the QDQ int8 form of the float model at `float_path` to `out_path`, its activation ranges
    calibrated by `method` on the input arrays of `calibration` (each shaped as the model's input)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, \
        quantize_static

    if method not in CALIBRATIONS:
        raise EdgenasError(f"no calibration method '{method}'; choose one of {', '.join(CALIBRATIONS)}")
    name = onnx.load(str(float_path), load_external_data=False).graph.input[0].name
    batches = [{name: np.ascontiguousarray(x, dtype=np.float32)} for x in calibration]
    if not batches:
        raise EdgenasError("int8 calibration needs at least one input array; give calibration data")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = iter(batches)

        def get_next(self):
            return next(self.left, None)

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's advice to pre-process: edgenas's export did
    try:
        quantize_static(str(float_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    finally:
        logging.getLogger().setLevel(quiet)
    return Path(out_path)


def _value(const) -> np.ndarray:
    return (const.value if hasattr(const, "value") else const.data).numpy()


def _as_uint8(xq, zero: np.ndarray):
    """The quantised activation as uint8 and its zero point: int8 values shifted by 128."""
    from tvm import relax

    if zero.dtype == np.uint8:
        return xq, int(zero.reshape(-1)[0])
    shifted = relax.op.add(relax.op.astype(xq, "int16"), relax.const(np.int16(128)))
    return relax.op.astype(shifted, "uint8"), int(zero.reshape(-1)[0]) + 128


def _quantised(m, xq, sx, zx, wq, sw, zw) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(activation scale, weights int8, weight scales) where the match is one the integer kernel computes
    exactly: one activation scale and zero point, int8 weights with zero points 0."""
    scale_x, zero_x, w, scale_w, zero_w = (_value(m[p]) for p in (sx, zx, wq, sw, zw))
    if scale_x.size != 1 or zero_x.size != 1 or zero_x.dtype not in (np.uint8, np.int8) or w.dtype != np.int8 \
            or np.any(zero_w != 0):
        return None
    return scale_x.astype(np.float32).reshape(()), w, scale_w.astype(np.float32).reshape(-1)


def integer_kernels(mod):
    """`mod` (Relax, as TVM's ONNX frontend imports a QDQ model) with its quantised convolutions and matrix
    products as integer operators; other quantised operators stay as imported (float)."""
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    xq, sx, zx, wq, sw, zw = wildcard(), is_const(), is_const(), is_const(), is_const(), is_const()
    x = is_op("relax.dequantize")(xq, sx, zx)
    w = is_op("relax.dequantize")(wq, sw, zw)
    conv = is_op("relax.nn.conv2d")(x, w)
    matmul = is_op("relax.matmul")(x, is_op("relax.permute_dims")(w))

    def conv_rewrite(call, m):
        a = call.attrs
        found = _quantised(m, xq, sx, zx, wq, sw, zw)
        if found is None or a.data_layout != "NCHW" or a.kernel_layout != "OIHW":
            return call
        scale_x, weights, scale_w = found
        data, zero = _as_uint8(m[xq], _value(m[zx]))
        top, left, bottom, right = (int(p) for p in a.padding)
        if top or left or bottom or right:
            data = relax.op.nn.pad(data, [0, 0, 0, 0, top, bottom, left, right], pad_value=float(zero))
        acc = relax.op.nn.conv2d(data, relax.const(weights), a.strides, 0, a.dilation, a.groups, "NCHW", "OIHW",
                                 out_dtype="int32")
        out = weights.shape[0]
        correction = zero * weights.reshape(out, -1).astype(np.int32).sum(1)
        scale = np.broadcast_to(scale_x * scale_w, (out,)).astype(np.float32)
        return _epilogue(acc, correction.reshape(1, out, 1, 1), scale.reshape(1, out, 1, 1))

    def matmul_rewrite(call, m):
        found = _quantised(m, xq, sx, zx, wq, sw, zw)
        if found is None or _value(m[wq]).ndim != 2:
            return call
        scale_x, weights, scale_w = found  # weights (out, in), as Gemm's transB stores them
        data, zero = _as_uint8(m[xq], _value(m[zx]))
        acc = relax.op.matmul(data, relax.const(np.ascontiguousarray(weights.T)), out_dtype="int32")
        correction = zero * weights.astype(np.int32).sum(1)
        scale = np.broadcast_to(scale_x * scale_w, (weights.shape[0],)).astype(np.float32)
        return _epilogue(acc, correction, scale)

    for pattern, rewrite in ((conv, conv_rewrite), (matmul, matmul_rewrite)):
        mod["main"] = rewrite_call(pattern, rewrite, mod["main"])
    return mod


def _epilogue(acc, correction: np.ndarray, scale: np.ndarray):
    """(acc - correction) * scale in float32: the float value the dequantized operator computes."""
    from tvm import relax

    exact = relax.op.subtract(acc, relax.const(correction.astype(np.int32)))
    return relax.op.multiply(relax.op.astype(exact, "float32"), relax.const(scale.astype(np.float32)))
