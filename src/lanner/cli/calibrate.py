"""``lanner calibrate``: INT8 post-training calibration → QDQ ONNX, scale table, TensorRT cache.

Parses arguments and calls ``lanner.engine.calibrate.calibrate_model``; the work lives there.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from lanner.cli.app import info, next_steps, out, progress_bar
from lanner.engine.calibrate.cache import DEFAULT_TRT_VERSION
from lanner.engine.calibrate.calibration import calibrate_model
from lanner.engine.calibrate.collect import RUNNERS
from lanner.engine.calibrate.images import DEFAULT_COUNT, MAX_COUNT, list_images
from lanner.engine.calibrate.methods import DEFAULT_PERCENTILE, METHODS


@click.command("calibrate", short_help="Calibrate an ONNX model for INT8 on images (QDQ ONNX).")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--images", type=click.Path(path_type=Path), help="Folder of calibration images (searched recursively).")
@click.option("--method", type=click.Choice(METHODS), default="entropy", show_default=True)
@click.option("--percentile", type=float, default=DEFAULT_PERCENTILE, show_default=True, help="For percentile.")
@click.option(
    "--saturation-guard/--no-saturation-guard",
    default=True,
    show_default=True,
    help="Entropy: activations that saturate (ReLU6 at 6) keep their max; off gives TensorRT's exact thresholds.",
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_COUNT),
    default=DEFAULT_COUNT,
    show_default=True,
    help="Images to use, the first in sorted path order.",
)
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Images per batch.")
@click.option(
    "--exclude", multiple=True, metavar="NAME_OR_OPTYPE", help="Keep a node, or all nodes of an op type, in FP32."
)
@click.option(
    "--cache",
    "cache",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the ranges from this TensorRT calibration cache instead of running images.",
)
@click.option(
    "--backend",
    type=click.Choice(RUNNERS),
    default="auto",
    show_default=True,
    help="What runs the FP32 model while collecting statistics.",
)
@click.option("--trt-version", default=DEFAULT_TRT_VERSION, show_default=True, help="Version in the cache header.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder for <model>_int8.onnx, scales.json and calibration.cache.",
)
def calibrate(
    model: Path,
    images: Path | None,
    method: str,
    percentile: float,
    saturation_guard: bool,
    count: int,
    batch: int,
    exclude: tuple[str, ...],
    cache: Path | None,
    backend: str,
    trt_version: str,
    out_dir: Path,
) -> None:
    """Calibrate MODEL (FP32 ONNX) for INT8 on a folder of images, TensorRT-style.

    \b
    Example:
      lanner calibrate det.onnx --images calib/ --method entropy -o int8/
    """
    if cache is None and images is None:
        raise click.UsageError("give --images DIR (or --cache FILE to reuse a TensorRT calibration cache)")
    source = f"cache {cache}" if cache is not None else f"{images}"
    info(escape(f"calibrating {model.name} ({method if cache is None else 'from cache'}) on {source}"))
    total = None if cache is not None or images is None else len(list_images(images, count))
    with progress_bar("calibrating", total) as advance:
        report = calibrate_model(
            model,
            images,
            out_dir,
            method=method,
            percentile=percentile,
            saturation_guard=saturation_guard,
            count=count,
            batch=batch,
            exclude=exclude,
            cache=cache,
            backend=backend,
            trt_version=trt_version,
            progress=advance,
        )
    for note in report.notes:
        info(escape(f"note: {note}"))
    q = report.quantized
    out.print(
        f"{len(q.quantized)} activations and {len(q.weights)} weights quantized "
        f"({len(q.excluded_nodes)} nodes kept in FP32), {len(q.amax)} ranges from "
        f"{report.num_images} images in batches of {report.batch}"
        if report.num_images
        else f"{len(q.quantized)} activations and {len(q.weights)} weights quantized from {len(q.amax)} cached ranges"
    )
    clipped = [row for row in report.clipping[:3] if row.clipped > 0]
    for row in clipped:
        out.print(f"most clipped: {row.describe()}", markup=False)
    if clipped:
        info(
            "if INT8 loses accuracy (measure it: lanner evaluate -m the .plan), try --method percentile (on the "
            "starter detector it kept the most mAP; minmax suits classifiers), or --exclude one of these layers"
        )
    paths = (report.onnx_path, report.scales_path, report.cache_path, report.plot_path)
    for path in (p for p in paths if p is not None):
        out.print(f"wrote {path}", markup=False)
    qdq = Path(report.onnx_path)
    next_steps(f"lanner build {qdq} --precision int8 -o {qdq.with_suffix('.plan')}")
