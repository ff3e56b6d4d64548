"""Helpers for engine tests: build ONNX models with onnx.helper, run them on ORT and on the reference backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lanner.engine.backends import get_backend
from lanner.engine.ir import Graph
from lanner.engine.onnx_import import load_onnx

ONNX_TYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(bool): TensorProto.BOOL,
}


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, tuple[Any, Sequence[int | str]]],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """A checked ModelProto; ``inputs`` maps name → (numpy dtype, shape); outputs are untyped."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, ONNX_TYPES[np.dtype(t)], list(s)) for n, (t, s) in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 18 else 10
    return model


def run_ort(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime, CPU EP, one thread, graph optimizations off (we compare op semantics)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))


def run_reference(model_or_graph: onnx.ModelProto | Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    graph = model_or_graph if isinstance(model_or_graph, Graph) else load_onnx(model_or_graph)
    return get_backend("reference").prepare(graph).run(feeds)


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected|| / ||expected|| in float64 (0 when both are zero)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    denom = np.linalg.norm(e)
    diff = np.linalg.norm(a - e)
    return float(diff / denom) if denom > 0 else float(diff)


def assert_outputs_close(
    actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], tol: float = 1e-4
) -> None:
    """Same names, dtypes and shapes; floats within ``tol`` relative L2, integers exactly equal."""
    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        if np.issubdtype(want.dtype, np.floating):
            err = rel_l2(got, want)
            assert err <= tol, f"{name}: relative L2 {err:.2e} > {tol:.0e}"
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def export_torch(
    module: Any, example: Any, opset: int = 17, dynamic_batch: bool = False, raw: bool = False
) -> onnx.ModelProto:
    """torch.onnx.export (TorchScript exporter, dynamo=False) into memory.

    ``raw=True`` turns the exporter's own optimizations off (no constant folding, BatchNorm kept), so
    the engine's passes have the real work to do.
    """
    import io
    import warnings

    import torch

    buffer = io.BytesIO()
    dynamic_axes = {"images": {0: "N"}, "output": {0: "N"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            example,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["images"],
            output_names=["output"],
            dynamic_axes=dynamic_axes,
            do_constant_folding=not raw,
            training=torch.onnx.TrainingMode.PRESERVE if raw else torch.onnx.TrainingMode.EVAL,
        )
    return onnx.load_from_string(buffer.getvalue())
