"""Pipeline inputs: files, RTSP cameras, V4L2 cameras and image folders, each decoded in its own thread.

``open_source(config, source_id)`` builds the right ``Source`` for a ``SourceConfig``; the muxer
(``lanner.pipeline.mux.Muxer``) starts it and drains its queue.

Example:
    >>> cfg = SourceConfig(uri="rtsp://cam.local/stream1")
    >>> type(open_source(cfg, source_id=3)).__name__
    'RtspSource'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from lanner.core.errors import ConfigError, SourceError
from lanner.pipeline.sources.base import ENDED_STATES, FpsLimiter, Source, SourceInfo, SourceItem
from lanner.pipeline.sources.config import SOURCE_TYPES, SourceConfig, guess_type
from lanner.pipeline.sources.file import FileSource
from lanner.pipeline.sources.images import ImageDirSource
from lanner.pipeline.sources.rtsp import Backoff, RtspSource
from lanner.pipeline.sources.v4l2 import V4l2Source

SOURCE_CLASSES: dict[str, type[Source]] = {
    "file": FileSource,
    "rtsp": RtspSource,
    "v4l2": V4l2Source,
    "images": ImageDirSource,
}


class FailedSource(Source):
    """A source that could not be opened: it ends as ``failed`` with its error as soon as it starts.

    Lets a pipeline report a bad input through the same path as one that fails mid-stream (the muxer's
    ``meta["failed"]``) instead of refusing to start.
    """

    kind = "failed"

    def __init__(self, config: SourceConfig, source_id: int, error: SourceError) -> None:
        super().__init__(config, source_id)
        self.open_error = error

    def _decode(self) -> Iterator[tuple[int, np.ndarray]]:
        raise self.open_error
        yield  # pragma: no cover  (makes this a generator)


def open_source(config: SourceConfig, source_id: int, *, defer_errors: bool = False, **kwargs: Any) -> Source:
    """The ``Source`` for ``config`` (not started). Files and folders are checked now; cameras on start.

    Raises ``SourceError`` (one line: which source, what, the fix) when a file is missing or unreadable;
    with ``defer_errors`` it returns a ``FailedSource`` that reports that error once started instead.
    """
    kind = config.kind
    if kind not in SOURCE_CLASSES:
        raise ConfigError(f"unknown source type '{kind}'", where="sources[].type", fix=f"use one of {SOURCE_TYPES}")
    try:
        return SOURCE_CLASSES[kind](config, source_id, **kwargs)
    except SourceError as exc:
        if not defer_errors:
            raise
        return FailedSource(config, source_id, exc)


__all__ = [
    "ENDED_STATES",
    "SOURCE_CLASSES",
    "SOURCE_TYPES",
    "Backoff",
    "FailedSource",
    "FileSource",
    "FpsLimiter",
    "ImageDirSource",
    "RtspSource",
    "Source",
    "SourceConfig",
    "SourceInfo",
    "SourceItem",
    "V4l2Source",
    "guess_type",
    "open_source",
]
