"""Training speed: images/s of lanner's training step vs a plain PyTorch loop on the same model and batch.

Measured in one run, same model (default yolox_s), same batch at 384x640:

* ``plain_fp32``: model + YOLOX loss + SGD, nothing else (the floor of any trainer);
* ``plain_amp_cl``: the same with bf16 autocast and channels-last;
* ``lanner_fp32`` / ``lanner_amp_cl``: ``lanner.train``'s own step (schedule, loss, grad clipping,
  EMA update) with ``training.amp``/``training.channels_last`` off/on, on the same GPU-resident batch;
* ``lanner_epoch_amp_cl``: a whole ``lanner.train.train`` epoch including data loading and augmentation
  (``--workers`` processes), from the epoch time it logs.

The gap between plain and lanner columns is the trainer's overhead. Run on the GPU machine:

    python bench/train_speed.py --out runs/train_speed.json            # H100/H200
    python bench/train_speed.py --out /tmp/speed.json --smoke          # CPU check of the script
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch

from lanner.data.synth import SynthConfig, generate_images
from lanner.train.data import normalise_pixels
from lanner.train.distributed import resolve_runtime
from lanner.train.loss import YOLOXLoss
from lanner.train.spec import load_spec
from lanner.train.trainer import Fit, train


def timed(step, batch: int, steps: int, warmup: int, cuda: bool) -> float:
    """Images per second of ``step()`` over ``steps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return round(batch * steps / (time.perf_counter() - started), 1)


def plain_loop(model: torch.nn.Module, images, targets, num_classes: int, amp: bool, channels_last: bool):
    """The minimal loop: forward, YOLOX loss, backward, SGD step."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = YOLOXLoss(num_classes)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(images)
        loss_fn(out, targets)["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def spec_data(args: argparse.Namespace, data: Path, amp: bool) -> dict:
    return {
        "dataset": {"train": str(data)},
        "model": {"name": args.model, "input_size": list(args.size)},
        "augmentation": {"mosaic": 0.5},
        "training": {
            "epochs": 2,
            "batch_size": args.batch,
            "amp": amp,
            "channels_last": amp,
            "workers": args.workers,
            "warmup_epochs": 0,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="yolox_s")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.model, args.batch, args.steps, args.images, args.workers = "yolox_nano", 2, 2, 8, 0
    args.size = (64, 96) if args.smoke else (384, 640)
    data = args.out.parent / "train_speed_data"
    if not (data / "labels").is_dir():
        w, h = (224, 128) if args.smoke else (640, 384)
        generate_images(SynthConfig(images=args.images, width=w, height=h, seed=7, workers=max(1, args.workers)), data)
    runtime = resolve_runtime("auto")
    cuda = runtime.device.type == "cuda"
    result = {"device": torch.cuda.get_device_name() if cuda else "cpu", "model": args.model, "batch": args.batch}
    result["input_hw"] = list(args.size)
    fits = {
        amp: Fit(load_spec(data=spec_data(args, data, amp)), args.out.parent / "unused", runtime)
        for amp in (False, True)
    }
    images, targets = next(iter(fits[True].exp.train_loader))  # uint8 pixels: normalise once, outside the timing
    images = normalise_pixels(images.to(runtime.device), fits[True].input_spec)
    targets = targets.to(runtime.device)
    n_cls = len(fits[True].exp.class_names)
    for name, amp in (("plain_fp32", False), ("plain_amp_cl", True)):
        model = copy.deepcopy(fits[amp].model)  # same architecture and weights, outside the trainer
        result[name] = timed(
            plain_loop(model, images, targets, n_cls, amp and cuda, amp and cuda), args.batch, args.steps, 3, cuda
        )
    for name, amp in (("lanner_fp32", False), ("lanner_amp_cl", True)):
        fit = fits[amp]
        x = images.contiguous(memory_format=torch.channels_last) if fit.channels_last else images
        result[name] = timed(lambda fit=fit, x=x: fit.train_step(x, targets), args.batch, args.steps, 3, cuda)
    del fits
    run = train(load_spec(data=spec_data(args, data, True)), args.out.parent / "train_speed_run")
    seconds = run.history[-1]["seconds"]
    steps = max(1, args.images // args.batch)
    result["lanner_epoch_amp_cl"] = round(steps * args.batch / seconds, 1)
    result["workers"] = args.workers
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
