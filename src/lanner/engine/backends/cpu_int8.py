"""INT8 kernels of the ``cpu`` backend: QuantizeLinear, DequantizeLinear and ``ai.lanner.QConv``.

Int8 tensors between layers are torch ``quint8`` quantized tensors with zero point ``z + 128`` (ONNX int8
``q`` and quint8 ``q + 128`` are the same number line, and the int8 range [-128, 127] maps onto [0, 255]),
channels-last, so a chain of ``QConv`` nodes hands int8 data from one quantized kernel to the next: the
activation is quantized once where the chain starts (``QuantizeLinear``) and dequantized where it ends.
``cpu.py`` turns such tensors back into numpy int8 for graph outputs, ``run_all`` and numpy fallbacks.

``QConv`` tactics (the builder times them, ``tactics.py``; an INT8 kernel slower than FP32 is not chosen):

- ``int8.fbgemm``: ``torch.ops.quantized.conv2d[_relu]`` with weights pre-packed once (per-channel int8),
  the requant to the output scale in the kernel's epilogue. Offered when the output is int8 (``y_scale``),
  the activation is none, Relu, or a Clip that saturation makes a Relu (ReLU6 with ``y_scale * 127 <= 6``,
  what calibration gives), and there is no residual input.
- ``int8.onednn``: oneDNN's int8 conv (``cpu_int8_onednn.py``): also float outputs, ReLU6 / SiLU / HardSwish
  epilogues and an int8 residual skip, all fused and exact.
- ``fp32:<tactic>``: dequantize, then the FP32 conv kernel ``<tactic>`` of ``cpu_conv.py`` (``aten.nchw``,
  ``onednn.fused``, ...) with the dequantized weights and the epilogue, then re-quantize when the output is
  int8: the QDQ arithmetic as ONNX Runtime runs it unfused, and the only choice for float-output convs.

Weight precision on CPUs without VNNI: fbgemm's AVX2 kernels add pairs of u8·s8 products in saturating
int16 (``vpmaddubsw``), which overflows with full-range weights and activations. There the int8 tactic
halves the weights to 7 bits (scale doubled), as oneDNN does on the same CPUs; with VNNI they stay 8-bit, except
in fbgemm's depthwise and grouped kernels, which have no VNNI path (``_weight_qmax``).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np

from lanner.engine.backends.cpu_kernels import Fn, KernelContext, kernel
from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.quant import scalar_int8_params
from lanner.engine.ops.registry import LANNER_DOMAIN

QCONV = (LANNER_DOMAIN, "QConv")
INT8_TACTIC = "int8.fbgemm"
ONEDNN_TACTIC = "int8.onednn"  # cpu_int8_onednn.py
FP32_PREFIX = "fp32:"
FP32_TACTIC = "fp32:aten.nchw"  # the FP32 default; every FusedConv tactic is offered as ``fp32:<tactic>``
ZERO_OFFSET = 128  # ONNX int8 zero point z ↔ torch quint8 zero point z + 128


def to_numpy_int8(tensor: Any) -> np.ndarray:
    """A quint8 tensor made here → the ONNX int8 array it stands for (NCHW, C order)."""
    values = tensor.int_repr().contiguous().numpy().astype(np.int16) - ZERO_OFFSET
    return values.astype(np.int8)


def _quantize(torch: Any, x: Any, scale: float, zero: int) -> Any:
    """FP32 → quint8 (round half to even, saturate), channels-last for 4-D inputs."""
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch marks quantized tensors deprecated (still supported)
        return torch.quantize_per_tensor(x, scale, zero + ZERO_OFFSET, torch.quint8)


def _dequantize(torch: Any, x: Any, scale: float, zero: int) -> Any:
    """int8 (quint8 made here, or a plain int8 tensor) → FP32 ``(x - zero) * scale``."""
    if x.is_quantized:
        if x.q_scale() == scale and x.q_zero_point() == zero + ZERO_OFFSET:
            return x.dequantize()
        return (x.int_repr().to(torch.float32) - (zero + ZERO_OFFSET)) * np.float32(scale)
    return (x.to(torch.float32) - zero) * np.float32(scale)


@kernel("QuantizeLinear")
def _quantize_linear(node: Node, ctx: KernelContext) -> Fn | None:
    params = scalar_int8_params(ctx.const, node)
    if params is None or not ctx.is_float(node.inputs[0]):
        return None  # uint8 / per-axis: the numpy reference kernel
    scale, zero = params
    torch = ctx.torch
    return lambda x, *_: _quantize(torch, x, scale, zero)


@kernel("DequantizeLinear")
def _dequantize_linear(node: Node, ctx: KernelContext) -> Fn | None:
    params = scalar_int8_params(ctx.const, node)
    value = ctx.value(node.inputs[0])
    if params is None or value is None or value.dtype != np.int8:
        return None
    scale, zero = params
    torch = ctx.torch
    return lambda x, *_: _dequantize(torch, x, scale, zero)


def tactics_for(node: Node, ctx: KernelContext) -> tuple[str, ...]:
    """The int8 kernels that can run ``node`` (``int8.fbgemm``, ``int8.onednn``), then the FP32 tactics."""
    from lanner.engine.backends.cpu_int8_onednn import onednn_plan

    int8: tuple[str, ...] = (INT8_TACTIC,) if _int8_plan(node, ctx) is not None else ()
    if onednn_plan(node, ctx, _geometry(node, ctx)) is not None:
        int8 += (ONEDNN_TACTIC,)
    return (*int8, *_fp32_tactics(node, ctx))


def _geometry(node: Node, ctx: KernelContext) -> dict[str, Any] | None:
    """Stride/padding/dilation/groups of a 2-D conv with static spatial dims and symmetric pads: ``cpu_conv``'s
    geometry of the FP32 conv this QConv computes (asymmetric pads would need a pre-pad the int8 kernel lacks)."""
    from lanner.engine.backends.cpu_conv import conv_geometry

    view = _float_view(node, ctx)
    g = conv_geometry(*view) if view is not None else None
    if g is None or g["prepad"] is not None:
        return None
    return {key: g[key] for key in ("stride", "padding", "dilation", "groups")}


def _int8_plan(node: Node, ctx: KernelContext) -> dict[str, Any] | None:
    """What the int8 kernel needs (geometry, relu or not), or None when it cannot run ``node``'s epilogue
    (a residual input, a float output, an activation other than none/Relu/saturating ReLU6)."""
    y_scale = float(node.attr("y_scale", 0.0))
    if not y_scale or node.attr("residual", "none") != "none" or len(node.inputs) > 3:
        return None
    if not hasattr(ctx.torch.ops.quantized, "conv2d_prepack"):
        return None
    geometry = _geometry(node, ctx)
    if geometry is None:
        return None
    act, y_zero = node.attr("activation", ""), int(node.attr("y_zero_point", 0))
    lo, hi = float(node.attr("activation_alpha", 0.0)), float(node.attr("activation_beta", 0.0))
    # Clip(0, hi) equals Relu after saturation when hi maps at or above int8's top: the output is int8 anyway.
    relu6_is_relu = act == "Clip" and lo == 0.0 and (math.isinf(hi) or round(hi / y_scale) + y_zero >= 127)
    if act not in ("", "Relu") and not relu6_is_relu:
        return None
    return {**geometry, "relu": act != "", "y_scale": y_scale, "y_zero": y_zero}


def _weight_qmax(groups: int = 1) -> int:
    """The int8 weights' largest magnitude: 127 with VNNI, 63 without (see the module docstring).

    fbgemm's depthwise and grouped kernels (``groups > 1``) multiply with ``vpmaddubsw`` on VNNI CPUs too, so they
    keep 7-bit weights everywhere: with 8-bit ones a MobileNetV2 plan on a Xeon with AVX-512 VNNI was 0.26-0.28
    relative L2 off the QDQ model (docs/benchmarks.md, 2026-12-01 eighth session).
    """
    return 127 if _has_vnni() and groups == 1 else 63


@functools.lru_cache(maxsize=1)
def _has_vnni() -> bool:
    """True when the CPU has 8-bit dot-product instructions (AVX-512 VNNI or AVX-VNNI): no int16 saturation."""
    from lanner.engine.fingerprint import device_fingerprint

    flags = {str(f).lower() for f in device_fingerprint().get("isa", [])}
    return bool(flags & {"avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni", "amx_int8"})


def _packed_weights(node: Node, ctx: KernelContext, plan: dict[str, Any]) -> Any:
    """Per-channel int8 weights (7-bit without VNNI, see module docstring), pre-packed with the FP32 bias."""
    torch = ctx.torch
    weight = np.asarray(ctx.const(node.inputs[1]), dtype=np.float32)
    qmax = _weight_qmax(plan["groups"])
    amax = np.abs(weight).reshape(weight.shape[0], -1).max(axis=1)
    scale = np.where(amax > 0, amax, 1.0).astype(np.float64) / qmax
    bias = ctx.constants.get(node.input(2)) if node.input(2) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zeros = torch.zeros(weight.shape[0], dtype=torch.long)
        wq = torch.quantize_per_channel(torch.from_numpy(weight), torch.from_numpy(scale), zeros, 0, torch.qint8)
        return torch.ops.quantized.conv2d_prepack(
            wq, bias, plan["stride"], plan["padding"], plan["dilation"], plan["groups"]
        )


@kernel("QConv", domain=LANNER_DOMAIN)
def _qconv(node: Node, ctx: KernelContext) -> Fn | None:
    plan = _int8_plan(node, ctx) if ctx.tactic == INT8_TACTIC else None
    if plan is not None:
        return _int8_conv(node, ctx, plan)
    if ctx.tactic == ONEDNN_TACTIC:
        from lanner.engine.backends.cpu_int8_onednn import onednn_conv, onednn_plan

        plan = onednn_plan(node, ctx, _geometry(node, ctx))
        if plan is not None:
            return onednn_conv(node, ctx, plan)
    return _fp32_conv(node, ctx)


def _as_quint8(torch: Any, x: Any, scale: float, zero: int) -> Any:
    """``x`` as the quint8 tensor this backend passes between int8 kernels, at ``scale``/``zero`` (ONNX int8)."""
    if not x.is_quantized or x.q_scale() != scale or x.q_zero_point() != zero + ZERO_OFFSET:
        # an int8 graph input, a numpy fallback's output, or a Q whose scale differs from this DQ's
        x = _quantize(torch, _dequantize(torch, x, scale, zero), scale, zero)
    return x


def _int8_conv(node: Node, ctx: KernelContext, plan: dict[str, Any]) -> Fn:
    torch = ctx.torch
    packed = _packed_weights(node, ctx, plan)
    x_scale, x_zero = float(node.attr("x_scale")), int(node.attr("x_zero_point", 0))
    y_scale, y_zero = plan["y_scale"], plan["y_zero"] + ZERO_OFFSET
    op = torch.ops.quantized.conv2d_relu if plan["relu"] else torch.ops.quantized.conv2d

    def run(x: Any, *_: Any) -> Any:
        return op(_as_quint8(torch, x, x_scale, x_zero), packed, y_scale, y_zero)

    return run


_QUANT_ATTRS = ("x_scale", "x_zero_point", "y_scale", "y_zero_point", "z_scale", "z_zero_point")


def _float_view(node: Node, ctx: KernelContext) -> tuple[Node, KernelContext] | None:
    """The ``FusedConv`` a QConv computes on its dequantized input, with a context where its input and output
    are float32: so the FP32 tactics (and kernels) of ``cpu_conv.py`` serve QConv's FP32 path unchanged."""
    x, y = ctx.value(node.inputs[0]), ctx.value(node.outputs[0])
    if x is None or y is None:
        return None
    f32 = np.dtype(np.float32)
    values = {**ctx.graph.values, x.name: Value(x.name, f32, x.shape), y.name: Value(y.name, f32, y.shape)}
    z = ctx.value(node.input(3)) if node.input(3) else None
    if z is not None:
        values[z.name] = Value(z.name, f32, z.shape)
    attrs = {k: v for k, v in node.attrs.items() if k not in _QUANT_ATTRS}
    fused = node.evolve(op_type="FusedConv", attrs=attrs)
    return fused, KernelContext(ctx.graph.replace(values=values), ctx.torch, ctx.constants, ctx.tactic)


def _fp32_tactics(node: Node, ctx: KernelContext) -> tuple[str, ...]:
    """``fp32:<FusedConv tactic>`` for every FP32 conv tactic that can run the dequantized conv."""
    from lanner.engine.backends.cpu_conv import tactics_for as conv_tactics

    view = _float_view(node, ctx)
    names = conv_tactics(*view) if view is not None else ()
    return tuple(f"{FP32_PREFIX}{t}" for t in names) or (FP32_TACTIC,)


def _fp32_conv(node: Node, ctx: KernelContext) -> Fn | None:
    """Dequantize → an FP32 conv kernel of ``cpu_conv.py`` (conv + epilogue) → re-quantize if the output is int8."""
    from lanner.engine.backends.cpu_kernels import KERNELS

    view = _float_view(node, ctx)
    if view is None:
        return None
    fused, fctx = view
    fctx.tactic = ctx.tactic[len(FP32_PREFIX) :] if ctx.tactic.startswith(FP32_PREFIX) else ""
    inner = KERNELS[(LANNER_DOMAIN, "FusedConv")](fused, fctx)
    if inner is None:
        return None
    torch = ctx.torch
    x_scale, x_zero = float(node.attr("x_scale")), int(node.attr("x_zero_point", 0))
    y_scale, y_zero = float(node.attr("y_scale", 0.0)), int(node.attr("y_zero_point", 0))
    z_scale, z_zero = float(node.attr("z_scale", 0.0)), int(node.attr("z_zero_point", 0))

    def run(x: Any, *rest: Any) -> Any:
        if z_scale and len(rest) > 2 and rest[2] is not None:
            rest = (*rest[:2], _dequantize(torch, rest[2], z_scale, z_zero), *rest[3:])
        y = inner(_dequantize(torch, x, x_scale, x_zero), *rest)
        if y.is_mkldnn:  # a oneDNN blocked-layout result: int8 and FP32 consumers want it dense
            y = y.to_dense()
        return _quantize(torch, y, y_scale, y_zero) if y_scale else y

    return run
