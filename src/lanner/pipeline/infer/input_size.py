"""Run a detector exported at one input size at another: ``resize_detector_onnx`` (DeepStream's ``infer-dims``).

A YOLOX-style detector is fully convolutional, so the same weights work at any input whose height and
width are multiples of its largest stride; only the box decoding at the end of the graph depends on the
size. ``lanner.models.export_onnx`` folds each level's anchor grid into constants: an ``Expand`` of an
``arange`` column ``(h, 1)`` and an ``arange`` row ``(1, w)`` to the level's ``[h, w]``. This module
rewrites exactly those constants for the new size (and the input's height/width, the outputs' anchor
count and the ``input_size`` metadata), so the ONNX runs at the new size in ONNX Runtime or the lanner
engine with no model code and no re-export. Anything else that pins the size is an error, not a guess.
An Ultralytics export made with ``dynamic=True`` needs only its input dims and ``imgsz`` set.

Why another input: a detector trained at 288x512 on 640x360 images loses small and far objects of a
1280x720 camera frame letterboxed to 288x512, and a larger input keeps them; a smaller one is cheaper
(``bench/detector_sizes.py`` measures mAP per class and tracking quality per size).

Example:
    >>> import onnx  # doctest: +SKIP
    >>> bigger = resize_detector_onnx(onnx.load("detector.onnx"), (448, 800))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from lanner.core.errors import ConfigError, DataError
from lanner.core.ultralytics import is_ultralytics

if TYPE_CHECKING:
    import onnx

RESIZABLE_POSTPROCESS = ("yolox_decoded",)


def check_input_size(size_hw: tuple[int, int], strides: list[int], where: str) -> None:
    """``ConfigError`` unless ``size_hw`` is two positive multiples of the model's largest stride."""
    step = max(strides)
    if len(size_hw) != 2 or min(size_hw) < 1 or any(v % step for v in size_hw):
        raise ConfigError(
            f"input_size {list(size_hw)} does not fit the model: height and width must be positive multiples of "
            f"{step} (its largest stride)",
            where=where,
            fix=f"use e.g. [{_round_up(size_hw[0], step)}, {_round_up(size_hw[-1], step)}]",
        )


def _round_up(value: int, step: int) -> int:
    return max(step, -(-int(value) // step) * step)


def resize_detector_onnx(model: onnx.ModelProto, size_hw: tuple[int, int], where: str = "model") -> onnx.ModelProto:
    """A copy of ``model`` (a lanner-exported detector) that takes ``size_hw`` (height, width) inputs.

    Raises ``ConfigError`` for a size that is not a multiple of the largest stride and ``DataError`` for a
    model whose decoding this rewrite does not know (see the module docstring).
    """
    import onnx

    meta = {p.key: p.value for p in model.metadata_props}
    if is_ultralytics(meta):
        return _resize_ultralytics(model, meta, size_hw, where)
    if meta.get("postprocess") not in RESIZABLE_POSTPROCESS or "input_size" not in meta or "strides" not in meta:
        raise DataError(
            f"cannot change the input size of a model with postprocess {meta.get('postprocess')!r}",
            where=where,
            fix=f"export the model at the size you want; resizing works for {', '.join(RESIZABLE_POSTPROCESS)}",
        )
    old_hw = tuple(int(v) for v in json.loads(meta["input_size"]))
    strides = [int(s) for s in json.loads(meta["strides"])]
    size_hw = (int(size_hw[0]), int(size_hw[1]))
    check_input_size(size_hw, strides, where)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if size_hw == old_hw:
        return out
    grids = {(old_hw[0] // s, old_hw[1] // s): (size_hw[0] // s, size_hw[1] // s) for s in strides}
    rewritten = _rewrite_grids(out.graph, grids, where)
    if rewritten != len(strides):
        raise DataError(
            f"found {rewritten} anchor grids in the graph, expected {len(strides)} (one per stride)",
            where=where,
            fix="re-export the model with lanner.models.export_onnx at the size you want",
        )
    anchors = sum((size_hw[0] // s) * (size_hw[1] // s) for s in strides)
    _set_shapes(out.graph, size_hw, anchors)
    for prop in out.metadata_props:
        if prop.key == "input_size":
            prop.value = json.dumps(list(size_hw))
    return out


def _resize_ultralytics(
    model: onnx.ModelProto, meta: dict[str, str], size_hw: tuple[int, int], where: str
) -> onnx.ModelProto:
    """An Ultralytics export made with ``dynamic=True`` computes its anchors from the input's shape: set the
    input's height and width and the ``imgsz`` metadata. A fixed-size export folded them into constants."""
    import onnx

    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or all(d.HasField("dim_value") for d in dims[2:]):
        raise DataError(
            "this Ultralytics export has a fixed input size, so its anchors are constants of that size",
            where=where,
            fix="re-export it with dynamic=True (yolo export ... dynamic=True), or at the size you want",
        )
    size_hw = (int(size_hw[0]), int(size_hw[1]))
    check_input_size(size_hw, [int(meta.get("stride", "32"))], where)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out_dims = out.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(out_dims[2:], size_hw, strict=True):
        dim.Clear()
        dim.dim_value = size
    for prop in out.metadata_props:
        if prop.key == "imgsz":
            prop.value = str(list(size_hw))
    return out


def _rewrite_grids(graph: onnx.GraphProto, grids: dict[tuple[int, int], tuple[int, int]], where: str) -> int:
    """Rewrite every ``Expand(arange constant, [h, w] constant)`` for the new grid sizes; returns how many
    distinct ``[h, w]`` shape constants were rewritten."""
    from onnx import numpy_helper

    fix = "re-export the model with lanner.models.export_onnx at the size you want"
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    expands = [n for n in graph.node if n.op_type == "Expand" and all(i in constants for i in n.input[:2])]
    old_of = {n.input[1]: tuple(int(v) for v in numpy_helper.to_array(constants[n.input[1]].attribute[0].t))
              for n in expands}  # fmt: skip
    for old in old_of.values():
        if old not in grids:
            raise DataError(f"an Expand to {list(old)} is not an anchor grid of the model's input size",
                            where=where, fix=fix)  # fmt: skip
    for node in expands:
        grid = grids[old_of[node.input[1]]]
        data = numpy_helper.to_array(constants[node.input[0]].attribute[0].t)
        if data.ndim != 2 or 1 not in data.shape or not np.array_equal(data.reshape(-1), np.arange(data.size)):
            raise DataError("an anchor grid constant is not an arange row or column", where=where, fix=fix)
        axis = 0 if data.shape[1] == 1 else 1  # (h, 1): the row index; (1, w): the column index
        shape = (grid[0], 1) if axis == 0 else (1, grid[1])
        _set_constant(constants[node.input[0]], np.arange(grid[axis], dtype=data.dtype).reshape(shape))
    for name, old in old_of.items():
        _set_constant(constants[name], np.asarray(grids[old], np.int64))
    return len(old_of)


def _set_constant(node: onnx.NodeProto, value: np.ndarray) -> None:
    from onnx import numpy_helper

    node.attribute[0].t.CopyFrom(numpy_helper.from_array(value, node.attribute[0].t.name))


def _set_shapes(graph: onnx.GraphProto, size_hw: tuple[int, int], anchors: int) -> None:
    """The input's H and W, the outputs' anchor axis; intermediate shape annotations are dropped."""
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = size_hw
    for output in graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[1].dim_value = anchors
    del graph.value_info[:]
