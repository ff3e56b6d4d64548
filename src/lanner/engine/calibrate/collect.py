"""Activation statistics: run the FP32 graph over calibration batches and histogram every tensor.

TensorRT's calibrator builds an FP32 engine, runs the calibration set through it and records a
histogram per tensor; here a backend runs the IR with every intermediate value exposed. Runners:

- ``cpu``: lanner's fast CPU backend (torch kernels), ``run_all`` on the unfused graph;
- ``reference``: lanner's numpy backend (``ReferenceExecutable.run_all``), exact but slow;
- ``onnxruntime``: the same graph exported with every tensor as an output;
- ``auto`` (default): ``cpu`` when torch is installed, else ``onnxruntime``, else ``reference``.

Tensor names are the ONNX names, so the scale table and the TensorRT cache line up with the model.

Example:
    >>> stats = collect_statistics(graph, batches, backend="reference")  # doctest: +SKIP
    >>> stats["/conv1/Conv_output_0"].absmax  # doctest: +SKIP
    6.25
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from lanner.core.errors import ConfigError, DataError
from lanner.core.progress import ProgressFn, advance
from lanner.engine.backends import BACKENDS, get_backend
from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.ir.graph import Graph

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
RUNNERS = ("auto", "cpu", "reference", "onnxruntime")


def activation_names(graph: Graph) -> list[str]:
    """Every float32 tensor computed at run time: the graph inputs, then node outputs in order."""
    names = [name for name in graph.inputs if graph.values[name].dtype == np.float32]
    for node in graph.nodes:
        for name in node.outputs:
            value = graph.values.get(name) if name else None
            if value is not None and value.dtype == np.float32 and not value.is_constant:
                names.append(name)
    return names


def make_runner(graph: Graph, tensors: Sequence[str], backend: str = "auto") -> Runner:
    """A function ``feeds -> {tensor: array}`` for ``tensors`` (graph inputs included), on ``backend``."""
    if backend not in RUNNERS:
        raise ConfigError(f"unknown calibration backend {backend!r}", fix=f"choose one of {', '.join(RUNNERS)}")
    if backend == "auto":
        backend = _auto_backend()
    if backend == "onnxruntime":
        return _onnxruntime_runner(graph, tensors)
    executable = get_backend(backend).prepare(graph)
    wanted = list(tensors)

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = {**executable.run_all(feeds), **feeds}
        return {name: values[name] for name in wanted}

    return run


def _auto_backend() -> str:
    """lanner's ``cpu`` backend when it and torch are there, else ONNX Runtime, else ``reference``."""
    if "cpu" in BACKENDS and importlib.util.find_spec("torch") is not None:
        return "cpu"
    return "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "reference"


def _onnxruntime_runner(graph: Graph, tensors: Sequence[str]) -> Runner:
    """ONNX Runtime on the exported graph with every wanted tensor added as a graph output."""
    import onnxruntime as ort

    from lanner.engine.onnx_export import to_onnx

    inputs = set(graph.inputs)
    extra = [name for name in tensors if name not in inputs and name not in graph.outputs]
    model = to_onnx(graph.replace(outputs=(*graph.outputs, *extra)))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # keeps every tensor
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    fetched = [name for name in tensors if name not in inputs]

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = dict(zip(fetched, session.run(fetched, dict(feeds)), strict=True))
        return {name: np.asarray(feeds[name]) if name in inputs else arrays[name] for name in tensors}

    return run


def collect_statistics(
    graph: Graph,
    batches: Iterable[np.ndarray],
    *,
    tensors: Sequence[str] | None = None,
    backend: str = "auto",
    progress: ProgressFn | None = None,
) -> dict[str, Histogram]:
    """Histograms of |x| for ``tensors`` (default: ``activation_names``) over ``batches`` of the one input.

    Batches are consumed in the order given (entropy thresholds depend on the data, not on the order,
    because ``Histogram`` merges exactly). ``progress`` is called with the images of each batch.
    A NaN or infinite activation is a ``DataError`` naming the tensor.
    """
    if len(graph.inputs) != 1:
        raise ConfigError(
            f"calibration feeds one image input, the model has {len(graph.inputs)}: {list(graph.inputs)}",
            fix="export the model with a single image input",
        )
    names = list(tensors) if tensors is not None else activation_names(graph)
    run = make_runner(graph, names, backend)
    stats = {name: Histogram() for name in names}
    seen = 0
    for batch in batches:
        values = run({graph.inputs[0]: batch})
        for name in names:
            array = values[name]
            if not np.all(np.isfinite(array)):
                raise DataError(
                    f"tensor '{name}' has NaN or infinite values on calibration images {seen}-{seen + len(batch) - 1}",
                    fix="check the model in FP32 and the image preprocessing",
                )
            stats[name].add(array)
        seen += len(batch)
        advance(progress, len(batch))
    if seen == 0:
        raise DataError("no calibration batches were given", fix="pass at least one image")
    return stats
