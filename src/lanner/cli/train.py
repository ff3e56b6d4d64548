"""``lanner train -e spec.yaml -r results/ [--set a.b=c]``: train from a TAO-style experiment spec.

The work is in ``lanner.train``; this command loads the spec, shows a progress bar with ETA and the
live loss / mAP, and prints where the results went.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from lanner.cli.app import PlainProgress, err, info, next_steps, out, state


class _LiveBar:
    """A rich progress bar fed by the trainer's ``on_log`` events (total known at the ``start`` event).

    Without a bar (no terminal) each epoch is a line, and a long epoch also gets ``PlainProgress`` step lines.
    """

    def __init__(self, bar: Any) -> None:
        self.bar, self.task, self.last = bar, None, ""
        self.plain: PlainProgress | None = None

    def on_log(self, event: dict[str, Any]) -> None:
        if event.get("event") == "start" and "images" in event:
            info(_start_line(event))
        if self.bar is None:
            self._plain(event)
            return
        kind = event.get("event")
        if kind == "start":
            self.task = self.bar.add_task("training", total=event["total_steps"], completed=event["done_steps"])
        elif kind == "step" and self.task is not None:
            desc = f"epoch {event['epoch']} loss {event['total']:.3f}{self.last}"
            self.bar.update(self.task, advance=1, description=desc)
        elif kind == "epoch":
            if "mAP50" in event:
                self.last = f" mAP50 {event['mAP50']:.3f}"
            elif "top1" in event:
                self.last = f" top1 {event['top1']:.3f}"
            self.bar.console.print(_epoch_line(event), markup=False)

    def _plain(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start" and not state().quiet:
            self.plain = PlainProgress("training steps", event["total_steps"], done=event["done_steps"])
        elif kind == "step" and self.plain is not None:
            self.plain(1)
        elif kind == "epoch":
            info(_epoch_line(event))


def _start_line(event: dict[str, Any]) -> str:
    """``training on 800 images (6412 boxes, 37 ignore regions spared from the loss), 1000 steps``."""
    parts = [f"{event['boxes']} boxes"] if "boxes" in event else []
    if event.get("ignore_regions"):
        parts.append(f"{event['ignore_regions']} ignore regions spared from the loss")
    detail = f" ({', '.join(parts)})" if parts else ""
    steps = event["total_steps"] - event["done_steps"]
    return f"training on {event['images']} images{detail}, {steps} step{'' if steps == 1 else 's'} to go"


def _epoch_line(event: dict[str, Any]) -> str:
    keys = ("loss", "mAP", "mAP50", "top1", "top5")
    values = " ".join(f"{k} {event[k]:.4f}" for k in keys if isinstance(event.get(k), int | float))
    return f"epoch {event['epoch']}: {values} ({event.get('seconds', 0):.1f} s)"


@contextlib.contextmanager
def _live_bar() -> Iterator[_LiveBar]:
    if state().quiet or not err.is_terminal:
        yield _LiveBar(None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, TextColumn("eta"), TimeRemainingColumn(), console=err) as bar:
        yield _LiveBar(bar)


@click.command("train", short_help="Train, fine-tune or extend a model from a spec (like TAO).")
@click.option("-e", "--experiment", "spec_file", type=click.Path(path_type=Path), required=True, help="Spec YAML.")
@click.option("-r", "--results", "results_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. training.lr=0.001"
)
def train(spec_file: Path, results_dir: Path, overrides: tuple[str, ...]) -> None:
    """Train (or fine-tune, or extend) a model from an experiment spec; results go to RESULTS.

    A spec to start from: configs/train/starter_detector.yaml in the repository, or the one in README.md.

    \b
    Examples:
      lanner train -e spec.yaml -r results/ --set training.epochs=5
      lanner train -e spec.yaml -r results/ --set training.resume=results/last.safetensors   (resume)
    """
    from lanner.train.spec import load_spec
    from lanner.train.trainer import train as run_train

    spec = load_spec(spec_file, overrides)
    with _live_bar() as live:
        result = run_train(spec, results_dir, on_log=live.on_log)
    out.print(f"wrote {result.results_dir} (best: {result.best}, last: {result.last})", markup=False)
    if result.metrics is not None:
        numbers = {k: result.metrics[k] for k in ("mAP", "mAP50", "top1", "top5") if k in result.metrics}
        out.print(" ".join(f"{k} {v:.4f}" for k, v in numbers.items() if v is not None), markup=False)
    val = spec.dataset.val if spec.dataset.val is not None else "VAL_DATASET"
    next_steps(f"lanner evaluate -m {result.best} -d {val}", f"lanner export -m {result.best} -o model.onnx")
