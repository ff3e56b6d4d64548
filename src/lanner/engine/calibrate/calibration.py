"""INT8 post-training calibration, end to end: FP32 ONNX + images → QDQ ONNX, scale table, TRT cache.

The steps, each a function of this package:

1. ``prepare_graph``: fold constants, identities and BatchNorm into the weights (weights must be
   quantized *after* BN folding, or the builder's folding would change them);
2. ``collect_statistics``: run the FP32 graph over the images, a histogram of |x| per tensor;
3. ``compute_amax``: one threshold per tensor by ``method`` (entropy, minmax, percentile, mse);
4. ``insert_qdq``: Q/DQ on the activations of the weighted ops, per-channel int8 weights;
5. write ``<model>_int8.onnx``, ``scales.json`` and ``calibration.cache`` (TensorRT's format), and
   ``calibration.png``: the most clipped activations' histograms with their thresholds (``report.py``).

Or, with ``cache=``, the ranges of an existing TensorRT cache replace steps 2-3.

Example:
    >>> report = calibrate_model("resnet18.onnx", "calib_images/", "out/", method="entropy")  # doctest: +SKIP
    >>> report.onnx_path.name, report.num_images  # doctest: +SKIP
    ('resnet18_int8.onnx', 500)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.errors import UsageError
from lanner.core.folders import replacing
from lanner.core.progress import ProgressFn
from lanner.engine.calibrate.cache import DEFAULT_TRT_VERSION, METHOD_ALGORITHM, read_cache, write_cache
from lanner.engine.calibrate.collect import collect_statistics
from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.calibrate.images import DEFAULT_COUNT, Preprocess, iter_batches, list_images
from lanner.engine.calibrate.methods import DEFAULT_PERCENTILE, compute_amax, saturated
from lanner.engine.calibrate.qdq import (
    QuantizedWeight,
    activations_to_quantize,
    insert_qdq,
    resolve_exclusions,
    scale_from_amax,
)
from lanner.engine.calibrate.report import Clipping, clipping_table, plot_clipping
from lanner.engine.calibrate.scales import scales_table, write_scales
from lanner.engine.ir.graph import Graph
from lanner.engine.onnx_import import load_onnx
from lanner.engine.passes import eliminate_dead_nodes, eliminate_identity, fold_batchnorm, fold_constants


@dataclass(frozen=True)
class Quantized:
    """A QDQ graph and what went into it."""

    graph: Graph
    amax: dict[str, float]  # every calibrated activation (the cache and table list them all)
    quantized: list[str]  # the activations that got a Q/DQ pair
    weights: list[QuantizedWeight]
    excluded_nodes: list[str]


@dataclass(frozen=True)
class CalibrationReport:
    """What ``calibrate_model`` wrote and measured."""

    onnx_path: Path
    scales_path: Path
    cache_path: Path
    method: str
    num_images: int
    batch: int
    quantized: Quantized
    notes: list[str] = field(default_factory=list)
    clipping: list[Clipping] = field(default_factory=list)  # the quantized activations, the most clipped first
    plot_path: Path | None = None  # calibration.png (``report.plot_clipping``); None when read from a cache


def prepare_graph(graph: Graph) -> Graph:
    """The FP32 graph calibration runs on: constants, identities and BatchNorm folded (standard ONNX ops)."""
    for step in (fold_constants, eliminate_identity, eliminate_dead_nodes, fold_batchnorm, eliminate_dead_nodes):
        graph = step(graph)
    return graph


def calibrate_ranges(
    graph: Graph,
    batches: Iterable[np.ndarray],
    *,
    method: str = "entropy",
    percentile: float = DEFAULT_PERCENTILE,
    saturation_guard: bool = True,
    backend: str = "auto",
    progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Activation name → amax by ``method`` over ``batches`` (for every float activation of ``graph``)."""
    compute_amax_check(method, percentile)
    stats = collect_statistics(graph, batches, backend=backend, progress=progress)
    return amax_of(stats, method, percentile, saturation_guard)


def amax_of(
    stats: dict[str, Histogram], method: str, percentile: float, saturation_guard: bool = True
) -> dict[str, float]:
    """Activation name → amax by ``method`` from the collected histograms (``methods.compute_amax``)."""
    return {
        name: compute_amax(hist, method, percentile=percentile, saturation_guard=saturation_guard)
        for name, hist in stats.items()
    }


def compute_amax_check(method: str, percentile: float) -> None:
    """Fail before the (long) collection when ``method`` or ``percentile`` is wrong."""
    compute_amax(Histogram(), method, percentile=percentile)


def quantize(graph: Graph, amax: dict[str, float], *, exclude: Sequence[str] = ()) -> Quantized:
    """``insert_qdq`` plus the bookkeeping the outputs need."""
    pinned = resolve_exclusions(graph, exclude)
    qgraph, weights = insert_qdq(graph, amax, exclude=exclude)
    return Quantized(qgraph, dict(amax), activations_to_quantize(graph, pinned), weights, sorted(pinned))


def calibrate_model(
    model: str | os.PathLike[str],
    images: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    method: str = "entropy",
    percentile: float = DEFAULT_PERCENTILE,
    saturation_guard: bool = True,
    count: int = DEFAULT_COUNT,
    batch: int = 8,
    exclude: Sequence[str] = (),
    cache: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    trt_version: str = DEFAULT_TRT_VERSION,
    progress: ProgressFn | None = None,
) -> CalibrationReport:
    """Calibrate ``model`` on the images in ``images`` (or read ``cache``) and write the three outputs.

    ``saturation_guard=False`` gives TensorRT's exact entropy thresholds (``methods`` explains the guard)."""
    if cache is None:
        compute_amax_check(method, percentile)
    graph = load_onnx(model)
    _check_not_quantized(graph, model)
    graph = prepare_graph(graph)
    resolve_exclusions(graph, exclude)  # an unknown --exclude fails before the long part
    notes: list[str] = []
    if cache is not None:
        trt = read_cache(cache)
        amax, algorithm, method, used, batch = trt.amax(), trt.algorithm, f"cache ({trt.algorithm})", 0, 0
        version = trt.version
    else:
        if images is None:
            raise UsageError("no calibration images", fix="pass --images DIR (or --cache FILE)")
        paths, batch, dropped = _plan_batches(graph, list_images(images, count), batch)
        if dropped:
            notes.append(f"the model's batch size is fixed at {batch}: the last {dropped} image(s) were left out")
        preprocess = Preprocess.from_graph(graph)
        batches = iter_batches(paths, preprocess, batch)
        stats = collect_statistics(graph, batches, backend=backend, progress=progress)
        amax = amax_of(stats, method, percentile, saturation_guard)
        algorithm, used, version = METHOD_ALGORITHM[method], len(paths), trt_version
    result = quantize(graph, amax, exclude=exclude)
    if cache is None and method == "entropy" and saturation_guard:
        notes.extend(_saturation_notes(stats, amax, result.quantized))
    header = {"algorithm": algorithm, "version": version}
    settings = {
        "percentile": percentile if method == "percentile" else None,
        "saturation_guard": saturation_guard if method == "entropy" else None,
    }
    report = _write_outputs(Path(model), Path(out_dir), result, method, settings, used, batch, header, notes)
    if cache is None:  # a cache holds thresholds only: no histograms to show
        clipping = clipping_table(stats, amax, result.quantized)
        plot = plot_clipping(stats, clipping, Path(out_dir) / "calibration.png")
        report = replace(report, clipping=clipping, plot_path=plot)
    return report


def _saturation_notes(stats: dict[str, Histogram], amax: dict[str, float], quantized: Sequence[str]) -> list[str]:
    """A note naming how many quantized activations the saturation guard gave a wider range than TensorRT."""
    guarded = []
    for name in quantized:
        hist = stats.get(name)
        if hist is not None and saturated(hist):
            trt = compute_amax(hist, "entropy", saturation_guard=False)
            if trt < amax[name]:
                guarded.append(trt / amax[name])
    if not guarded:
        return []
    return [
        f"{len(guarded)} saturated activation(s) kept their max; TensorRT's entropy would clip them to "
        f"{min(guarded):.2f}-{max(guarded):.2f} x (--no-saturation-guard gives its thresholds)"
    ]


def _check_not_quantized(graph: Graph, model: str | os.PathLike[str]) -> None:
    """Refuse a model that already has Q/DQ nodes: calibrating it would quantize its dequantized tensors again."""
    qdq = [n for n in graph.nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if qdq:
        raise UsageError(
            f"the model is already quantized ({len(qdq)} QuantizeLinear/DequantizeLinear nodes)",
            where=str(model),
            fix="calibrate the FP32 model it came from, or build this one as it is (--precision int8)",
        )


def _plan_batches(graph: Graph, paths: list[Path], batch: int) -> tuple[list[Path], int, int]:
    """Use the model's static batch size if it has one; a partial last batch is then dropped."""
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    dim = (graph.values[graph.inputs[0]].shape or ("N",))[0]
    if not isinstance(dim, int):
        return paths, batch, 0
    usable = len(paths) - len(paths) % dim
    if usable == 0:
        raise UsageError(
            f"the model's batch size is fixed at {dim} but only {len(paths)} image(s) were given",
            fix=f"give at least {dim} images",
        )
    return paths[:usable], dim, len(paths) - usable


def _write_outputs(
    model: Path,
    out_dir: Path,
    result: Quantized,
    method: str,
    settings: dict[str, Any],
    num_images: int,
    batch: int,
    header: dict[str, str],
    notes: list[str],
) -> CalibrationReport:
    import onnx

    from lanner.engine.onnx_export import to_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{model.stem}_int8.onnx"
    with replacing(onnx_path) as partial:
        onnx.save(to_onnx(result.graph), str(partial))
    table = scales_table(
        result.amax,
        method=method,
        num_images=num_images,
        batch=batch,
        **settings,
        quantized=result.quantized,
        excluded_nodes=result.excluded_nodes,
        weights=result.weights,
    )
    scales_path = write_scales(out_dir / "scales.json", table)
    cache_scales = {name: float(scale_from_amax(value)) for name, value in result.amax.items()}
    cache_path = write_cache(out_dir / "calibration.cache", cache_scales, **header)
    return CalibrationReport(onnx_path, scales_path, cache_path, method, num_images, batch, result, notes)
