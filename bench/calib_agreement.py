"""INT8 vs FP32 agreement of calibrated classifiers on synthetic vehicle crops (issue 4, "Done when").

For each model (lanner classifiers, trained by default with ``--train-steps 300``: SGD, momentum 0.9, lr 0.05
with cosine decay, batch 32, on the calibration crops or on ``--train-crops`` separate ones; ``--train-steps 0``
keeps the random init): export FP32 ONNX → calibrate on ``--calib`` crops (sorted order, batch 8) → QDQ ONNX per
method → run FP32 and INT8 with ONNX Runtime on ``--eval`` *other* crops and report

* top-1 agreement (the issue's metric, target >= 99%);
* mean cosine similarity and relative L2 error of the logits (a proxy that does not depend on the
  FP32 decision margins: random-weight nets often have near-tied logits, or always predict one class,
  which makes top-1 agreement either meaningless or needlessly harsh);
* the FP32 model's top-1 accuracy on the eval crops, how many classes it predicts at all and its median
  top-1/top-2 logit margin. With 500 eval images one flip is 0.2 % (99 % = at most 5 flips), so seed-to-seed
  and thread-count differences of +-0.4 % are noise.

``--work DIR`` keeps the crops and the trained FP32 models (``<model>_<size>px_seed<S>_steps<N>_train<M>.onnx``)
and reuses them, so a second run only calibrates and evaluates.

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

Measured 2026-12-01 on the shared 2-core box with the Q/DQ placement of commit 471ce92 (residual skips and pool
inputs quantized), 64x64 body-type crops, 500 calibration / 500 eval crops, ``--train-steps 300 --seed S``
(models trained with OMP_NUM_THREADS=1; top-1 agreement in %, qdq / ort_int8 / lanner_int8; relL2 of qdq):
  model         S  FP32 acc  margin  entropy               minmax
  resnet10      0  75.8 %    4.31    99.4 / 99.8 / 99.4    98.8 / 99.0 / 99.0   relL2 0.012 / 0.013
  resnet10      1  75.2 %    4.56    99.4 / 99.4 / 99.0    99.0 / 99.2 / 99.2   relL2 0.012 / 0.013
  resnet10      2  73.8 %    3.95    99.4 / 99.6 / 99.4    99.8 / 99.6 / 99.6   relL2 0.012 / 0.013
  mobilenet_v2  0  53.4 %    0.53    97.0 / 91.0 / 95.0    96.0 / 93.0 / 95.2   relL2 0.102 / 0.041
  mobilenet_v2  1  64.6 %    1.55    97.6 / 97.6 / 96.6    98.2 / 98.0 / 96.4   relL2 0.045 / 0.039
  mobilenet_v2  2  59.0 %    0.61    93.0 / 89.4 / 91.6    98.6 / 94.4 / 96.8   relL2 0.230 / 0.029
  resnet10 (trained to ~0.004 training loss) is at 99 % for both methods on every runner and seed but one
  (minmax qdq seed 0: 98.8 %, 6 flips); before the placement changes of 0e89b9c/471ce92 the seed-0 model gave
  relL2 0.010 / 0.011 and 99.6 / 99.2 % (qdq). Its logit error is spread evenly over the quantized layers (each
  alone relL2 0.002-0.006; the int8 weights alone 0.004): plain int8 rounding noise, which a threshold method
  cannot remove (bias correction of the conv outputs: no gain). MobileNetV2 does not meet 99 %: from scratch on
  500 crops it does not become a good classifier (53-65 % accuracy, training loss near chance until step ~150;
  with 3000 separate training crops, ``--train-crops 3000 --seed 1``: 61.8 %, entropy 98.4 / 94.6 / 96.2,
  minmax 98.2 / 95.8 / 98.0), its margins stay small and its logit error is 3-20x resnet10's. Entropy is the
  worse method on it: on seed 2 it clips the classifier's input (Flatten) to 0.31x its max (0.7 % of the values)
  and three early ReLU6 outputs to 0.64-0.79 x 6; giving only those four tensors their minmax range brings relL2
  from 0.236 to 0.028 (percentile 0.032, mse 0.032; 250 eval images). AdamW (lr 2e-3, cosine) instead of SGD
  overfits MobileNetV2 (55-58 % accuracy) and makes it much harder to quantize (84-91 %; its per-channel int8
  weights alone give relL2 0.058). With 2 torch threads training differs numerically: the default run
  (``--seed 0``, no ``--work``) gave mobilenet_v2 61.8 % / margin 0.53, entropy 94.2 / 92.0 / 93.2,
  minmax 95.2 / 92.8 / 96.0, and took 4.5 min in all on a quiet moment of the box (training 80 s + 117 s);
  under heavy load training alone took 380-840 s per model. Statistics take 5-50 s, thresholds 1-12 s per
  method, the three runners 1-3 min per model. Before 2026-12-01 (``--train-steps 60``, constant lr)
  mobilenet_v2 gave 96.6-99.6 % over seeds 0-2.

2026-12-01 (ninth session): converged MobileNetV2s (``--train-steps 6000 --train-crops 10000``, trained with
``--train-device cuda`` on a lent GPU in 136-150 s; 94-95 % accuracy, margins ~10) meet 99 % with entropy and
minmax on seeds 0-2 once entropy has its saturation guard (``methods.saturated``): entropy 99.0-100 %, minmax
99.2-99.8 % on qdq and lanner_int8. ``entropy-trt`` (TensorRT's exact thresholds) gives 96.6-98.6 %: it cuts
saturated ReLU6 outputs to 0.45-0.65 x 6. Tables in docs/benchmarks.md.

Usage: python bench/calib_agreement.py [--models resnet10,mobilenet_v2] [--calib 500] [--eval 500]
       [--size 64] [--methods entropy,entropy-trt,minmax] [--train-steps 300] [--train-crops 0] [--seed 0]
       [--train-device cpu|cuda] [--work DIR]
Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_crops(root: Path, n_calib: int, n_eval: int, size: int, n_train: int = 0) -> list[list[Path]]:
    """Vehicle body-type crops: calibration, evaluation and (if ``n_train``) training sets, disjoint seeds."""
    from lanner.data.synth.crops import generate_crops
    from lanner.data.synth.images import SynthConfig
    from lanner.data.synth.world import BODY_TYPES

    sets = []
    for name, n, seed in (("calib", n_calib, 0), ("eval", n_eval, 1), ("train", n_train, 2)):
        if n == 0:
            sets.append([])
            continue
        per_class = -(-n // len(BODY_TYPES))
        if not (root / name).is_dir():  # reuse the crops of an earlier run with --work
            generate_crops(SynthConfig(width=320, height=192, seed=seed), root / name, "body_type", per_class, size)
        paths = sorted((root / name).rglob("*.jpg"))
        sets.append(paths[:: max(1, len(paths) // n)][:n] if len(paths) > n else paths)
    return sets


def labels_of(paths: list[Path]) -> np.ndarray:
    """Class index of each crop from its folder name (the synthetic world's body types, sorted)."""
    names = sorted({p.parent.name for p in paths})
    return np.array([names.index(p.parent.name) for p in paths])


def train(model, paths: list[Path], preprocess, steps: int, device: str = "cpu") -> None:
    """SGD with cosine decay on the calibration crops' folder labels, so the FP32 model has real margins.
    ``device`` ("cuda" on a GPU machine) only changes where the steps run; the model comes back on the CPU."""
    import torch

    from lanner.engine.calibrate.images import read_image

    x = torch.from_numpy(np.stack([preprocess(read_image(p)) for p in paths])).to(device)
    y = torch.from_numpy(labels_of(paths)).to(device)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(paths), (32,), generator=gen).to(device)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{steps}: loss {loss.item():.3f}", flush=True)
    model.to("cpu").eval()


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


def evaluate(name: str, args, calib: list[Path], evals: list[Path], train_set: list[Path], work: Path) -> list[dict]:
    import torch

    from lanner.data.synth.world import BODY_TYPES
    from lanner.engine import load_onnx, to_onnx
    from lanner.engine.calibrate import Preprocess, collect_statistics, compute_amax, insert_qdq, prepare_graph
    from lanner.engine.calibrate.images import iter_batches, read_image
    from lanner.models import create_model, export_onnx

    fp32_path = work / f"{name}_{args.size}px_seed{args.seed}_steps{args.train_steps}_train{args.train_crops}.onnx"
    start = time.perf_counter()
    reused = fp32_path.is_file()  # with --work, a model trained by an earlier run is reused (train_s ~0)
    if not reused:
        torch.manual_seed(args.seed)  # the random init (and so the agreement) is reproducible
        model = create_model(name, len(BODY_TYPES))
        partial = fp32_path.with_suffix(".partial.onnx")  # renamed once trained, so never reused half-done
        export_onnx(model, partial, input_size=(args.size, args.size), batch="dynamic")
        if args.train_steps:
            preprocess = Preprocess.from_graph(load_onnx(partial))
            train(model, train_set or calib, preprocess, args.train_steps, args.train_device)
            export_onnx(model, partial, input_size=(args.size, args.size), batch="dynamic")
        partial.replace(fp32_path)
    train_s = time.perf_counter() - start
    preprocess = Preprocess.from_graph(load_onnx(fp32_path))
    graph = prepare_graph(load_onnx(fp32_path))
    start = time.perf_counter()
    stats = collect_statistics(graph, iter_batches(calib, preprocess, 8), backend=args.backend)
    collect_s = time.perf_counter() - start
    x_eval = np.stack([preprocess(read_image(p)) for p in evals])
    fp32 = run(fp32_path, x_eval)
    fp32_accuracy = float(np.mean(fp32.argmax(1) == labels_of(evals)))
    how = f"reused {fp32_path.name}" if reused else f"trained in {train_s:.0f} s"
    print(f"{name}: FP32 top-1 accuracy on the eval crops {fp32_accuracy:.4f} ({how})", flush=True)
    rows = []
    for method in args.methods.split(","):
        start = time.perf_counter()
        base, guard = ("entropy", False) if method == "entropy-trt" else (method, True)
        amax = {k: compute_amax(h, base, saturation_guard=guard) for k, h in stats.items()}
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
                {
                    "fp32_accuracy": fp32_accuracy,
                    "collect_s": round(collect_s, 2),
                    "amax_s": round(amax_s, 2),
                    "train_s": round(train_s, 1),
                    "trained_steps": args.train_steps,
                }
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
    parser.add_argument(
        "--methods", default="entropy,entropy-trt,minmax", help="entropy-trt: entropy without the saturation guard"
    )
    parser.add_argument("--calib", type=int, default=500)
    parser.add_argument("--eval", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=300, help="SGD steps of batch 32 (0: random weights)")
    parser.add_argument(
        "--train-crops", type=int, default=0, help="train on this many separate crops (0: the calibration crops)"
    )
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the models' random init")
    parser.add_argument("--train-device", default="cpu", help="where training runs (cuda on a GPU machine)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--work", type=Path, help="Keep crops and models here (default: a temp folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        calib, evals, train_set = make_crops(work / "crops", args.calib, args.eval, args.size, args.train_crops)
        rows = [row for name in args.models.split(",") for row in evaluate(name, args, calib, evals, train_set, work)]
    print(json.dumps({"calib_agreement": rows}))


if __name__ == "__main__":
    main()
