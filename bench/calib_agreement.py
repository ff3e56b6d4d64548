"""INT8 vs FP32 agreement of calibrated classifiers on synthetic vehicle crops (issue 4, "Done when").

For each model (lanner classifiers with random weights, or briefly trained with ``--train-steps``):
export FP32 ONNX → calibrate on ``--calib`` crops (sorted order, batch 8) → QDQ ONNX per method →
run FP32 and INT8 with ONNX Runtime on ``--eval`` *other* crops and report

* top-1 agreement (the issue's metric, target >= 99%);
* mean cosine similarity and relative L2 error of the logits (a proxy that does not depend on the
  FP32 decision margins: random-weight nets often have near-tied logits, or always predict one class,
  which makes top-1 agreement either meaningless or needlessly harsh);
* how many classes the FP32 model predicts at all and its median top-1/top-2 logit margin.

Statistics are collected once per model; every method thresholds the same histograms. Each QDQ model is run
three ways (``runner``): ``qdq`` = ONNX Runtime with graph optimizations off, i.e. the QDQ model's own
arithmetic (what TensorRT and lanner's reference compute); ``ort_int8`` = ONNX Runtime with all optimizations
(its fused QLinearConv kernels); ``lanner_int8`` = lanner's cpu backend with every int8 kernel it can use.
``--seed`` seeds the models' random init (before 2026-12-01 it was unseeded, so numbers moved run to run).

Why MobileNetV2 looked bad (86.6 % / 95.2 % on 2026-11-30): not the calibration. On this AVX2 CPU without VNNI,
ONNX Runtime's u8s8 int8 GEMM adds pairs of products in saturating int16 (``vpmaddubsw``); with full-range
int8 weights and activations that overflows, and MobileNetV2's 1x1 QLinearConvs (those with a Q on both
sides) go wrong. With optimizations off the same QDQ file is fine. Ablation (seed 1, 60 steps, 200 images):
quantizing only one group of convs costs relL2 0.011-0.016; any two groups that create QLinearConvs jump
to 0.18, and 7-bit weights/activations make ORT's fused result match the unfused one again.

Measured 2026-12-01 on the shared 2-core box, 64x64 body-type crops, 500 calibration / 500 eval crops,
``--train-steps 60 --seed 0`` (top-1 agreement, qdq / ort_int8 / lanner_int8):
  resnet10      entropy 99.4 / 99.4 / 99.2 %  minmax 99.0 / 99.4 / 99.4 %  (relL2 ~0.0095 for all)
  mobilenet_v2  entropy 96.6 / 90.8 / 97.4 %  minmax 98.4 / 91.4 / 96.6 %  (relL2 0.012 / 0.050 / 0.021)
  mobilenet_v2's FP32 median top-1/top-2 margin is only 0.46 after 60 steps, so a 1.2 % logit error flips
  near-ties; with ``--seed 1`` (margin 2.9) qdq gives 99.6 % for both methods (ORT fused 95.4 / 95.2 %).
  Pinning the first conv and/or the classifier Gemm to FP32 does not lift seed 0 to 99 % (96.6-98.8 %).

Usage: python bench/calib_agreement.py [--models resnet10,mobilenet_v2] [--calib 500] [--eval 500]
       [--size 64] [--methods entropy,minmax] [--train-steps 0] [--seed 0]
Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_crops(root: Path, n_calib: int, n_eval: int, size: int) -> tuple[list[Path], list[Path]]:
    """Vehicle body-type crops: a calibration set and a disjoint evaluation set (different seeds)."""
    from lanner.data.synth.crops import generate_crops
    from lanner.data.synth.images import SynthConfig
    from lanner.data.synth.world import BODY_TYPES

    sets = []
    for name, n, seed in (("calib", n_calib, 0), ("eval", n_eval, 1)):
        per_class = -(-n // len(BODY_TYPES))
        if not (root / name).is_dir():  # reuse the crops of an earlier run with --work
            generate_crops(SynthConfig(width=320, height=192, seed=seed), root / name, "body_type", per_class, size)
        paths = sorted((root / name).rglob("*.jpg"))
        sets.append(paths[:: max(1, len(paths) // n)][:n] if len(paths) > n else paths)
    return sets[0], sets[1]


def train_briefly(model, paths: list[Path], preprocess, steps: int) -> None:
    """A few SGD steps on the calibration crops' folder labels, so logits have real margins."""
    import torch

    from lanner.engine.calibrate.images import read_image

    labels = sorted({p.parent.name for p in paths})
    x = torch.from_numpy(np.stack([preprocess(read_image(p)) for p in paths]))
    y = torch.tensor([labels.index(p.parent.name) for p in paths])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(paths), (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def run(path_or_model, x: np.ndarray, *, exact: bool = False) -> np.ndarray:
    """ONNX Runtime's outputs over ``x`` in chunks of 64. ``exact``: graph optimizations off, so a QDQ model
    runs as its float Q/DQ arithmetic instead of ORT's fused int8 kernels (which saturate on AVX2 without VNNI)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if exact:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = path_or_model if isinstance(path_or_model, bytes) else Path(path_or_model).read_bytes()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 64]})[0] for i in range(0, len(x), 64)])


def agreement(fp32: np.ndarray, int8: np.ndarray) -> dict[str, float]:
    cos = np.sum(fp32 * int8, 1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1) + 1e-30)
    top2 = np.sort(fp32, axis=1)[:, -2:]
    return {
        "top1_agreement": float(np.mean(fp32.argmax(1) == int8.argmax(1))),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "rel_l2": float(np.linalg.norm(int8 - fp32) / np.linalg.norm(fp32)),
        "fp32_classes_predicted": len(np.unique(fp32.argmax(1))),
        "fp32_median_margin": float(np.median(top2[:, 1] - top2[:, 0])),
        "median_abs_logit_error": float(np.median(np.abs(int8 - fp32).max(1))),
    }


def evaluate(name: str, args, calib: list[Path], evals: list[Path], work: Path) -> list[dict]:
    import torch

    from lanner.data.synth.world import BODY_TYPES
    from lanner.engine import load_onnx, to_onnx
    from lanner.engine.calibrate import Preprocess, collect_statistics, compute_amax, insert_qdq, prepare_graph
    from lanner.engine.calibrate.images import iter_batches, read_image
    from lanner.models import create_model, export_onnx

    torch.manual_seed(args.seed)  # the random init (and so the agreement) is reproducible
    model = create_model(name, len(BODY_TYPES))
    fp32_path = work / f"{name}.onnx"
    export_onnx(model, fp32_path, input_size=(args.size, args.size), batch="dynamic")
    preprocess = Preprocess.from_graph(load_onnx(fp32_path))
    if args.train_steps:
        train_briefly(model, calib, preprocess, args.train_steps)
        export_onnx(model, fp32_path, input_size=(args.size, args.size), batch="dynamic")
    graph = prepare_graph(load_onnx(fp32_path))
    start = time.perf_counter()
    stats = collect_statistics(graph, iter_batches(calib, preprocess, 8), backend=args.backend)
    collect_s = time.perf_counter() - start
    x_eval = np.stack([preprocess(read_image(p)) for p in evals])
    fp32 = run(fp32_path, x_eval)
    rows = []
    for method in args.methods.split(","):
        start = time.perf_counter()
        amax = {k: compute_amax(h, method) for k, h in stats.items()}
        amax_s = time.perf_counter() - start
        qdq = to_onnx(insert_qdq(graph, amax)[0])
        outputs = {
            "qdq": run(qdq.SerializeToString(), x_eval, exact=True),
            "ort_int8": run(qdq.SerializeToString(), x_eval),
            "lanner_int8": run_lanner_int8(qdq, x_eval),
        }
        for runner, int8 in outputs.items():
            row = {"model": name, "method": method, "runner": runner}
            row.update({"calib_images": len(calib), "eval_images": len(evals), "seed": args.seed})
            row.update(agreement(fp32, int8))
            row.update(
                {"collect_s": round(collect_s, 2), "amax_s": round(amax_s, 2), "trained_steps": args.train_steps}
            )
            rows.append(row)
            print(
                f"{name:14s} {method:8s} {runner:12s} top1 {row['top1_agreement']:.4f}  cos {row['cosine_mean']:.5f} "
                f"(min {row['cosine_min']:.4f})  relL2 {row['rel_l2']:.4f}  classes {row['fp32_classes_predicted']}  "
                f"margin {row['fp32_median_margin']:.4f}  err {row['median_abs_logit_error']:.4f}",
                flush=True,
            )
    return rows


def run_lanner_int8(qdq, x: np.ndarray) -> np.ndarray:
    """lanner's cpu backend on the QDQ model with every int8 kernel it can use (the least exact plan)."""
    from lanner.engine import get_backend, load_onnx, optimize
    from lanner.engine.backends.cpu_int8 import QCONV

    graph = optimize(load_onnx(qdq))
    cpu = get_backend("cpu")
    ctx = cpu.context(graph)
    tactics = {n.name: cpu.tactics(n, ctx)[0] for n in graph.nodes if n.key == QCONV}
    exe = cpu.prepare(graph, tactics)
    name = graph.inputs[0]
    return np.concatenate([next(iter(exe.run({name: x[i : i + 64]}).values())) for i in range(0, len(x), 64)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet10,mobilenet_v2")
    parser.add_argument("--methods", default="entropy,minmax")
    parser.add_argument("--calib", type=int, default=500)
    parser.add_argument("--eval", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the models' random init")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--work", type=Path, help="Keep crops and models here (default: a temp folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        calib, evals = make_crops(work / "crops", args.calib, args.eval, args.size)
        rows = [row for name in args.models.split(",") for row in evaluate(name, args, calib, evals, work)]
    print(json.dumps({"calib_agreement": rows}))


if __name__ == "__main__":
    main()
