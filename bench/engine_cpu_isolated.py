"""``bench/engine_cpu.py --isolate``: each side in its own worker process, runs alternating, a pause between.

Why: in one process, ONNX Runtime's intra-op pool and torch's OpenMP pool both keep their idle threads spinning
for a while after each call (their defaults), so whichever side runs next shares the 2 cores with the other's
spinning threads; ``--no-spin`` avoids that but makes every parallel region wake sleeping threads, a cost torch
pays per layer. Here both keep their default thread pools: the ORT session and the lanner engine each live in a
spawned process, the parent asks them in turn for one timed inference and waits ``PAUSE_S`` after each so the
other side's spinning threads have gone to sleep. Rounds still alternate, so load changes hit both alike.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

PAUSE_S = 0.25  # > the idle-spin time of both pools (libgomp's default spin count, ORT's spin-then-sleep)


def _worker(side: str, path: str, batch: int, threads: int, tactic_runs: int, conn: Any) -> None:
    """Build the side's runner, send (output, build info), then answer "run" with one timed inference in ms."""
    import torch

    torch.set_num_threads(threads)
    from engine_cpu import input_hw, lanner_engine, ort_session

    x = np.random.default_rng(0).standard_normal((batch, 3, *input_hw(Path(path)))).astype(np.float32)
    if side == "ort":
        session = ort_session(Path(path), threads, spin=True)
        feeds = {session.get_inputs()[0].name: x}
        run = lambda: session.run(None, feeds)  # noqa: E731
        out, info = dict(zip([o.name for o in session.get_outputs()], run())), {}
    else:
        engine, plan, build_s, variant = lanner_engine(Path(path), batch, tactic_runs)
        feeds = {plan.graph.inputs[0]: x}
        exe = engine.executable_for(feeds)
        run = lambda: exe.run(feeds)  # noqa: E731
        tactics: dict[str, int] = {}
        for t in plan.profiles[0].tactics.values():
            tactics[t] = tactics.get(t, 0) + 1
        out = run()
        info = {"layers": plan.layers, "tactics": tactics, "variant": variant, "build_s": round(build_s, 1)}
    run()
    conn.send((out, info))
    while conn.recv() == "run":
        start = time.perf_counter()
        run()
        conn.send((time.perf_counter() - start) * 1e3)


def bench_isolated(name: str, batch: int, rounds: int, threads: int, work: Path, tactic_runs: int) -> dict:
    """One row like ``engine_cpu.bench_one``, measured with the two sides in separate processes."""
    from engine_cpu import export

    path = str(export(name, work))
    ctx = mp.get_context("spawn")
    pipes, procs = {}, []
    for side in ("ort", "lanner"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(side, path, batch, threads, tactic_runs, child), daemon=True)
        proc.start()
        pipes[side], procs = parent, [*procs, proc]
    (theirs, _), (ours, info) = pipes["ort"].recv(), pipes["lanner"].recv()
    rel = max(float(np.linalg.norm(ours[k] - theirs[k]) / max(np.linalg.norm(theirs[k]), 1e-12)) for k in theirs)
    times: dict[str, list[float]] = {"ort": [], "lanner": []}
    try:
        for i in range(rounds):
            for side in ("ort", "lanner") if i % 2 == 0 else ("lanner", "ort"):
                time.sleep(PAUSE_S)
                pipes[side].send("run")
                times[side].append(pipes[side].recv())
    finally:
        for side, proc in zip(("ort", "lanner"), procs, strict=True):
            pipes[side].send("stop")
            proc.join(timeout=10)
    ratios = [a / b for a, b in zip(times["lanner"], times["ort"], strict=True)]
    return {
        "model": name,
        "batch": batch,
        "ort_ms": float(np.median(times["ort"])),
        "ort_min_ms": float(np.min(times["ort"])),
        "lanner_ms": float(np.median(times["lanner"])),
        "lanner_min_ms": float(np.min(times["lanner"])),
        "ratio": float(np.median(ratios)),
        "rel_l2": rel,
        "fallback_nodes": 0,
        "isolated": True,
        **info,
    }


__all__ = ["bench_isolated"]
