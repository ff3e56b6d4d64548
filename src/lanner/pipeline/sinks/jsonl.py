"""JSONL sink: one line per frame (``base.frame_record``), appended to a file.

Example:
    >>> import json, tempfile, numpy as np
    >>> from lanner.core.frame import Frame
    >>> path = Path(tempfile.mkdtemp()) / "events.jsonl"
    >>> sink = JsonlSink(JsonlSinkConfig(path=str(path)), ("car",))
    >>> sink.write(Frame(0, 0, 0, np.zeros((4, 4, 3), np.uint8)))
    >>> sink.close()
    >>> json.loads(path.read_text())["frame"]
    0
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lanner.core.errors import ConfigError
from lanner.core.frame import Frame
from lanner.pipeline.sinks.base import frame_record
from lanner.pipeline.sinks.config import JsonlSinkConfig
from lanner.pipeline.sinks.schema import encode


class JsonlSink:
    """Writes ``frame_record`` as compact JSON, one line per frame; flushes every ``flush_every`` lines."""

    def __init__(self, config: JsonlSinkConfig, class_names: Sequence[str] = ()) -> None:
        self.config = config
        self.name = config.name or f"jsonl:{config.path}"
        self.class_names = tuple(class_names)
        path = Path(config.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open the JSONL sink file: {exc.strerror}", where=str(path),
                              fix="choose a writable path") from None  # fmt: skip
        self._lines = 0

    def write(self, frame: Frame) -> None:
        """Append the frame's line (skipped when ``skip_empty`` and it has no objects and no events)."""
        if self.config.skip_empty and len(frame.detections) == 0 and not frame.events:
            return
        self._file.write(encode(frame_record(frame, self.class_names)).decode() + "\n")
        self._lines += 1
        if self._lines % self.config.flush_every == 0:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()
