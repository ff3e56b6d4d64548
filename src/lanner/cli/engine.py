"""``lanner build`` / ``bench`` / ``compare``: TensorRT's builder, trtexec and Polygraphy for lanner engines.

Register in ``cli/main.py`` with ``cli.add_command(build)``, ``cli.add_command(bench)``, ``cli.add_command(compare)``.
The work is in ``lanner.engine``; these commands parse arguments, call it and print.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape

from lanner.cli.app import info, next_steps, out, progress_bar
from lanner.cli.model import parse_input_size
from lanner.core.errors import LannerError, UnsupportedOpError, UsageError
from lanner.engine.calibrate.images import DEFAULT_COUNT, MAX_COUNT, list_images
from lanner.engine.calibrate.methods import METHODS

_path_in = click.Path(exists=True, dir_okay=False, path_type=Path)
_no_spin = click.option(
    "--no-spin",
    is_flag=True,
    help="Idle torch/OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE). Much faster on a machine "
    "with more busy threads than cores; slightly slower on an idle one.",
)

_input_size = click.option(
    "--input-size",
    help="HxW (e.g. 640x640) for an ONNX model whose image input has dynamic height/width (trtexec --shapes).",
)


def passive_threads() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE``; libgomp reads it once, when torch loads, so it must come first."""
    if "torch" in sys.modules:
        info("--no-spin has no effect: torch is already loaded in this process")
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


@click.command("build", short_help="Compile an ONNX model into a plan file (like TensorRT).")
@click.argument("model", type=_path_in)
@click.option("--check", is_flag=True, help="Only list op coverage (supported / unsupported ops); build nothing.")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True)
@click.option(
    "--calib",
    type=click.Path(path_type=Path),
    help="INT8: folder of calibration images (not needed for a QDQ model or with --calib-cache).",
)
@click.option("--calib-method", type=click.Choice(METHODS), default="entropy", show_default=True)
@click.option("--calib-count", type=click.IntRange(1, MAX_COUNT), default=DEFAULT_COUNT, show_default=True)
@click.option(
    "--calib-cache",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="INT8: ranges from a TensorRT calibration cache instead of images.",
)
@click.option("--batch", "batches", multiple=True, help="Optimization profile min:opt:max (repeat for several).")
@_input_size
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Plan file (default: MODEL with .plan).")
@click.option("--timing-cache", type=click.Path(path_type=Path), help="Timing cache JSON file (read and/or written).")
@click.option("--cache-mode", type=click.Choice(["tune", "replay", "merge"]), default="tune", show_default=True)
@click.option("--no-tune", is_flag=True, help="Keep every default tactic (no timing; fastest build).")
@_no_spin
def build(
    model: Path,
    check: bool,
    precision: str,
    calib: Path | None,
    calib_method: str,
    calib_count: int,
    calib_cache: Path | None,
    batches: tuple[str, ...],
    input_size: str | None,
    output: Path | None,
    timing_cache: Path | None,
    cache_mode: str,
    no_tune: bool,
    no_spin: bool,
) -> None:
    """Compile an ONNX MODEL into a plan file (fusion, tactics, profiles, weights).

    \b
    Examples:
      lanner build det.onnx --batch 1:4:8 -o det.plan
      lanner build det.onnx --precision int8 --calib images/ -o det_int8.plan
      lanner build yolo_dynamic.onnx --input-size 640x640   # dynamic height/width, built at one size
    """
    if no_spin:
        passive_threads()
    from lanner.engine.build import BuildConfig, build_engine
    from lanner.engine.coverage import check_coverage
    from lanner.engine.plan import write_plan

    if check:
        report = check_coverage(model)
        out.print(report.format(), markup=False)
        if not report.ok:
            raise UnsupportedOpError(f"{len(report.unsupported)} unsupported op type(s)", where=str(model))
        return
    target_path = output or model.with_suffix(".plan")
    if target_path.is_dir():  # fail before the (long) build, not when writing
        raise UsageError(
            f"-o {target_path} is a folder", where="lanner build", fix="give a plan file path, e.g. -o m.plan"
        )
    if precision == "int8":
        model = int8_model(model, calib, calib_method, calib_count, calib_cache, target_path)
    config = BuildConfig(
        batch=list(batches),
        input_size=parse_input_size(input_size),
        timing_cache=str(timing_cache) if timing_cache else None,
        cache_mode=cache_mode,  # type: ignore[arg-type]
        tune=not no_tune,
    )
    info(f"building {escape(str(model))} ({precision}, cpu)")
    with progress_bar("timing tactics (layers)", None) as advance:
        plan = build_engine(model, config, progress=advance)
    target = write_plan(plan, target_path)
    out.print(f"Original: {plan.layers['original']} layers → after fusion: {plan.layers['fused']}")
    for profile, memory in zip(plan.profiles, plan.memory_plan, strict=True):
        counts = Counter(profile.tactics.values())
        tactics = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "defaults"
        arena = memory["arena_bytes"] / 2**20
        out.print(f"profile {profile.min}:{profile.opt}:{profile.max}: tactics {tactics}; activations {arena:.1f} MiB")
    out.print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB)", markup=False)
    next_steps(f"lanner bench {target}")


def int8_model(model: Path, calib: Path | None, method: str, count: int, cache: Path | None, target: Path) -> Path:
    """The QDQ ONNX an INT8 build compiles: ``model`` itself when it is already QDQ, else a calibrated copy.

    Calibration (``lanner calibrate``'s code) writes next to the plan, in ``<plan stem>_calib/``: the QDQ
    ONNX, ``scales.json`` and a TensorRT-format cache, so a later build can reuse ``--calib-cache``.
    """
    from lanner.engine.calibrate.calibration import calibrate_model
    from lanner.engine.onnx_import import load_onnx

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in load_onnx(model).nodes):
        if calib is not None or cache is not None:
            info("the model already has Q/DQ nodes: its own scales are used, --calib/--calib-cache are ignored")
        return model
    if calib is None and cache is None:
        raise UsageError(
            f"an INT8 build of {model.name} needs calibration data",
            where=str(model),
            fix="pass --calib DIR (500 images is typical) or --calib-cache FILE, or give a QDQ ONNX",
        )
    work = target.with_name(f"{target.stem}_calib")
    total = None if cache is not None or calib is None else len(list_images(calib, count))
    info(escape(f"calibrating {model.name} ({'cache' if cache else method}) into {work}"))
    with progress_bar("calibrating", total) as advance:
        report = calibrate_model(model, calib, work, method=method, count=count, cache=cache, progress=advance)
    for note in report.notes:
        info(escape(f"note: {note}"))
    return Path(report.onnx_path)


@click.command("bench", short_help="Time a plan or ONNX model: throughput, latency (trtexec).")
@click.argument("source", type=_path_in)
@click.option("--batch", type=click.IntRange(min=1), help="Batch size (default: the model's fixed batch, else 1).")
@click.option("--threads", type=click.IntRange(min=1), help="torch intra-op threads (default: torch's).")
@click.option("--iterations", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--profile", "per_layer", is_flag=True, help="Per-layer time profile (trtexec --dumpProfile).")
@_input_size
@_no_spin
def bench(
    source: Path,
    batch: int | None,
    threads: int | None,
    iterations: int,
    warmup: int,
    per_layer: bool,
    input_size: str | None,
    no_spin: bool,
) -> None:
    """Time a plan file or an ONNX model (built in memory) like trtexec: throughput and latency percentiles.

    \b
    Example:
      lanner bench det.plan --batch 4 --profile
    """
    if no_spin:
        passive_threads()
    engine = _engine(source, batch or 1, parse_input_size(input_size))
    batch = resolve_batch(engine.inputs, batch, source)
    if threads:
        import torch

        torch.set_num_threads(threads)
    feeds = random_feeds(engine.inputs, batch)
    exe = engine.executable_for(feeds)
    for _ in range(warmup):
        exe.run(feeds)
    samples = []
    with progress_bar("timing", iterations) as advance:
        start = time.perf_counter()
        for _ in range(iterations):
            t0 = time.perf_counter()
            exe.run(feeds)
            samples.append((time.perf_counter() - t0) * 1e3)
            advance(1)  # outside the sample; a bar update costs microseconds against milliseconds per run
        wall = time.perf_counter() - start
    for line in performance_summary(samples, batch, wall):
        out.print(line)
    if per_layer:
        _print_profile(exe, feeds, max(iterations // 5, 3))


def performance_summary(samples_ms: list[float], batch: int, wall_s: float) -> list[str]:
    """trtexec's "Performance summary" lines for latency samples in milliseconds."""
    s = np.asarray(samples_ms)
    qps = len(s) / wall_s if wall_s > 0 else float("nan")
    p = {q: float(np.percentile(s, q)) for q in (90, 95, 99)}
    return [
        "=== Performance summary ===",
        f"Throughput: {qps:.2f} qps ({qps * batch:.2f} images/s at batch {batch})",
        f"Latency: min = {s.min():.3f} ms, max = {s.max():.3f} ms, mean = {s.mean():.3f} ms, "
        f"median = {np.median(s):.3f} ms, percentile(90%) = {p[90]:.3f} ms, "
        f"percentile(95%) = {p[95]:.3f} ms, percentile(99%) = {p[99]:.3f} ms",
        f"Total Host Walltime: {wall_s:.3f} s ({len(s)} iterations)",
    ]


def _print_profile(exe: Any, feeds: dict[str, np.ndarray], runs: int) -> None:
    totals: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for name, op, ms in exe.profile(feeds):
            totals.setdefault((name, op), []).append(ms)
    rows = sorted(((float(np.mean(v)), float(np.median(v)), k) for k, v in totals.items()), reverse=True)
    total = sum(r[0] for r in rows) or 1.0
    out.print(f"=== Profile (average over {runs} runs) ===")
    out.print(f"{'Time %':>7} {'Avg (ms)':>9} {'Median (ms)':>11}  Layer", markup=False)
    for avg, median, (name, op) in rows:
        out.print(f"{100 * avg / total:6.1f}% {avg:9.3f} {median:11.3f}  {name} [{op}]", markup=False)
    out.print(f"{'100.0%':>7} {total:9.3f} {'':>11}  total", markup=False)


@click.command("compare", short_help="Check lanner against ONNX Runtime (like Polygraphy).")
@click.argument("model", type=_path_in)
@click.option("--against", type=click.Choice(["onnxruntime"]), default="onnxruntime", show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "reference"]), default="cpu", show_default=True)
@click.option("--per-layer", is_flag=True, help="Also compare every intermediate tensor both sides compute.")
@click.option("--rtol", type=float, default=1e-3, show_default=True, help="Elementwise: |a - b| <= atol + rtol * |b|.")
@click.option("--atol", type=float, default=1e-4, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), help="Batch size (default: the model's fixed batch, else 1).")
@click.option("--seed", type=int, default=0, show_default=True)
@_input_size
def compare(
    model: Path,
    against: str,
    backend: str,
    per_layer: bool,
    rtol: float,
    atol: float,
    batch: int | None,
    seed: int,
    input_size: str | None,
) -> None:
    """Run MODEL on lanner and on ONNX Runtime with the same random inputs; per output (and layer) diffs.

    \b
    Example:
      lanner compare det.onnx --against onnxruntime --per-layer
    """
    from lanner.engine import get_backend, load_onnx, optimize
    from lanner.engine.onnx_import import fix_input_size

    size = parse_input_size(input_size)
    graph = optimize(load_onnx(model if size is None else fix_input_size(model.read_bytes(), size)))
    specs = [_Spec(n, graph.values[n].dtype, graph.values[n].shape) for n in graph.inputs]
    feeds = random_feeds(specs, resolve_batch(specs, batch, model), seed)
    exe: Any = get_backend(backend).prepare(graph)  # both backends have run_all
    ours = exe.run_all(feeds) if per_layer else exe.run(feeds)
    wanted = [n for node in graph.nodes for n in node.outputs if n] if per_layer else list(graph.outputs)
    theirs = _run_onnxruntime(model, feeds, wanted)
    failed = 0
    names = [n for n in wanted if n in theirs and n in ours]
    if per_layer:
        out.print(f"per layer: {len(names)} tensors computed by both sides", markup=False)
    for name in names:
        line, ok = _diff_line(name, ours[name], theirs[name], rtol, atol)
        failed += not ok
        if per_layer or name in graph.outputs:
            out.print(line, markup=False)
    verdict = "PASSED" if not failed else "FAILED"
    out.print(f"{verdict}: {len(names) - failed}/{len(names)} tensors within rtol={rtol:g} atol={atol:g}")
    if failed:
        fix = "the first FAIL line is where they start to diverge" if per_layer else "rerun with --per-layer"
        raise LannerError(f"{failed} tensor(s) differ from {against}", where=str(model), fix=fix)


class _Spec:
    def __init__(self, name: str, dtype: Any, shape: Any) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


def resolve_batch(specs: list[Any], batch: int | None, source: Path) -> int:
    """The batch to run: ``batch`` (default 1), or the model's fixed batch, which ``batch`` must then equal.

    Why: inputs of a fixed-batch model keep their own first dim, so a different ``--batch`` would run (and
    report throughput for) a batch it never ran.
    """
    shape = tuple(specs[0].shape or ()) if specs else ()
    fixed = shape[0] if shape and isinstance(shape[0], int) else None
    if fixed is None or batch in (None, fixed):
        return batch or fixed or 1
    raise UsageError(
        f"--batch {batch}: the model has a fixed batch of {fixed}",
        where=str(source),
        fix=f"use --batch {fixed}, or re-export the model with a dynamic batch (lanner export --dynamic-batch)",
    )


def random_feeds(specs: list[Any], batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for ``specs`` (symbolic first dim = ``batch``): standard normal floats, zeros otherwise."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        dims = [batch if (i == 0 and isinstance(d, str)) else d for i, d in enumerate(spec.shape)]
        if not all(isinstance(d, int) for d in dims):
            raise UsageError(
                f"input '{spec.name}' has dynamic dims {spec.shape}",
                fix="pass --input-size HxW, or export the model with a fixed image size",
            )
        dtype = np.dtype(spec.dtype)
        feeds[spec.name] = (
            rng.standard_normal(dims).astype(dtype) if np.issubdtype(dtype, np.floating) else np.zeros(dims, dtype)
        )
    return feeds


def _diff_line(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> tuple[str, bool]:
    if got.shape != want.shape:
        return f"FAIL  {name}: shape {got.shape} vs {want.shape}", False
    a, b = got.astype(np.float64), want.astype(np.float64)
    diff = np.abs(a - b)
    rel = diff / np.maximum(np.abs(b), 1e-12)
    norm = np.linalg.norm(b)
    l2 = float(np.linalg.norm(a - b) / norm) if norm > 0 else float(np.linalg.norm(a - b))
    ok = bool(np.all(diff <= atol + rtol * np.abs(b)))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    stats = f"max abs {max_abs:.3g}, max rel {max_rel:.3g}, mean abs {float(diff.mean()) if diff.size else 0:.3g}"
    return f"{'ok  ' if ok else 'FAIL'}  {name} {list(got.shape)}: {stats}, rel L2 {l2:.3g}", ok


def _run_onnxruntime(model: Path, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """ONNX Runtime (CPU, all graph optimizations) with ``names`` exposed as extra outputs where they exist."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(model))
    existing = {o.name for o in proto.graph.output}
    produced = {o for node in proto.graph.node for o in node.output}
    for name in names:
        if name in produced and name not in existing:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, feeds), strict=True))


def _engine(source: Path, batch: int, input_size: tuple[int, int] | None = None) -> Any:
    """An ``Engine`` from a plan file, or built in memory from an ONNX model (default tactics tuned at ``batch``,
    dynamic image dims set to ``input_size``)."""
    from lanner.engine.build import BuildConfig, build_engine
    from lanner.engine.onnx_import import load_onnx
    from lanner.engine.runtime import Engine

    if source.suffix != ".onnx":
        if input_size is not None:
            raise UsageError("--input-size applies to an ONNX model; a plan runs at the size it was built for",
                             where=str(source), fix="drop --input-size, or bench the .onnx")  # fmt: skip
        return Engine.load(source)
    graph = load_onnx(source)
    first = graph.values[graph.inputs[0]].shape if graph.inputs else None
    dynamic = bool(first) and isinstance(first[0], str)  # type: ignore[index]
    info(escape(f"building {source} in memory (profile {batch}:{batch}:{batch})" if dynamic else f"building {source}"))
    with progress_bar("timing tactics (layers)", None) as advance:
        config = BuildConfig(batch=[str(batch)] if dynamic else [], input_size=input_size)
        return Engine(build_engine(source, config, progress=advance))
