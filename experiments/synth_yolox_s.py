"""Issue 3, Done-when 1: yolox_s on the synthetic world (>= 2000 train / 500 val, 640x384, 4 classes).

Target: mAP@.5 >= 0.85 in under 20 minutes on one H100. The defaults are the run that met it on one H200
(16 cores): 8000 rendered training images, 80 epochs, mAP@.5 0.863 after 15.8 minutes (docs/benchmarks.md).
2000 images for 130 epochs reached only 0.802: more distinct images beat more passes. One command:

    python experiments/synth_yolox_s.py --out runs/synth_yolox_s        # GPU machine
    python experiments/synth_yolox_s.py --out /tmp/smoke --smoke        # CPU check of the script

Writes ``<out>/result.json`` (train seconds, images/s, mAP, mAP50, per-class AP50).
"""

from __future__ import annotations

import time

from common import base_spec, evaluate, parser, render, run, save


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--train-images", type=int, default=8000, help="training set size (the issue asks >= 2000)")
    args = p.parse_args()
    n_train, n_val = (24, 8) if args.smoke else (args.train_images, 500)
    started = time.perf_counter()
    train_dir = render(args.out / "data" / f"train_{n_train}", n_train, seed=11, smoke=args.smoke)
    val_dir = render(args.out / "data" / "val", n_val, seed=12, smoke=args.smoke)
    render_seconds = time.perf_counter() - started
    spec = base_spec(args, train_dir, val_dir, epochs=80)
    trained = run(spec, args.out / "results")
    final = evaluate(trained["best"], val_dir)
    images = spec["training"]["epochs"] * n_train
    result = {
        "experiment": "synth_yolox_s",
        "model": spec["model"]["name"],
        "train_images": n_train,
        "val_images": n_val,
        "render_seconds": round(render_seconds, 1),
        **trained,
        "train_images_per_second": round(images / trained["train_seconds"], 1),
        "val": final,
        "target": {"mAP50": 0.85, "train_minutes": 20},
        "passed": bool(final["mAP50"] >= 0.85 and trained["train_seconds"] < 20 * 60),
    }
    save(args.out, result)


if __name__ == "__main__":
    main()
