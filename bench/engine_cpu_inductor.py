"""lanner's cpu plan vs ONNX Runtime vs ``torch.compile`` (Inductor, weights frozen), one model, one process.

The question: would a whole-graph "compiled" tactic close lanner's FP32 gap to ONNX Runtime (issue 4)?
Inductor with ``freezing`` folds weights, fuses pointwise epilogues and calls the same oneDNN convolutions,
and it needs a C++ compiler at run time, so it only earns a place as a tactic if it beats both.
The torch model is the one exported to ONNX (same weights); rel L2 of the outputs is printed as a check.
Rounds are interleaved, the order rotating, 10 runs per round; medians over rounds.

Usage: python bench/engine_cpu_inductor.py [--models resnet18,mobilenet_v2] [--batches 1,8] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from engine_cpu import SIZES, lanner_engine, ort_session


def bench(name: str, batch: int, rounds: int, work: Path) -> dict:
    import torch
    import torch._inductor.config as inductor_config

    from lanner.models import create_model, export_onnx

    torch.manual_seed(0)
    model = create_model(name).eval()
    path = work / f"{name}_inductor.onnx"
    export_onnx(model, path, batch="dynamic", input_size=SIZES[name], check=False)
    h, w = SIZES[name]
    x = np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32)
    session = ort_session(path, torch.get_num_threads(), spin=False)
    feeds = {session.get_inputs()[0].name: x}
    exe = lanner_engine(path, batch)[0].executable_for(feeds)
    inductor_config.freezing = True
    start = time.perf_counter()
    with torch.no_grad():
        compiled = torch.compile(model)
        xt = torch.from_numpy(x)
        ref = compiled(xt)
        compile_s = time.perf_counter() - start
        theirs = session.run(None, feeds)[0]
        ours = np.asarray(ref[0] if isinstance(ref, (tuple, list)) else ref)
        rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
        runners = {
            "ort": lambda: session.run(None, feeds),
            "lanner": lambda: exe.run(feeds),
            "inductor": lambda: compiled(xt),
        }
        ms: dict[str, list[float]] = {k: [] for k in runners}
        for i in range(rounds):
            order = list(runners)[i % 3 :] + list(runners)[: i % 3]
            for key in order:
                runners[key]()
                start = time.perf_counter()
                for _ in range(10):
                    runners[key]()
                ms[key].append((time.perf_counter() - start) * 100)
    med = {k: statistics.median(v) for k, v in ms.items()}
    return {"model": name, "batch": batch, "compile_s": round(compile_s, 1), "rel_l2_inductor_vs_ort": rel, **med}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lanner-bench-engine"))
    args = parser.parse_args()
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        print("skipped: torch.compile's Inductor needs a C++ compiler on PATH (g++ or clang++)")
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # as engine_cpu.py --no-spin: before torch loads libgomp
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"threads {args.threads}, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}")
    header = f"{'model':<14}{'batch':>5}{'ORT ms':>9}{'lanner ms':>11}{'inductor ms':>13}"
    print(header + f"{'lanner/ORT':>12}{'inductor/ORT':>14}")
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            r = bench(name, batch, args.rounds, args.work)
            print(
                f"{name:<14}{batch:>5}{r['ort']:>9.1f}{r['lanner']:>11.1f}{r['inductor']:>13.1f}"
                f"{r['lanner'] / r['ort']:>12.2f}{r['inductor'] / r['ort']:>14.2f}"
                f"  (compile {r['compile_s']} s, inductor vs ORT rel L2 {r['rel_l2_inductor_vs_ort']:.1e})",
                flush=True,
            )


if __name__ == "__main__":
    main()
