"""The fit loop of ``lanner train``: EMA, LR schedule, AMP + channels-last on CUDA, DDP, checkpoints, validation.

``train(spec, results_dir)`` runs the experiment and writes into ``results_dir``: ``spec.yaml`` (the
resolved spec), ``metrics.jsonl``, ``tensorboard/``, ``last.safetensors`` (every epoch, for resume),
``epoch_NNN.safetensors`` (every ``checkpoint_interval``), ``best.safetensors`` (best validation mAP or
top-1), ``summary.json`` and ``plots/`` (curves, PR curves, confusion matrix). Under ``torchrun`` every
rank trains and only rank 0 writes. ``progress`` is advanced once per step; ``on_log`` receives the
live numbers (``{"event": "start" | "step" | "epoch", ...}``) for a progress bar.

Example:
    >>> from lanner.train.spec import load_spec
    >>> result = train(load_spec("spec.yaml"), Path("results"))  # doctest: +SKIP
    >>> result.metrics["mAP50"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lanner.core.config import save_config
from lanner.core.errors import DataError, Interrupted
from lanner.core.folders import make_folder
from lanner.core.progress import ProgressFn, advance
from lanner.core.signals import handle_once
from lanner.data.dataset import crowd_class
from lanner.models import save_checkpoint
from lanner.train.checkpointing import restore_training, save_training
from lanner.train.data import IGNORE_CLASS, input_spec, normalise_pixels
from lanner.train.distributed import Runtime, barrier, mean_over_ranks, resolve_runtime
from lanner.train.ema import ModelEMA
from lanner.train.experiment import Experiment, build_experiment
from lanner.train.logbook import Logbook
from lanner.train.loss import YOLOXLoss
from lanner.train.schedule import LRSchedule
from lanner.train.spec import ExperimentSpec
from lanner.train.transfer import param_groups, set_train_mode

LogFn = Callable[[dict[str, Any]], None]
_READ_EVERY = 10  # steps between reads of the loss on the host (each read waits for the GPU)


@dataclass
class TrainResult:
    """What a run produced: paths, the per-epoch history and the last validation metrics."""

    results_dir: Path
    last: Path
    best: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    epochs_done: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(spec: ExperimentSpec, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over ``transfer.param_groups`` (backbone LR multiplier, no decay on bias/norm)."""
    t = spec.training
    groups = param_groups(model, t.weight_decay, spec.model.backbone_lr_mult)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.momentum, 0.999))
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=True)


class Fit:
    """One run's state (model, optimizer, EMA, loaders, step counters); ``train`` drives it.

    Public so benchmarks can time ``train_step`` alone (``bench/train_speed.py``); use ``train`` otherwise.
    """

    def __init__(self, spec: ExperimentSpec, results_dir: Path, runtime: Runtime) -> None:
        self.spec, self.dir, self.rt = spec, Path(results_dir), runtime
        seed_everything(spec.training.seed)
        self.exp: Experiment = build_experiment(spec, runtime)
        t = spec.training
        cuda = runtime.device.type == "cuda"
        self.amp, self.channels_last = t.amp and cuda, t.channels_last and cuda
        self.model = self.exp.model.to(runtime.device)
        self.input_spec = input_spec(self.exp.model.info)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if runtime.distributed and cuda and t.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # keeps parameters and names
        self.optimizer = make_optimizer(spec, self.model)
        self.schedule = LRSchedule(t, self.exp.steps_per_epoch)
        self.ema = ModelEMA(self.model, t.ema_decay) if t.ema else None
        self.net: nn.Module = self.model
        if runtime.distributed:
            ids = [runtime.device.index] if cuda else None
            self.net = nn.parallel.DistributedDataParallel(self.net, device_ids=ids, broadcast_buffers=False)
        normaliser = (lambda n: mean_over_ranks(n)) if runtime.distributed else None
        self.loss_fn = YOLOXLoss(len(self.exp.class_names), fg_normaliser=normaliser)
        self.epoch, self.step, self.best = 0, 0, -math.inf
        self.history: list[dict[str, Any]] = []
        self.last_metrics: dict[str, Any] | None = None
        self.last_metrics_object: Any = None  # DetectionMetrics | ClassificationMetrics, for the plots

    def resume(self, path: Path) -> None:
        self.epoch, self.step, meta = restore_training(path, self.model, self.optimizer, self.ema)
        self.best = float(meta.get("best", -math.inf))
        self.history = list(meta.get("history", []))

    def loss(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(images)
        if self.exp.task == "detection":  # the loss copies the targets itself, after reading them on the host
            return self.loss_fn(out, targets)
        return {"total": nn.functional.cross_entropy(out.float(), targets.to(self.rt.device, non_blocking=True))}

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """A loader batch (uint8 NCHW) → normalised float32 on the device, channels-last when enabled."""
        images = normalise_pixels(images.to(self.rt.device, non_blocking=True), self.input_spec)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def train_step(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimizer step; returns the loss parts as detached device tensors (reading them syncs)."""
        factor = self.schedule.apply(self.optimizer, self.step)
        images = self.prepare(images)
        parts = self.loss(images, targets)  # targets stay on the host here (see ``loss``)
        parts["total"].backward()
        if self.spec.training.grad_clip > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.spec.training.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        out = {k: v.detach() for k, v in parts.items()}
        out["lr"] = torch.tensor(self.spec.training.lr * factor)
        return out

    def _read(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """Means of the summed parts as floats (one host sync); a non-finite loss stops the run."""
        values = {k: float(v) / count for k, v in sums.items()}
        if not math.isfinite(values["total"]):
            raise DataError(
                f"the loss became {values['total']} by step {self.step}",
                where="training",
                fix="lower training.lr, keep training.grad_clip on, or check the labels",
            )
        return values

    def train_epoch(self, progress: ProgressFn | None, on_log: LogFn | None) -> dict[str, float]:
        """One epoch. Loss values stay on the device and are read every ``_READ_EVERY`` steps, so the CPU
        keeps queueing work ahead of the GPU instead of waiting for it after each step."""
        self.exp.sampler.set_epoch(self.epoch)
        self.exp.train_set.set_epoch(self.epoch)
        set_train_mode(self.model)
        sums: dict[str, torch.Tensor] = {}
        window: dict[str, torch.Tensor] = {}
        count, shown = 0, {}
        for images, targets in self.exp.train_loader:
            if count >= self.exp.steps_per_epoch:
                break
            values = self.train_step(images, targets)
            count += 1
            for k, v in values.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                window[k] = window[k] + v if k in window else v.clone()
            if count % _READ_EVERY == 1 or _READ_EVERY == 1:
                shown, window = self._read(window, 1 if count == 1 else _READ_EVERY), {}
            advance(progress)
            if on_log is not None and self.rt.is_main:
                on_log({"event": "step", "epoch": self.epoch + 1, "step": self.step, **shown})
        means = self._read(sums, max(count, 1)) if count else {}
        out = {"loss": means.pop("total", math.nan), "lr": float(values["lr"]) if count else math.nan}
        out.update({f"loss_{k}": v for k, v in means.items() if k in ("iou", "obj", "cls")})
        return out

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float], Any]:
        """Validation metrics of the EMA (or raw) model; boxes are compared in network-input pixels."""
        model, ev = self.eval_model().eval(), self.spec.evaluation
        loader = self.exp.val_loader
        assert loader is not None
        if self.exp.task == "classification":
            from lanner.train.metrics import evaluate_classification

            logits, labels = [], []
            for images, target in loader:
                logits.append(model(self.prepare(images)).float().cpu().numpy())
                labels.append(target.numpy())
            metrics = evaluate_classification(np.concatenate(logits), np.concatenate(labels), self.exp.class_names)
            return {"top1": metrics.top1, "top5": metrics.top5}, metrics
        from lanner.train.evaluate import ground_truth
        from lanner.train.metrics import evaluate_detections

        predictions, rows = [], []
        for images, targets in loader:
            predictions += model.predict(self.prepare(images), ev.conf, ev.iou, max_det=100)
            rows += [t[t[:, 0] != -1] for t in targets.numpy()]  # -1 pads; <= IGNORE_CLASS: ignore regions
        labelled = np.unique(np.concatenate([t[t[:, 0] >= 0, 0] for t in rows] or [np.zeros(0)])).astype(np.int64)
        truth = []
        for t in rows:
            boxes = t[(t[:, 0] >= 0) | (t[:, 0] < IGNORE_CLASS)]  # objects and crowd boxes (class-specific)
            crowd = boxes[:, 0] < IGNORE_CLASS
            ids = np.where(crowd, crowd_class(boxes[:, 0].astype(int)), boxes[:, 0].astype(int))
            truth.append(ground_truth(boxes[:, 1:5], ids, crowd, t[t[:, 0] == IGNORE_CLASS, 1:5], labelled))
        metrics = evaluate_detections(predictions, truth, self.exp.class_names)
        return {"mAP": metrics.map, "mAP50": metrics.map50, "mAP75": metrics.map75}, metrics

    def save(self, name: str, extra_meta: dict[str, Any]) -> Path:
        meta = {"spec": self.spec.model_dump(mode="json"), "best": self.best, "history": self.history, **extra_meta}
        return save_training(self.dir / name, self.model, self.optimizer, self.ema, self.epoch, self.step, meta)


def train(
    spec: ExperimentSpec,
    results_dir: str | Path,
    *,
    progress: ProgressFn | None = None,
    on_log: LogFn | None = None,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Run the experiment (see the module docstring). ``stop_after_epochs`` ends this call early (resume later)."""
    results_dir = Path(results_dir)
    make_folder(results_dir, what="results", option="-r/--results")  # before the data is read and the model built
    rt = resolve_runtime(spec.training.device)
    fit = Fit(spec, results_dir, rt)
    if spec.training.resume is not None:
        fit.resume(spec.training.resume)
    book = Logbook(results_dir, enabled=rt.is_main)
    if rt.is_main:
        save_config(spec, results_dir / "spec.yaml")
    total = spec.training.epochs * fit.exp.steps_per_epoch
    if on_log is not None and rt.is_main:
        start = {"event": "start", "total_steps": total, "done_steps": fit.step, "classes": fit.exp.class_names}
        on_log({**start, **_data_counts(fit.exp)})
    epochs_this_call = 0
    best_path = results_dir / "best.safetensors"  # a resumed run's best so far; another run's is not this one's
    best_path = best_path if spec.training.resume is not None and best_path.exists() else None
    with _stops_explained(fit, book, results_dir):  # Ctrl-C, SIGTERM, out of memory: one line, work kept
        while fit.epoch < spec.training.epochs and (stop_after_epochs is None or epochs_this_call < stop_after_epochs):
            started = time.perf_counter()
            record = {"event": "epoch", **fit.train_epoch(progress, on_log)}
            fit.epoch += 1
            epochs_this_call += 1
            record.update(epoch=fit.epoch, step=fit.step, seconds=round(time.perf_counter() - started, 3))
            best_path = _end_of_epoch(fit, record, book, on_log) or best_path
    book.close()
    if rt.is_main:
        _write_summary(fit, results_dir)
    barrier()
    return TrainResult(
        results_dir, results_dir / "last.safetensors", best_path, fit.history, fit.last_metrics, fit.epoch
    )


@contextlib.contextmanager
def _stops_explained(fit: Fit, book: Logbook, results_dir: Path) -> Iterator[None]:
    """Turn the ways a run stops early into one line that says what was kept and what to change.

    Ctrl-C and SIGTERM (a preempted job) write the finished epochs' plots and summary and name the resume
    command; CUDA out of memory names the keys that make a step smaller; a killed data-loading worker names
    ``training.workers``. Other errors pass through unchanged.
    """
    restore_sigterm = handle_once((signal.SIGTERM,), _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt:
        book.close()
        if fit.rt.is_main and fit.history:
            _write_summary(fit, results_dir)
        raise _interrupted(fit, results_dir) from None
    except torch.OutOfMemoryError as exc:
        book.close()
        raise _out_of_memory(fit, str(exc)) from None
    except RuntimeError as exc:
        if "DataLoader worker" not in str(exc) or "killed" not in str(exc):
            raise
        book.close()
        raise _worker_killed(fit, results_dir) from None
    finally:
        restore_sigterm()


def _out_of_memory(fit: Fit, torch_message: str) -> DataError:
    """CUDA ran out of memory: what was asked, and the spec keys that make a step smaller."""
    t = fit.spec.training
    asked = torch_message.split(". GPU")[0].removeprefix("CUDA out of memory. ").strip() or "out of memory"
    size = fit.spec.model.input_size
    shape = f" at input {size[0]}x{size[1]}" if size else ""
    fix = f"lower training.batch_size (now {t.batch_size}; try {max(1, t.batch_size // 2)})"
    fix += "" if t.amp else " or set training.amp: true (half the activation memory)"
    return DataError(f"out of GPU memory in epoch {fit.epoch + 1} ({asked}) at batch size {t.batch_size}{shape}",
                     where="training.batch_size", fix=f"{fix}, or lower model.input_size")  # fmt: skip


def _worker_killed(fit: Fit, results_dir: Path) -> DataError:
    """A DataLoader worker died (the kernel's OOM killer, most often): which knobs use less host memory."""
    kept = f"; {results_dir / 'last.safetensors'} holds epoch {fit.epoch}" if fit.epoch else ""
    fix = f"lower training.workers (now {fit.spec.training.workers}) or training.batch_size{kept}"
    what = f"a data-loading worker was killed in epoch {fit.epoch + 1} (out of host memory?)"
    return DataError(what, where="training.workers", fix=fix)


def _raise_interrupt(signum: int) -> None:
    """SIGTERM (a cluster preempting the job, ``docker stop``) takes Ctrl-C's path while training."""
    raise KeyboardInterrupt


def _interrupted(fit: Fit, results_dir: Path) -> Interrupted:
    """What an interrupted run kept (checkpoints are written atomically, so none is half-written)."""
    what = f"interrupted during epoch {fit.epoch + 1} of {fit.spec.training.epochs}"
    last = results_dir / "last.safetensors"
    if fit.epoch == 0 or not last.is_file():
        return Interrupted(what, where=str(results_dir), fix="no epoch had finished: run the same command again")
    resume = f"lanner train -e {results_dir / 'spec.yaml'} -r {results_dir} --set training.resume={last}"
    return Interrupted(f"{what}; {last} holds epoch {fit.epoch}, plots/ the epochs so far", where=str(results_dir),
                       fix=f"resume (the unfinished epoch runs again) with: {resume}")  # fmt: skip


def _data_counts(exp: Any) -> dict[str, int]:
    """Images, boxes and ignore regions (class ``IGNORE_CLASS``) of the training set, for the start line."""
    items = getattr(exp.train_set, "items", [])
    if exp.task != "detection":
        return {"images": len(items)}
    regions = sum(int((item.class_id <= IGNORE_CLASS).sum()) for item in items)
    boxes = sum(int((item.class_id >= 0).sum()) for item in items)
    return {"images": len(items), "boxes": boxes, "ignore_regions": regions}


def _end_of_epoch(fit: Fit, record: dict[str, Any], book: Logbook, on_log: LogFn | None) -> Path | None:
    """Validate, log, checkpoint (rank 0 only). Returns the best checkpoint's path when it was updated."""
    spec, best_path = fit.spec, None
    last_epoch = fit.epoch == spec.training.epochs
    if fit.rt.is_main:
        if fit.exp.val_loader is not None and (fit.epoch % spec.evaluation.interval == 0 or last_epoch):
            numbers, metrics = fit.validate()
            record.update(numbers)
            fit.last_metrics = metrics.to_dict()
            fit.last_metrics_object = metrics
            key = "mAP" if fit.exp.task == "detection" else "top1"
            if numbers[key] > fit.best:
                fit.best = numbers[key]
                best_path = fit.save("best.safetensors", {"metrics": fit.last_metrics})
        fit.history.append(record)
        book.write(record)
        if on_log is not None:
            on_log(record)
        fit.save("last.safetensors", {})
        if fit.epoch % spec.training.checkpoint_interval == 0 or last_epoch:
            fit.save(f"epoch_{fit.epoch:03d}.safetensors", {})
        if best_path is None and fit.exp.val_loader is None:
            best_path = save_checkpoint(fit.dir / "best.safetensors", fit.eval_model(), {"epoch": fit.epoch})
    barrier()
    return best_path


def _write_summary(fit: Fit, results_dir: Path) -> None:
    from lanner.train.plots import plot_confusion, plot_curves, plot_pr_curves

    plots = results_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_curves(fit.history, plots / "curves.png")
    metrics = fit.last_metrics_object
    if metrics is not None:
        if hasattr(metrics, "pr_curves"):
            plot_pr_curves(metrics.pr_curves, plots / "pr_curves.png")
        if getattr(metrics, "confusion", np.zeros(0)).size:
            plot_confusion(metrics.confusion, fit.exp.class_names, plots / "confusion.png")
    summary = {
        "epochs": fit.epoch,
        "steps": fit.step,
        "classes": fit.exp.class_names,
        "best": fit.best if math.isfinite(fit.best) else None,
        "metrics": fit.last_metrics,
    }
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2))
