"""The ``int8.onednn`` tactic of ``ai.lanner.QConv``: oneDNN's int8 convolution with its epilogue fused.

``torch.ops.onednn.qconv2d_pointwise`` (the kernel PyTorch's x86 Inductor INT8 path calls) reads an int8
activation as uint8 (ONNX int8 ``q`` ↔ ``q + 128``, as the rest of ``cpu_int8``), int8 per-channel weights
pre-packed once, and fuses what fbgemm's kernels cannot:

- a float output (the dequantize after the conv), so a conv that feeds float consumers still runs int8;
- activations ReLU, Clip (hardtanh, e.g. ReLU6), SiLU (swish) and HardSwish, on the float accumulator;
- a residual skip added before the activation when both the skip and the output are int8 (oneDNN's ``sum``
  post-op): the sum is formed on the dequantized accumulator, so it is exact, with no intermediate rounding.

The int8 tensors between kernels stay torch ``quint8``: the kernel reads their bytes through a uint8 view (no
copy) and writes an int8 result into a fresh ``quint8`` tensor's bytes. Weights are 7-bit on CPUs without VNNI
(``cpu_int8._weight_qmax``), for the same int16 saturation reason as fbgemm. ``cpu_int8`` imports this module
when it offers or builds the tactic (``ONEDNN_TACTIC`` is defined there).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from lanner.engine.backends.cpu_int8 import ZERO_OFFSET, _as_quint8, _weight_qmax
from lanner.engine.backends.cpu_kernels import Fn, KernelContext
from lanner.engine.ir.graph import Node
from lanner.engine.ops.quant import quantize_per_channel

_UNARY = {"": "none", "Relu": "relu", "Clip": "hardtanh", "Silu": "swish", "HardSwish": "hardswish"}


def available(torch: Any) -> bool:
    """oneDNN's int8 conv is in this torch build (x86 builds with mkldnn)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.onednn, "qconv2d_pointwise")


def onednn_plan(node: Node, ctx: KernelContext, geometry: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the kernel needs (unary post-op and its scalars, output and skip quantization), or None when it cannot
    run ``node``: no geometry, an activation oneDNN's int8 conv lacks, a residual it cannot fuse exactly."""
    if geometry is None or not available(ctx.torch) or len(node.inputs) > 4:
        return None
    act = node.attr("activation", "")
    lo, hi = float(node.attr("activation_alpha", 0.0)), float(node.attr("activation_beta", 0.0))
    unary = _UNARY.get(act)
    if unary is None or (act == "Clip" and not (math.isfinite(lo) and math.isfinite(hi))):
        return None
    y_scale, z_scale = float(node.attr("y_scale", 0.0)), float(node.attr("z_scale", 0.0))
    residual = node.attr("residual", "none")
    # oneDNN sums into the int8 output buffer, then applies ReLU or nothing: an int8 skip and an int8 output
    fusable = residual == "before_activation" and y_scale and z_scale and node.input(3) and unary in ("none", "relu")
    if residual != "none" and not fusable:
        return None
    return {
        **geometry,
        "unary": unary,
        "scalars": [lo, hi] if unary == "hardtanh" else [],
        "y_scale": y_scale,
        "y_zero": int(node.attr("y_zero_point", 0)),
        "z_scale": z_scale,
        "z_zero": int(node.attr("z_zero_point", 0)),
        "residual": residual != "none",
    }


def uint8_view(torch: Any, q: Any) -> Any:
    """The bytes of a quint8 tensor as a plain uint8 tensor (same storage, sizes and strides: no copy)."""
    return torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), q.storage_offset(), q.size(), q.stride())


def _packed(node: Node, ctx: KernelContext, plan: dict[str, Any], x_scale: float, x_zero: int) -> Any:
    torch = ctx.torch
    q, scale = quantize_per_channel(np.asarray(ctx.const(node.inputs[1])), 0, _weight_qmax())
    x_shape = list(ctx.value(node.inputs[0]).shape)  # type: ignore[union-attr, arg-type]
    if not isinstance(x_shape[0], int):
        x_shape[0] = 1
    w_scale = torch.from_numpy(scale)
    packed = torch.ops.onednn.qconv_prepack(
        torch.from_numpy(q), w_scale, x_scale, x_zero + ZERO_OFFSET, plan["stride"], plan["padding"],
        plan["dilation"], plan["groups"], x_shape,
    )  # fmt: skip
    return packed, w_scale


def onednn_conv(node: Node, ctx: KernelContext, plan: dict[str, Any]) -> Fn:
    """The kernel closure for ``node`` with ``plan`` (``onednn_plan``)."""
    torch = ctx.torch
    x_scale, x_zero = float(node.attr("x_scale")), int(node.attr("x_zero_point", 0))
    packed, w_scale = _packed(node, ctx, plan, x_scale, x_zero)
    w_zero = torch.zeros(w_scale.shape[0], dtype=torch.int32)
    bias = ctx.constants.get(node.input(2)) if node.input(2) else None
    geometry = (plan["stride"], plan["padding"], plan["dilation"], plan["groups"])
    op, unary, scalars = torch.ops.onednn.qconv2d_pointwise, plan["unary"], plan["scalars"]
    y_scale, y_zero = plan["y_scale"], plan["y_zero"] + ZERO_OFFSET
    x_zero_u8 = x_zero + ZERO_OFFSET

    def run(x: Any, *_: Any) -> Any:
        xu = uint8_view(torch, _as_quint8(torch, x, x_scale, x_zero))
        if not y_scale:  # float output: the dequantize is fused
            return op(
                xu,
                x_scale,
                x_zero_u8,
                packed,
                w_scale,
                w_zero,
                bias,
                *geometry,
                1.0,
                0,
                torch.float32,
                unary,
                scalars,
                "",
            )
        y = op(
            xu, x_scale, x_zero_u8, packed, w_scale, w_zero, bias, *geometry, y_scale, y_zero, None, unary, scalars, ""
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # quantized tensors are marked deprecated (still supported)
            return torch._make_per_tensor_quantized_tensor(y, y_scale, y_zero)

    if not plan["residual"]:
        return run
    z_scale, z_zero = plan["z_scale"], plan["z_zero"]
    binary, after = op.binary, None if unary == "none" else unary

    def run_residual(x: Any, _w: Any = None, _b: Any = None, z: Any = None) -> Any:
        xu = uint8_view(torch, _as_quint8(torch, x, x_scale, x_zero))
        z = _as_quint8(torch, z, z_scale, z_zero)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = torch._empty_affine_quantized(
                z.shape, scale=y_scale, zero_point=y_zero, dtype=torch.quint8, memory_format=torch.channels_last
            )
        accumulator = uint8_view(torch, out)
        accumulator.copy_(uint8_view(torch, z))  # oneDNN sums into this buffer: the skip's bytes, then the result
        binary(
            xu, x_scale, x_zero_u8, packed, w_scale, w_zero, accumulator, bias, *geometry, y_scale, y_zero, None,
            z_scale, z_zero + ZERO_OFFSET, "sum", 1.0, after, [], "",
        )  # fmt: skip
        return out

    return run_residual
