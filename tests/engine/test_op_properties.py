"""Property tests: random geometries for the subtle ops (Conv, pools, Slice, Resize, Pad) vs ONNX Runtime."""

from __future__ import annotations

import numpy as np
from engine_testkit import assert_outputs_close, make_model, run_ort, run_reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import helper

F32 = np.float32
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def check(node, feeds: dict, inits: dict | None = None, opset: int = 17) -> None:  # type: ignore[no-untyped-def]
    model = make_model([node], {k: (v.dtype, v.shape) for k, v in feeds.items()}, list(node.output), inits, opset=opset)
    assert_outputs_close(run_reference(model, feeds), run_ort(model, feeds))


def image(n: int, c: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * 100 + w).standard_normal((n, c, h, w)).astype(F32)


@SETTINGS
@given(
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    pads=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    groups=st.sampled_from([1, 2]),
    hw=st.tuples(st.integers(6, 11), st.integers(6, 11)),
)
def test_conv_geometry(k: int, stride: int, dilation: int, pads: list[int], groups: int, hw: tuple[int, int]) -> None:
    assume(all((k - 1) * dilation + 1 <= n + pads[i] + pads[i + 2] for i, n in enumerate(hw)))  # else invalid model
    w = np.random.default_rng(k).standard_normal((4, 4 // groups, k, k)).astype(F32)
    attrs = {"strides": [stride] * 2, "dilations": [dilation] * 2, "pads": pads, "group": groups}
    check(helper.make_node("Conv", ["x", "w"], ["y"], **attrs), {"x": image(1, 4, *hw)}, {"w": w})


@SETTINGS
@given(
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    out_pad=st.integers(0, 1),
    hw=st.tuples(st.integers(2, 6), st.integers(2, 6)),
)
def test_conv_transpose_geometry(k: int, stride: int, pads: list[int], out_pad: int, hw: tuple[int, int]) -> None:
    out_pad = min(out_pad, stride - 1)  # ONNX requires output_padding < stride
    assume(all(stride * (n - 1) + out_pad + k - pads[i] - pads[i + 2] > 0 for i, n in enumerate(hw)))
    w = np.random.default_rng(k).standard_normal((3, 2, k, k)).astype(F32)
    attrs = {"strides": [stride] * 2, "pads": pads, "output_padding": [out_pad] * 2}
    check(helper.make_node("ConvTranspose", ["x", "w"], ["y"], **attrs), {"x": image(1, 3, *hw)}, {"w": w})


@SETTINGS
@given(
    op=st.sampled_from(["MaxPool", "AveragePool"]),
    k=st.integers(2, 3),
    stride=st.integers(1, 3),
    pad=st.integers(0, 1),
    ceil_mode=st.integers(0, 1),
    include_pad=st.integers(0, 1),
    hw=st.tuples(st.integers(5, 10), st.integers(5, 10)),
)
def test_pool_geometry(
    op: str, k: int, stride: int, pad: int, ceil_mode: int, include_pad: int, hw: tuple[int, int]
) -> None:
    attrs = {"kernel_shape": [k, k], "strides": [stride] * 2, "pads": [pad] * 4, "ceil_mode": ceil_mode}
    if op == "AveragePool":
        attrs["count_include_pad"] = include_pad
    check(helper.make_node(op, ["x"], ["y"], **attrs), {"x": image(1, 2, *hw)})


@SETTINGS
@given(
    start=st.integers(-8, 8),
    end=st.integers(-9, 9),
    step=st.sampled_from([-3, -2, -1, 1, 2, 3]),
    axis=st.integers(-2, 1),
)
def test_slice(start: int, end: int, step: int, axis: int) -> None:
    inits = {k: np.array([v], np.int64) for k, v in {"s": start, "e": end, "a": axis, "t": step}.items()}
    x = np.random.default_rng(0).standard_normal((6, 7)).astype(F32)
    check(helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"]), {"x": x}, inits)


@SETTINGS
@given(
    mode=st.sampled_from(["nearest", "linear", "cubic"]),
    coord=st.sampled_from(["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]),
    exclude_outside=st.integers(0, 1),
    nearest=st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
    scales=st.tuples(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 3.0]), st.sampled_from([0.6, 1.0, 1.25, 2.0])),
    hw=st.tuples(st.integers(2, 7), st.integers(2, 7)),
)
def test_resize(
    mode: str, coord: str, exclude_outside: int, nearest: str, scales: tuple[float, float], hw: tuple[int, int]
) -> None:
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest}
    if mode == "cubic":
        attrs.update(exclude_outside=exclude_outside, cubic_coeff_a=-0.5 if exclude_outside else -0.75)
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    check(node, {"x": image(1, 2, *hw)}, {"scales": np.array([1, 1, *scales], F32)})


@SETTINGS
@given(
    mode=st.sampled_from(["constant", "reflect", "edge"]),
    pads=st.lists(st.integers(-1, 2), min_size=4, max_size=4),
)
def test_pad(mode: str, pads: list[int]) -> None:
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(F32)
    check(helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode), {"x": x}, {"pads": np.array(pads, np.int64)})
