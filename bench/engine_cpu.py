"""lanner ``cpu`` engine vs ONNX Runtime, same ONNX, 2 threads, batch 1 and 8 (issue 4, "Done when").

Models (random weights, built with ``lanner.models.create_model`` and exported with ``export_onnx``,
dynamic batch): ResNet-18 and MobileNetV2 at 224x224, YOLOX-S at 640x384 (HxW 384x640).
ONNX Runtime: CPU EP, all graph optimizations, ``intra_op_num_threads=2``, sequential execution.
lanner: ``build_engine`` with one profile at the measured batch (tactics timed at that batch), torch
intra-op threads 2. Runs of the two are interleaved round by round so load changes on a shared machine hit
both alike; the table gives median (and min) wall ms per inference and the median ratio lanner/ORT, plus
the relative L2 between the two outputs (a correctness check on the real models).

    python bench/engine_cpu.py [--models resnet18,mobilenet_v2,yolox_s,my.onnx] [--batches 1,8] [--rounds 15]
        [--threads 2] [--work /tmp/lanner-bench-engine] [--no-spin | --isolate] [--tactic-runs 3] [--int8]

Prints a table and one JSON line at the end; each row also names the whole-graph tactic variant the builder
kept (``per-node``, ``uniform:<tactic>`` or ``uniform:<tactic>+<partial tactic>``, see ``lanner.engine.tactics``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

SIZES = {"resnet18": (224, 224), "mobilenet_v2": (224, 224), "yolox_s": (384, 640), "yolox_nano": (384, 640)}


INPUT_SIZE_ENV = "LANNER_BENCH_INPUT_SIZE"  # --input-size, for every module copy and spawned worker to read


def export(name: str, work: Path) -> Path:
    """Dynamic-batch ONNX of ``name`` with random weights (cached under ``work``); a ``.onnx`` path in
    ``--models`` (your own model, e.g. an Ultralytics export) is copied there, its dynamic height/width set
    to ``--input-size``."""
    if name.endswith(".onnx"):
        from lanner.engine.onnx_import import fix_input_size

        data = Path(name).read_bytes()
        path = work / Path(name).name
        size = os.environ.get(INPUT_SIZE_ENV)
        if size:
            h, w = (int(v) for v in size.lower().split("x"))
            data = fix_input_size(data, (h, w))
        path.write_bytes(data)
        SIZES[name] = input_hw(path)
        return path
    path = work / f"{name}.onnx"
    if not path.is_file():
        from lanner.models import create_model, export_onnx

        export_onnx(create_model(name), path, batch="dynamic", input_size=SIZES[name], check=False)
    return path


def input_hw(path: Path) -> tuple[int, int]:
    """The fixed height and width of the model's first (NCHW) input."""
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    hw = tuple(d.dim_value for d in dims[2:4])
    if len(hw) != 2 or 0 in hw:
        raise SystemExit(f"{path}: dynamic height/width; pass --input-size HxW")
    return hw  # type: ignore[return-value]


def ort_session(path: Path, threads: int, spin: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _VariantLog(logging.Handler):
    """Keeps the builder's "whole graph: <variant> (...)" log line (the variant it kept and the times)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("whole graph: "):
            self.lines.append(message[len("whole graph: ") :])


def lanner_engine(path: Path, batch: int, tactic_runs: int = 3):
    from lanner.engine.build import BuildConfig, build_engine
    from lanner.engine.runtime import Engine

    log = _VariantLog()
    logger = logging.getLogger("lanner.engine")
    logger.addHandler(log)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        plan = build_engine(path, BuildConfig(batch=[str(batch)], tactic_warmup=1, tactic_runs=tactic_runs))
        build_s = time.perf_counter() - start
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    variant = log.lines[-1].split(" ", 1)[0] if log.lines else "per-node"
    return Engine(plan), plan, build_s, variant


def timed(fn, rounds_ms: list[float]) -> None:
    start = time.perf_counter()
    fn()
    rounds_ms.append((time.perf_counter() - start) * 1e3)


def bench_one(name: str, batch: int, rounds: int, threads: int, work: Path, spin: bool, tactic_runs: int = 3) -> dict:
    path = export(name, work)
    session = ort_session(path, threads, spin)
    engine, plan, build_s, variant = lanner_engine(path, batch, tactic_runs)
    h, w = SIZES[name]
    x = np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32)
    feeds = {session.get_inputs()[0].name: x}
    exe = engine.executable_for(feeds)
    ours, theirs = exe.run(feeds), dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    rel = max(float(np.linalg.norm(ours[k] - theirs[k]) / max(np.linalg.norm(theirs[k]), 1e-12)) for k in theirs)
    for _ in range(2):  # warm-up both
        session.run(None, feeds)
        exe.run(feeds)
    ort_ms: list[float] = []
    lanner_ms: list[float] = []
    for i in range(rounds):  # interleaved, alternating who goes first
        pair = [(lambda: session.run(None, feeds), ort_ms), (lambda: exe.run(feeds), lanner_ms)]
        for fn, sink in pair if i % 2 == 0 else pair[::-1]:
            timed(fn, sink)
    ratios = [a / b for a, b in zip(lanner_ms, ort_ms, strict=True)]
    tactics: dict[str, int] = {}
    for t in plan.profiles[0].tactics.values():
        tactics[t] = tactics.get(t, 0) + 1
    return {
        "model": name,
        "batch": batch,
        "ort_ms": float(np.median(ort_ms)),
        "ort_min_ms": float(np.min(ort_ms)),
        "lanner_ms": float(np.median(lanner_ms)),
        "lanner_min_ms": float(np.min(lanner_ms)),
        "ratio": float(np.median(ratios)),
        "rel_l2": rel,
        "layers": plan.layers,
        "fallback_nodes": len(exe.fallback_nodes),
        "tactics": tactics,
        "variant": variant,
        "build_s": round(build_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,mobilenet_v2,yolox_s", help="names, or paths to .onnx files")
    parser.add_argument("--input-size", default=None, help="HxW for .onnx files in --models with dynamic H/W")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lanner-bench-engine"))
    parser.add_argument("--tactic-runs", type=int, default=3, help="timed runs per tactic candidate and variant")
    parser.add_argument(
        "--int8", action="store_true", help="also the INT8 rows: FP32 plan vs INT8 plan vs ORT (engine_cpu_int8.py)"
    )
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="each side in its own process with its default (spinning) thread pool, runs alternating with a pause "
        "(engine_cpu_isolated.py): no pool spins while the other side runs",
    )
    parser.add_argument(
        "--no-spin",
        action="store_true",
        help="Idle threads sleep instead of spinning, on both sides: OMP_WAIT_POLICY=PASSIVE for torch's OpenMP "
        "and session.intra_op.allow_spinning=0 for ORT. Spinning worker threads thrash on an oversubscribed machine.",
    )
    args = parser.parse_args()
    if args.input_size:
        os.environ[INPUT_SIZE_ENV] = args.input_size
    if args.no_spin:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when torch loads libgomp: before `import torch`
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    spin = "no-spin (passive waits)" if args.no_spin else "spinning (defaults)"
    spin += ", isolated processes" if args.isolate else ""
    load = os.getloadavg()[0]
    print(f"threads {args.threads}, {spin}, cpu count {os.cpu_count()}, load {load:.1f}, torch {torch.__version__}")
    header = f"{'model':<14}{'batch':>5}{'ORT ms':>10}{'lanner ms':>11}{'ratio':>7}  {'(min ORT/lanner)':<18}"
    header += f"{'rel L2':>9}  layers"
    print(header)
    results = []
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            rounds = args.rounds if batch == 1 else max(args.rounds // 2, 3)
            if args.isolate:
                from engine_cpu_isolated import bench_isolated

                r = bench_isolated(name, batch, rounds, args.threads, args.work, args.tactic_runs)
            else:
                r = bench_one(
                    name, batch, rounds, args.threads, args.work, spin=not args.no_spin, tactic_runs=args.tactic_runs
                )
            results.append(r)
            layers = f"{r['layers']['original']}→{r['layers']['fused']}"
            mins = f"{r['ort_min_ms']:.1f}/{r['lanner_min_ms']:.1f}"
            label = Path(name).stem[:13]
            print(
                f"{label:<14}{batch:>5}{r['ort_ms']:>10.1f}{r['lanner_ms']:>11.1f}{r['ratio']:>7.2f}  {mins:<18}"
                f"{r['rel_l2']:>9.1e}  {layers} {r['variant']} tactics {r['tactics']} build {r['build_s']} s",
                flush=True,
            )
    if args.int8:  # INT8 rows (bench/engine_cpu_int8.py): calibrated QDQ model, INT8 plan vs FP32 plan vs ORT
        from engine_cpu_int8 import INT8_HEADER, bench_int8, print_int8

        print(INT8_HEADER)
        for name in (m for m in args.models.split(",") if m in ("resnet18", "mobilenet_v2")):
            for batch in (int(b) for b in args.batches.split(",")):
                rounds = args.rounds if batch == 1 else max(args.rounds // 2, 3)
                r = bench_int8(name, batch, rounds, args.threads, args.work, not args.no_spin, args.tactic_runs)
                results.append({"int8": True, **r})
                print_int8(r)
    print(f"load at end {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "engine_cpu", "threads": args.threads, "spin": not args.no_spin, "results": results}))


if __name__ == "__main__":
    main()
