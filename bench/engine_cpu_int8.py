"""INT8 rows of ``bench/engine_cpu.py``: lanner FP32 plan vs lanner INT8 plan vs ONNX Runtime on the QDQ model.

Per model (random weights, the same dynamic-batch ONNX as the FP32 rows): calibrate (minmax over
``CALIB_BATCHES`` seeded random batches; the speed does not depend on the ranges) → QDQ ONNX
(``insert_qdq``: per-tensor int8 activations, per-channel int8 weights) → ``build_engine`` on both the FP32
and the QDQ ONNX at the measured batch (the INT8 plan's ``QConv`` nodes choose ``int8.fbgemm``,
``int8.onednn`` or ``fp32:<tactic>`` by timing). The three are run interleaved round by round; the row gives
median ms, the median ratio INT8 / FP32 (the issue's goal: <= 0.6) and how many QConv nodes kept an int8
kernel, plus the relative L2 of the INT8 plan against the QDQ model run exactly (ONNX Runtime with its graph
optimizations off: Q/DQ as float ops; ONNX Runtime's fused int8 kernels saturate on AVX2 CPUs without VNNI,
see README INT8).

    python bench/engine_cpu.py --int8 [--models resnet18,mobilenet_v2] [--batches 1,8]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CALIB_BATCHES = 4


def qdq_model(path: Path, size: tuple[int, int]) -> Path:
    """``<model>_qdq.onnx`` next to ``path``: minmax-calibrated on seeded random batches (cached)."""
    out = path.with_name(f"{path.stem}_qdq.onnx")
    if out.is_file():
        return out
    import onnx

    from lanner.engine import load_onnx, to_onnx
    from lanner.engine.calibrate import calibrate_ranges, insert_qdq, prepare_graph

    graph = prepare_graph(load_onnx(path))
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((2, 3, *size)).astype(np.float32) for _ in range(CALIB_BATCHES)]
    amax = calibrate_ranges(graph, batches, method="minmax", backend="cpu")
    qgraph, _ = insert_qdq(graph, amax)
    onnx.save(to_onnx(qgraph), str(out))
    return out


def ort_exact(path: Path, threads: int):
    """ONNX Runtime with graph optimizations off: the QDQ arithmetic without its fused int8 kernels."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_int8(name: str, batch: int, rounds: int, threads: int, work: Path, spin: bool, tactic_runs: int) -> dict:
    """One INT8 row (see module docstring)."""
    from engine_cpu import SIZES, export, lanner_engine, ort_session, timed

    path = export(name, work)
    qpath = qdq_model(path, SIZES[name])
    fp32_engine, _, fp32_build, _ = lanner_engine(path, batch, tactic_runs)
    int8_engine, plan, int8_build, variant = lanner_engine(qpath, batch, tactic_runs)
    session = ort_session(qpath, threads, spin)
    x = np.random.default_rng(0).standard_normal((batch, 3, *SIZES[name])).astype(np.float32)
    feeds = {session.get_inputs()[0].name: x}
    fp32_exe, int8_exe = fp32_engine.executable_for(feeds), int8_engine.executable_for(feeds)
    exact = ort_exact(qpath, threads).run(None, feeds)[0]
    ours = next(iter(int8_exe.run(feeds).values()))
    rel = float(np.linalg.norm(ours - exact) / max(np.linalg.norm(exact), 1e-12))
    calls = {"fp32": lambda: fp32_exe.run(feeds), "int8": lambda: int8_exe.run(feeds)}
    calls["ort_qdq"] = lambda: session.run(None, feeds)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for fn in calls.values():  # warm-up
        fn()
    order = list(calls)
    for i in range(rounds):  # interleaved, rotating who goes first
        for key in order[i % 3 :] + order[: i % 3]:
            timed(calls[key], times[key])
    qconv = [n.name for n in plan.graph.nodes if n.op_type == "QConv"]
    chosen = plan.profiles[0].tactics
    return {
        "model": name,
        "batch": batch,
        "fp32_ms": float(np.median(times["fp32"])),
        "int8_ms": float(np.median(times["int8"])),
        "ort_qdq_ms": float(np.median(times["ort_qdq"])),
        "ratio_int8_fp32": float(np.median(np.array(times["int8"]) / np.array(times["fp32"]))),
        "qconv": len(qconv),
        "qconv_int8_kernel": sum(str(chosen.get(n, "")).startswith("int8.") for n in qconv),
        "int8_tactics": {t: sum(chosen.get(n) == t for n in qconv) for t in sorted({chosen.get(n, "") for n in qconv})},
        "rel_l2_vs_qdq": rel,
        "variant": variant,
        "build_s": round(fp32_build + int8_build, 1),
    }


def print_int8(r: dict) -> None:
    print(
        f"{r['model']:<14}{r['batch']:>5}{r['fp32_ms']:>10.1f}{r['int8_ms']:>10.1f}{r['ort_qdq_ms']:>10.1f}"
        f"{r['ratio_int8_fp32']:>7.2f}  int8 kernels {r['qconv_int8_kernel']}/{r['qconv']}  "
        f"relL2 vs QDQ {r['rel_l2_vs_qdq']:.1e}  {r['variant']} build {r['build_s']} s  {r['int8_tactics']}",
        flush=True,
    )


INT8_HEADER = f"{'model':<14}{'batch':>5}{'FP32 ms':>10}{'INT8 ms':>10}{'ORT-QDQ':>10}{'ratio':>7}"
__all__ = ["INT8_HEADER", "bench_int8", "print_int8", "qdq_model"]
