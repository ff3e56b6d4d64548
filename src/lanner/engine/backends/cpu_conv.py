"""torch CPU kernels with tactics: Conv / FusedConv, ConvTranspose, Gemm / FusedGemm, MatMul.

A *tactic* is one way to run a node; ``TACTICS`` lists them per op, the first being the default the
builder keeps unless another is faster by a margin (``lanner.engine.tactics``):

- Conv/FusedConv (2-D): ``aten.nchw`` (``F.conv2d`` on a contiguous input), ``aten.nhwc`` (channels-last
  input and weight), ``onednn.fused`` (oneDNN's conv with weights re-ordered once at prepare time and the
  activation / residual add in the kernel's epilogue: ``torch.ops.mkldnn._convolution_pointwise``, the
  kernel Inductor's CPU freezing path uses), ``gemm.nhwc`` (1x1, stride 1, no padding, one group: the conv
  is a matrix product of the channels-last input viewed as (N·H·W, C_in); ``torch.addmm`` with the bias),
  ``onednn.blocked`` (oneDNN's direct conv on its own blocked layout, nChw8c on AVX2: the input becomes an
  opaque ``mkldnn`` tensor and so does the output; only ReLU or no activation and no residual. It wins on
  stems with few input channels, e.g. ResNet's 7x7 on RGB; ``cpu.py`` converts back to dense only where a
  consumer cannot take the blocked tensor, and MaxPool runs on it directly).
- Gemm/FusedGemm: ``aten.linear`` (``F.linear``) and ``aten.addmm`` (pre-transposed weight, ``torch.addmm``).

Every tactic computes the same function; they differ only in speed, so a plan's tactic choices never change
results beyond float rounding.
"""

from __future__ import annotations

import math
from typing import Any

from lanner.engine.backends.cpu_activations import inplace_activation_fn
from lanner.engine.backends.cpu_kernels import Fn, KernelContext, kernel
from lanner.engine.ir.graph import Node
from lanner.engine.ops.nn import window_pads

TACTICS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Conv"): ("aten.nchw", "aten.nhwc", "onednn.fused", "gemm.nhwc", "onednn.blocked"),
    ("ai.lanner", "FusedConv"): ("aten.nchw", "aten.nhwc", "onednn.fused", "gemm.nhwc", "onednn.blocked"),
    ("", "Gemm"): ("aten.linear", "aten.addmm"),
    ("ai.lanner", "FusedGemm"): ("aten.linear", "aten.addmm"),
}
"""Candidate tactics per op (default first)."""

_ONEDNN_UNARY = {"": "none", "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}
_ONEDNN_UNARY |= {"Silu": "swish", "LeakyRelu": "leaky_relu", "Clip": "hardtanh"}


def tactics_for(node: Node, ctx: KernelContext) -> tuple[str, ...]:
    """The tactics ``node`` can use here (only the default when the op or its shapes rule the others out)."""
    names = TACTICS.get(node.key, ())
    if node.op_type not in ("Conv", "FusedConv"):
        return names
    geometry = conv_geometry(node, ctx)
    if geometry is None:
        return names[:1]
    return tuple(
        t
        for t in names
        if (t != "onednn.fused" or _has_onednn(ctx))
        and (t != "gemm.nhwc" or _is_pointwise(node, ctx, geometry))
        and (t != "onednn.blocked" or _blocked_ok(node, ctx, geometry))
    )


BLOCKED_STEM_CHANNELS = 8
"""``onednn.blocked`` is offered to convs with fewer input channels than this (stems on RGB): there oneDNN's
direct blocked kernel beat the channels-last one (ResNet-18's 7x7 + MaxPool: ~10-30 % at batch 1), while on
wide convs torch's ``mkldnn_convolution`` re-orders the weight on every call (it takes no pre-packed weight)
and loses."""


def _blocked_ok(node: Node, ctx: KernelContext, g: dict[str, Any]) -> bool:
    """ReLU or no activation, no residual, static weights/bias, symmetric padding, a narrow input, oneDNN here."""
    w = ctx.const(node.inputs[1])
    return (
        _has_onednn(ctx)
        and node.attr("activation", "") in ("", "Relu")
        and node.attr("residual", "none") == "none"
        and len(node.inputs) < 4
        and g["prepad"] is None
        and not (node.input(2) and ctx.const(node.input(2)) is None)
        and w is not None
        and int(w.shape[1]) * g["groups"] < BLOCKED_STEM_CHANNELS
    )


def _is_pointwise(node: Node, ctx: KernelContext, g: dict[str, Any]) -> bool:
    """A 1x1 conv with stride 1, no padding and one group: a matrix product over the channels."""
    w = ctx.const(node.inputs[1])
    plain = g["stride"] == [1, 1] and g["groups"] == 1 and g["padding"] == [0, 0] and g["prepad"] is None
    return (
        plain
        and w is not None
        and tuple(w.shape[2:]) == (1, 1)
        and not (node.input(2) and ctx.const(node.input(2)) is None)
    )


def _has_onednn(ctx: KernelContext) -> bool:
    torch = ctx.torch
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _epilogue(node: Node, ctx: KernelContext) -> tuple[Fn | None, str]:
    """(in-place activation closure or None for identity, residual placement). In place because every caller
    applies it to the output its kernel has just allocated: no second buffer, one memory pass less."""
    name = node.attr("activation", "")
    act = inplace_activation_fn(
        ctx.torch, name, float(node.attr("activation_alpha", 0.0)), float(node.attr("activation_beta", 0.0))
    )
    return act, node.attr("residual", "none")


def _apply_epilogue(y: Any, z: Any, act: Fn | None, residual: str) -> Any:
    """Residual add and activation on ``y`` in place (``y`` is always a fresh kernel output, never an input)."""
    if z is not None and residual == "before_activation":
        y = y.add_(z)
    if act is not None:
        y = act(y)
    if z is not None and residual == "after_activation":
        y = y.add_(z)
    return y


def conv_geometry(node: Node, ctx: KernelContext) -> dict[str, Any] | None:
    """Static conv geometry for a 2-D conv with a constant weight; None when it is not one."""
    x, w = ctx.value(node.inputs[0]), ctx.const(node.inputs[1])
    if x is None or x.shape is None or w is None or w.ndim != 4 or not ctx.is_float(node.inputs[0]):
        return None
    spatial = x.shape[2:]
    if len(spatial) != 2 or not all(isinstance(d, int) for d in spatial):
        return None
    kernel_shape = list(node.attr("kernel_shape") or w.shape[2:])
    pads, _ = window_pads(node, spatial, kernel_shape)  # type: ignore[arg-type]
    symmetric = all(b == e for b, e in pads)
    return {
        "stride": [int(s) for s in node.attr("strides", [1, 1])],
        "dilation": [int(d) for d in node.attr("dilations", [1, 1])],
        "groups": int(node.attr("group", 1)),
        "padding": [b for b, _ in pads] if symmetric else [0, 0],
        "prepad": None if symmetric else [pads[1][0], pads[1][1], pads[0][0], pads[0][1]],
        "input_hw": [int(d) for d in spatial],
    }


@kernel("Conv")
@kernel("FusedConv", domain="ai.lanner")
def _conv(node: Node, ctx: KernelContext) -> Fn | None:
    geometry = conv_geometry(node, ctx)
    if geometry is None:
        return None
    tactic = ctx.tactic or "aten.nchw"
    if tactic == "gemm.nhwc" and _is_pointwise(node, ctx, geometry):
        return _gemm_conv(node, ctx)
    if tactic == "onednn.blocked" and _blocked_ok(node, ctx, geometry):
        return _blocked_conv(node, ctx, geometry)
    if tactic == "onednn.fused" and _has_onednn(ctx):
        fused = _onednn_conv(node, ctx, geometry)
        if fused is not None:
            return fused
    return _aten_conv(node, ctx, geometry, channels_last=tactic == "aten.nhwc")


def _weights(node: Node, ctx: KernelContext) -> tuple[Any, Any]:
    w = ctx.constants[node.inputs[1]]
    b = ctx.constants.get(node.input(2)) if node.input(2) else None
    if node.input(2) and b is None:
        raise ValueError("runtime conv bias")
    return w, b


def _aten_conv(node: Node, ctx: KernelContext, g: dict[str, Any], *, channels_last: bool) -> Fn | None:
    torch = ctx.torch
    F = torch.nn.functional
    if node.input(2) and ctx.const(node.input(2)) is None:
        return None
    w, b = _weights(node, ctx)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    w = w.contiguous(memory_format=fmt)
    stride, padding, dilation, groups, prepad = g["stride"], g["padding"], g["dilation"], g["groups"], g["prepad"]
    act, residual = _epilogue(node, ctx)
    if node.attr("activation") and act is None:
        return None

    def run(x: Any, *rest: Any) -> Any:
        x = x.contiguous(memory_format=fmt)
        if prepad is not None:
            x = F.pad(x, prepad)
        y = F.conv2d(x, w, b, stride, padding, dilation, groups)
        z = rest[2] if len(rest) > 2 else None
        return _apply_epilogue(y, z, act, residual)

    return run


def _gemm_conv(node: Node, ctx: KernelContext) -> Fn | None:
    torch = ctx.torch
    act, residual = _epilogue(node, ctx)
    if node.attr("activation") and act is None:
        return None
    w, b = _weights(node, ctx)
    w_t = w.reshape(w.shape[0], w.shape[1]).t().contiguous()  # (C_in, C_out)
    cl, addmm, mm = torch.channels_last, torch.addmm, torch.mm

    def run(x: Any, *rest: Any) -> Any:
        n, c, h, width = x.shape
        rows = x.contiguous(memory_format=cl).permute(0, 2, 3, 1).reshape(-1, c)  # a view: NHWC rows
        y = addmm(b, rows, w_t) if b is not None else mm(rows, w_t)
        y = y.view(n, h, width, -1).permute(0, 3, 1, 2)  # NCHW shape, channels-last memory
        return _apply_epilogue(y, rest[2] if len(rest) > 2 else None, act, residual)

    return run


def _onednn_conv(node: Node, ctx: KernelContext, g: dict[str, Any]) -> Fn | None:
    torch = ctx.torch
    name = node.attr("activation", "")
    unary = _ONEDNN_UNARY.get(name)
    alpha, beta = float(node.attr("activation_alpha", 0.0)), float(node.attr("activation_beta", 0.0))
    if unary is None or (name == "Clip" and not (math.isfinite(alpha) and math.isfinite(beta))):
        return None
    if g["prepad"] is not None or (node.input(2) and ctx.const(node.input(2)) is None):
        return None
    scalars = [alpha] if name == "LeakyRelu" else [alpha, beta] if name == "Clip" else []
    w, b = _weights(node, ctx)
    stride, padding, dilation, groups = g["stride"], g["padding"], g["dilation"], g["groups"]
    x_shape = ctx.value(node.inputs[0]).shape  # type: ignore[union-attr]
    batch = x_shape[0] if isinstance(x_shape[0], int) else 1  # type: ignore[index]
    input_size = [batch, int(w.shape[1]) * groups, *g["input_hw"]]
    packed = torch.ops.mkldnn._reorder_convolution_weight(w, padding, stride, dilation, groups, input_size)
    residual = node.attr("residual", "none")
    op = torch.ops.mkldnn._convolution_pointwise
    cl = torch.channels_last
    if residual == "before_activation" and unary not in ("none", "relu"):
        return None  # oneDNN's binary post-op is only defined with ReLU (or nothing) after the add
    if residual == "before_activation":
        binary, unary_after = op.binary, None if unary == "none" else unary

        def run_binary(x: Any, _w: Any, _b: Any = None, z: Any = None) -> Any:
            z = z.contiguous(memory_format=cl)
            return binary(x, z, packed, b, padding, stride, dilation, groups, "add", None, unary_after, [], None)

        return run_binary
    unary_op = op.default

    def run(x: Any, _w: Any, _b: Any = None, z: Any = None) -> Any:
        y = unary_op(x, packed, b, padding, stride, dilation, groups, unary, scalars, "")
        return y if z is None else y.add_(z)  # residual after the activation: in place on the fresh output

    return run


def _blocked_conv(node: Node, ctx: KernelContext, g: dict[str, Any]) -> Fn:
    """oneDNN's direct conv on blocked (``mkldnn``) tensors: dense input converted on entry, blocked output
    (marked ``mkldnn_out`` so the executable converts it back where a consumer needs dense)."""
    torch = ctx.torch
    w, b = _weights(node, ctx)
    stride, padding, dilation, groups = g["stride"], g["padding"], g["dilation"], g["groups"]
    x_shape = ctx.value(node.inputs[0]).shape  # type: ignore[union-attr]
    batch = x_shape[0] if isinstance(x_shape[0], int) else 1  # type: ignore[index]
    size = [batch, int(w.shape[1]) * groups, *g["input_hw"]]
    packed = torch._C._nn.mkldnn_reorder_conv2d_weight(w.to_mkldnn(), padding, stride, dilation, groups, size)
    conv, relu = torch.mkldnn_convolution, node.attr("activation", "") == "Relu"

    def run(x: Any, *_: Any) -> Any:
        y = conv(x if x.is_mkldnn else x.to_mkldnn(), packed, b, padding, stride, dilation, groups)
        return y.relu_() if relu else y

    run.mkldnn_out = True  # type: ignore[attr-defined]
    run.mkldnn_in = True  # type: ignore[attr-defined]
    return run


@kernel("ConvTranspose")
def _conv_transpose(node: Node, ctx: KernelContext) -> Fn | None:
    x, w = ctx.value(node.inputs[0]), ctx.const(node.inputs[1])
    if x is None or x.shape is None or w is None or w.ndim != 4 or not ctx.is_float(node.inputs[0]):
        return None
    if node.attr("output_shape") is not None or node.attr("auto_pad", "NOTSET") != "NOTSET":
        return None
    pads = [int(p) for p in node.attr("pads", [0, 0, 0, 0])]
    if pads[:2] != pads[2:] or (node.input(2) and ctx.const(node.input(2)) is None):
        return None
    weight, bias = _weights(node, ctx)
    F = ctx.torch.nn.functional
    stride = [int(s) for s in node.attr("strides", [1, 1])]
    out_pad = [int(p) for p in node.attr("output_padding", [0, 0])]
    dilation = [int(d) for d in node.attr("dilations", [1, 1])]
    groups = int(node.attr("group", 1))
    return lambda t, *_: F.conv_transpose2d(t, weight, bias, stride, pads[:2], out_pad, groups, dilation)


@kernel("Gemm")
@kernel("FusedGemm", domain="ai.lanner")
def _gemm(node: Node, ctx: KernelContext) -> Fn | None:
    torch = ctx.torch
    b_data, c_name = ctx.const(node.inputs[1]), node.input(2)
    if b_data is None or node.attr("transA", 0) or not ctx.is_float(node.inputs[0]):
        return None
    if c_name and ctx.const(c_name) is None:
        return None
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    weight = ctx.constants[node.inputs[1]]
    weight = weight if node.attr("transB", 0) else weight.t()  # (out, in), as F.linear wants
    bias = ctx.constants[c_name] * beta if c_name else None
    if alpha != 1.0:
        weight = weight * alpha
    act, residual = _epilogue(node, ctx)
    if node.attr("activation") and act is None:
        return None
    if ctx.tactic == "aten.addmm" and bias is not None:
        w_t, addmm = weight.t().contiguous(), torch.addmm

        def run_addmm(a: Any, *rest: Any) -> Any:
            y = addmm(bias, a, w_t)  # addmm broadcasts C as ONNX Gemm does
            return _apply_epilogue(y, rest[2] if len(rest) > 2 else None, act, residual)

        return run_addmm
    weight, linear = weight.contiguous(), torch.nn.functional.linear
    vector_bias = bias if bias is not None and bias.dim() == 1 and bias.shape[0] == weight.shape[0] else None
    other_bias = bias if vector_bias is None else None

    def run(a: Any, *rest: Any) -> Any:
        y = linear(a, weight, vector_bias)
        if other_bias is not None:
            y = y + other_bias
        return _apply_epilogue(y, rest[2] if len(rest) > 2 else None, act, residual)

    return run


@kernel("MatMul")
def _matmul(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    b = ctx.constants.get(node.inputs[1])
    matmul = ctx.torch.matmul
    if b is not None:
        b = b.contiguous()
        return lambda a, _: matmul(a, b)
    return matmul
