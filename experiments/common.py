"""Shared steps of the training experiments: render synthetic sets, write specs, train, evaluate, save JSON.

Each experiment script is one command (``python experiments/<name>.py --out runs/<name>``) that renders
its data with the synthetic world (cached in ``<out>/data``), trains with ``lanner.train.train`` and
writes ``<out>/result.json``. ``--smoke`` shrinks everything to a CPU-sized check of the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lanner.data.dataset import DetectionDataset
from lanner.data.io import read_dataset, write_dataset
from lanner.data.synth import SynthConfig, generate_images
from lanner.train.evaluate import evaluate_model
from lanner.train.spec import load_spec
from lanner.train.trainer import train

WIDTH, HEIGHT = 640, 384


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, required=True, help="run folder (data cached in <out>/data)")
    p.add_argument("--model", default="yolox_s")
    p.add_argument("--epochs", type=int, default=None, help="override the experiment's epoch count")
    p.add_argument("--batch-size", type=int, default=64)
    # leave two cores to the process that feeds the GPU (a starved feeder halves throughput)
    p.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    p.add_argument("--smoke", action="store_true", help="tiny CPU check of the script (not a result)")
    return p


def render(out: Path, images: int, seed: int, smoke: bool, **kwargs: Any) -> Path:
    """Render (once) a KITTI set of the synthetic world; ``kwargs`` go to ``SynthConfig``."""
    if (out / "labels").is_dir():
        return out
    size = {"width": 224, "height": 128} if smoke else {"width": WIDTH, "height": HEIGHT}
    config = SynthConfig(images=images, seed=seed, workers=min(16, os.cpu_count() or 1), **size, **kwargs)
    generate_images(config, out, fmt="kitti")
    return out


def drop_class(src: Path, out: Path, name: str) -> Path:
    """A copy of the KITTI set at ``src`` without the class ``name`` (its boxes removed, images linked)."""
    if (out / "labels").is_dir():
        return out
    ds = read_dataset(src)
    keep_ids = [i for i, c in enumerate(ds.classes) if c != name]
    remap = np.full(len(ds.classes), -1, np.int64)
    remap[keep_ids] = np.arange(len(keep_ids))
    samples = []
    for s in ds.samples:
        boxes = s.boxes[s.boxes.class_id != ds.classes.index(name)]
        boxes.class_id = remap[boxes.class_id]
        samples.append(replace(s, boxes=boxes))
    classes = [ds.classes[i] for i in keep_ids]
    write_dataset(DetectionDataset(ds.root, classes, samples), out, "kitti", images="link")
    return out


def subset(src: Path, out: Path, count: int, seed: int, without: str | None = None, showing: str | None = None) -> Path:
    """``count`` images of ``src`` (seeded pick), optionally only images with no box of class ``without``
    or only images with at least one box of class ``showing``."""
    if (out / "labels").is_dir():
        return out
    ds = read_dataset(src)
    pool = ds.samples
    if without is not None and without in ds.classes:
        bad = ds.classes.index(without)
        pool = [s for s in pool if not (s.boxes.class_id == bad).any()]
    if showing is not None and showing in ds.classes:
        wanted = ds.classes.index(showing)
        pool = [s for s in pool if (s.boxes.class_id == wanted).any()]
    order = np.random.default_rng(seed).permutation(len(pool))[:count]
    picked = [pool[i] for i in sorted(order.tolist())]
    write_dataset(DetectionDataset(ds.root, ds.classes, picked), out, "kitti", images="link")
    return out


def base_spec(args: argparse.Namespace, train_dir: Path, val_dir: Path, epochs: int) -> dict[str, Any]:
    """The detection spec all experiments start from (yolox_s, 640x384 → input 384x640, SGD, cosine, EMA, AMP)."""
    smoke = args.smoke
    return {
        "dataset": {"train": str(train_dir), "val": str(val_dir), "cache_images": True},
        "model": {"name": "yolox_nano" if smoke else args.model, "input_size": [128, 224] if smoke else [384, 640]},
        "augmentation": {
            "mosaic": 0.0 if smoke else 0.5,
            "scale": [0.5, 1.5],
            "hflip": 0.5,
            "no_aug_epochs": 0 if smoke else (args.epochs or epochs) // 10,  # YOLOX's clean final phase
        },
        "training": {
            "epochs": 1 if smoke else (args.epochs or epochs),
            "batch_size": 4 if smoke else args.batch_size,
            "lr": 0.01 * (args.batch_size / 64),
            "warmup_epochs": 0 if smoke else 3,
            "workers": 0 if smoke else args.workers,
            "max_steps_per_epoch": 2 if smoke else None,
            "device": "cpu" if smoke else "auto",
            # a 100 MB checkpoint per epoch filled a 64 GB disk when four runs shared it
            "checkpoint_interval": 1 if smoke else 50,
        },
        "evaluation": {"interval": 1 if smoke else 10, "batch_size": 4 if smoke else 64},
    }


def run(spec_data: dict[str, Any], results: Path) -> dict[str, Any]:
    """Train ``spec_data`` into ``results``; returns wall time, best checkpoint and the last metrics."""
    started = time.perf_counter()
    result = train(load_spec(data=spec_data), results, on_log=_print_epoch)
    return {
        "results": str(results),
        "best": str(result.best),
        "train_seconds": round(time.perf_counter() - started, 1),
        "epochs": result.epochs_done,
        "mAP50": (result.metrics or {}).get("mAP50"),
        "mAP": (result.metrics or {}).get("mAP"),
    }


def evaluate(checkpoint: str | Path, dataset: Path, device: str = "auto") -> dict[str, Any]:
    """mAP numbers of ``checkpoint`` on ``dataset`` (per class too)."""
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    metrics = evaluate_model(checkpoint, dataset, batch_size=32, device=device).metrics
    return {"mAP": metrics.map, "mAP50": metrics.map50, "AP50": metrics.per_class_ap50, "AP": metrics.per_class_ap}


def _print_epoch(event: dict[str, Any]) -> None:
    if event.get("event") == "epoch":
        numbers = {k: round(v, 4) for k, v in event.items() if k in ("loss", "mAP", "mAP50", "seconds")}
        print(f"epoch {event['epoch']}: {numbers}", flush=True)


def save(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps(result, indent=2, default=float))
