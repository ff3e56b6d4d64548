"""Export a model to ONNX with its metadata, checked against PyTorch with ONNX Runtime.

The ONNX file is what ``engine``, ``pipeline`` and ``serve`` consume, so everything needed to use it
without Python model code goes into ``metadata_props`` (see ``onnx_metadata``): task, labels (JSON),
input name/size/layout, mean/std (pixel units 0-255, in ``color_order``), colour order, postprocess
kind, strides and output names. Detectors export in eval mode: outputs ``boxes (B, N, 4)`` xyxy in
input pixels and ``scores (B, N, C)``; NMS stays outside the graph.

Uses the TorchScript exporter (``dynamo=False``; on torch 2.13 it emits a ``DeprecationWarning``,
filtered here). Detector grids come from ``arange`` over the static feature sizes and fold to
constants; after export, ``Identity(initializer)`` nodes are removed and every non-batch output axis
is written as a number (the exporter leaves e.g. the anchor count symbolic with a dynamic batch).

Example:
    >>> from lanner.models import create_model, export_onnx
    >>> report = export_onnx(create_model("resnet10", 3), "/tmp/doc_r10.onnx", input_size=(64, 64))
    >>> report.max_abs_diff["logits"] < 1e-3
    True
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from lanner.core.errors import ConfigError, DataError, LannerError
from lanner.core.folders import replacing, writing
from lanner.models.checkpoint import unwrap_model
from lanner.models.registry import ModelInfo

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

INPUT_NAME = "images"
_KNOWN_WARNINGS = ("legacy TorchScript-based ONNX export", "The feature will be removed")


@dataclass(frozen=True)
class ExportReport:
    """Where the ONNX file went, its input shape, metadata, and the largest |ORT - torch| per output."""

    path: Path
    input_shape: tuple[int, ...]
    metadata: dict[str, str]
    max_abs_diff: dict[str, float]


def onnx_metadata(info: ModelInfo, input_size: tuple[int, int], batch: str) -> dict[str, str]:
    """The ``metadata_props`` written into the ONNX file (all values are strings; lists are JSON)."""
    meta = {
        "lanner_format": "1",
        "model_name": info.name,
        "task": info.task,
        "labels": json.dumps(list(info.class_names)),
        "num_classes": str(info.num_classes),
        "input_name": INPUT_NAME,
        "input_size": json.dumps(list(input_size)),  # [height, width]
        "input_layout": info.input_layout,
        "batch": batch,
        "pixel_range": "0-255",  # network input = (pixel - mean) / std
        "mean": json.dumps(list(info.mean)),
        "std": json.dumps(list(info.std)),
        "color_order": info.color_order,
        "resize": info.resize,
        "postprocess": info.postprocess,
        "outputs": json.dumps(list(info.outputs)),
    }
    if info.strides:
        meta["strides"] = json.dumps(list(info.strides))
    if info.resize == "letterbox":
        meta["pad_value"] = json.dumps(info.pad_value)
    if info.task == "detection":
        meta["box_format"] = "xyxy"
    if info.extra:
        meta["extra"] = json.dumps(info.extra)
    return meta


def _input_size(info: ModelInfo, input_size: int | tuple[int, int] | None) -> tuple[int, int]:
    if input_size is None:
        return info.input_size
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"input_size must be (height, width), got {input_size!r}", where="export_onnx")
    stride = max(info.strides, default=1)
    if size[0] % stride or size[1] % stride:
        raise ConfigError(
            f"input_size {size} is not a multiple of the largest stride {stride}", fix=f"use multiples of {stride}"
        )
    return (int(size[0]), int(size[1]))


def _newest_opset() -> int:
    """The newest opset torch's TorchScript exporter (the one ``_trace_to_onnx`` uses) can write."""
    from torch.onnx import _constants  # torch exposes the limit only here; 20 since torch 2.1

    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20))


def _trace_to_onnx(model: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic: bool) -> None:
    outputs = list(model.info.outputs)
    axes = {name: {0: "batch"} for name in [INPUT_NAME, *outputs]} if dynamic else None
    with warnings.catch_warnings():
        for message in _KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=f".*{message}.*", category=DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes=axes,
            do_constant_folding=True,
        )


def _drop_initializer_identities(graph: onnx.GraphProto) -> None:
    """Remove ``Identity(initializer)`` nodes (the exporter's weight de-duplication leaves one per shared
    weight); consumers read the initializer directly, so importers see plain ``Conv(x, W, B)``."""
    initializers = {t.name for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    alias = {}
    for node in list(graph.node):
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in graph_outputs:
            alias[node.output[0]] = node.input[0]
            graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]


def _finish_onnx(path: Path, metadata: dict[str, str], info: ModelInfo, output_shapes: list[tuple[int, ...]]) -> None:
    """Add metadata and spell out output shapes (the exporter leaves e.g. the anchor count symbolic)."""
    import onnx

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, metadata)
    proto.producer_name = "lanner"
    proto.doc_string = f"{info.name}: {info.task}, {info.num_classes} classes"
    _drop_initializer_identities(proto.graph)
    for output, shape in zip(proto.graph.output, output_shapes):
        for dim, size in list(zip(output.type.tensor_type.shape.dim, shape))[1:]:  # axis 0 is the batch
            dim.Clear()
            dim.dim_value = size
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def run_onnx(path: str | Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported model with ONNX Runtime on CPU (one thread): ``{output name: array}``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images})))


def _compare(
    path: Path,
    names: tuple[str, ...],
    example: torch.Tensor,
    expected: list[torch.Tensor],
    rtol: float,
    atol: float,
    shown: Path | None = None,
) -> dict[str, float]:
    """Max |ONNX Runtime - torch| per output; a shape or value mismatch is an error naming ``shown`` (or ``path``)."""
    got = run_onnx(path, example.cpu().numpy())
    path = shown or path
    diffs = {}
    for name, ref in zip(names, expected):
        ref_np = ref.numpy()
        if got[name].shape != ref_np.shape:
            raise LannerError(
                f"ONNX output {name!r} has shape {got[name].shape}, torch {ref_np.shape}", where=str(path)
            )
        diff = float(np.abs(got[name] - ref_np).max(initial=0.0))
        limit = atol + rtol * float(np.abs(ref_np).max(initial=0.0))
        if not diff <= limit:  # also catches NaN
            raise LannerError(
                f"ONNX Runtime differs from torch on {name!r}: max |diff| {diff:.3g} > {limit:.3g}",
                where=str(path),
                fix="report this model and export settings; try another opset",
            )
        diffs[name] = diff
    return diffs


def check_writable(path: Path) -> None:
    """Create ``path``'s folder and make sure a file can be written there; a ``DataError`` names why not."""
    if path.is_dir():
        raise DataError("the output is a folder", where=str(path), fix=f"pass a file path, e.g. {path / 'model.onnx'}")
    with writing(path, "output file", fix="pick a path in a folder you can write to"):
        tempfile.NamedTemporaryFile(dir=path.parent, prefix=".lanner-write-test-").close()  # can a file go there?


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    batch: str = "static",
    opset: int = 17,
    input_size: int | tuple[int, int] | None = None,
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> ExportReport:
    """Export ``model`` (eval mode) to ONNX with metadata, then check it against torch with ONNX Runtime.

    ``batch="static"`` fixes batch 1; ``"dynamic"`` names axis 0 ``batch``. ``input_size`` is
    ``(height, width)`` (default ``model.info.input_size``). The check fails with ``LannerError`` when
    ``max |ort - torch| > atol + rtol * max |torch|`` for any output. The model's mode is restored.

    Example:
        >>> report = export_onnx(model, "model.onnx", batch="dynamic", input_size=(384, 640))  # doctest: +SKIP
    """
    if batch not in ("static", "dynamic"):
        raise ConfigError(f"batch must be 'static' or 'dynamic', got {batch!r}", where="export_onnx")
    if opset < 17:
        raise ConfigError(f"opset {opset} is too old", where="export_onnx", fix="use opset >= 17")
    newest = _newest_opset()
    if opset > newest:
        raise ConfigError(
            f"opset {opset} is newer than this torch's ONNX exporter writes ({newest})",
            where="export_onnx",
            fix=f"use an opset from 17 to {newest}",
        )
    model = unwrap_model(model)
    info: ModelInfo = model.info
    size = _input_size(info, input_size)
    path = Path(path)
    check_writable(path)  # before the trace, which takes a while on big models
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2 if batch == "dynamic" else 1, 3, *size, generator=generator)
    example = example.to(next(model.parameters()).device)  # trace where the model lives (e.g. after GPU training)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(example)
        expected = [t.cpu() for t in ([expected] if isinstance(expected, torch.Tensor) else expected)]
        metadata = onnx_metadata(info, size, batch)
        with replacing(path) as partial:  # an existing file is replaced only by a new one that passed its check
            _trace_to_onnx(model, example, partial, opset, dynamic=batch == "dynamic")
            _finish_onnx(partial, metadata, info, [tuple(t.shape) for t in expected])
            diffs = _compare(partial, info.outputs, example, expected, rtol, atol, shown=path) if check else {}
    finally:
        model.train(was_training)
    log.info("exported %s to %s (%s batch); max |ort - torch| %s", info.name, path, batch, diffs)
    return ExportReport(path=path, input_shape=tuple(example.shape), metadata=metadata, max_abs_diff=diffs)
