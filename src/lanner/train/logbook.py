"""Where a run's numbers go: ``metrics.jsonl`` (one JSON object per event) and TensorBoard scalars.

Only the main process (rank 0) writes; the others get a ``Logbook(enabled=False)`` that does nothing.

Example:
    >>> book = Logbook(Path("/tmp/doc_run"), tensorboard=False)
    >>> book.write({"event": "epoch", "epoch": 1, "loss": 2.5})
    >>> book.close()
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, bool) or key in ("event", "epoch", "step"):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[prefix + key] = float(value)
        elif isinstance(value, dict) and key != "per_class":
            out.update(_scalars(value, f"{prefix}{key}/"))
    return out


class Logbook:
    """Append events to ``<dir>/metrics.jsonl`` and their numbers to ``<dir>/tensorboard``."""

    def __init__(self, directory: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled, self.path, self.writer = enabled, Path(directory) / "metrics.jsonl", None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(directory) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        """One event: appended as a JSON line; its numeric fields become scalars at ``record['step']``."""
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            tag = record.get("event", "log")
            for name, value in _scalars(record).items():
                self.writer.add_scalar(f"{tag}/{name}", value, record.get("step", 0))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The events of a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
