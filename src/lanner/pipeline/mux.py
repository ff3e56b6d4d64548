"""``Muxer``: batch frames across sources, like DeepStream's nvstreammux.

A batch holds up to ``batch_size`` frames and at most ``max_frames_per_source`` from one source. It is
pushed as soon as it is full, as soon as waiting cannot fill it (every running source already gave its
share, or has ended), or ``batched_push_timeout_ms`` after its oldest frame was queued, whichever comes
first. Sources are visited round-robin starting after the last source served, so a fast source cannot
starve the others. Sources can be added and removed at any time (a registry under one lock, not request
pads: there is nothing to deadlock on).

With an ``InputSpec`` each batch carries ``tensor_nchw`` (letterboxed, normalised, stacked) and
``meta["scales"]`` per frame from ``lanner.data.preprocess.to_network_input``. By default the resize
(the letterbox) runs in each source's decode thread (``preprocess_in_source``), where it overlaps with
decoding and inference, and the muxer only normalises the already-sized images straight into the batch
(an image already at the input size passes ``resize_image`` unchanged, so the tensor is bit-identical);
``bench/decode.py`` measures both placements. ``meta["eos"]`` lists the sources that ended (EOS, failure
or removal) since the previous batch and ``meta["failed"]`` maps failed ones to their error line; a batch
may carry no frames when it only reports EOS. ``done`` is true once every source ended and was drained.

DeepStream's ``batched-push-timeout`` is in microseconds; here it is ``batched_push_timeout_ms``.

Example:
    >>> mux = Muxer(MuxConfig(batch_size=4), InputSpec(size_hw=(384, 640)))  # doctest: +SKIP
    >>> mux.add_source(open_source(SourceConfig(uri="cam0.mp4"), 0)); mux.start()  # doctest: +SKIP
    >>> while not mux.done:  # doctest: +SKIP
    ...     batch = mux.next_batch(timeout_s=1.0)
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import model_validator

from lanner.core.config import Section
from lanner.core.errors import ConfigError, UsageError
from lanner.core.frame import Batch
from lanner.data.preprocess import InputSpec, resize_image, to_network_input
from lanner.pipeline.sources import Source, SourceItem


class MuxConfig(Section):
    """Batching: frames per batch, how long a partial batch may wait, and the per-source share.

    ``batched_push_timeout_ms``: about one frame period for live cameras (33-40 ms at 30 fps); files use
    back-pressure instead and can push sooner. ``preprocess_in_source`` letterboxes in the decode threads.
    """

    batch_size: int = 4
    batched_push_timeout_ms: float = 40.0
    max_frames_per_source: int = 1
    preprocess_in_source: bool = True

    @model_validator(mode="after")
    def _check(self) -> MuxConfig:
        """One clear line per mistake."""
        for field, ok in (
            ("batch_size", self.batch_size >= 1),
            ("max_frames_per_source", self.max_frames_per_source >= 1),
            ("batched_push_timeout_ms", self.batched_push_timeout_ms >= 0),
        ):
            if not ok:
                raise ConfigError(
                    f"{field}={getattr(self, field)} is invalid",
                    where=f"mux.{field}",
                    fix="use a positive number (0 allowed for the timeout)",
                )
        return self


class Muxer:
    """Batches frames from a changing set of sources (see the module docstring)."""

    def __init__(self, config: MuxConfig, input_spec: InputSpec | None = None) -> None:
        self.config = config
        self.input_spec = input_spec
        self._cond = threading.Condition()  # shared with every source: a new frame wakes next_batch
        self._sources: dict[int, Source] = {}
        self._order: list[int] = []
        self._start_at = 0  # index into _order where the next batch starts (round-robin)
        self._pending_eos: list[int] = []
        self._reported: set[int] = set()
        self._started = False
        self._had_source = False
        self.batches = 0
        self.frames_out = 0

    # -- source registry ----------------------------------------------------------------------------
    def add_source(self, source: Source) -> None:
        """Register ``source`` (started now if the muxer runs). Its id must be new."""
        with self._cond:
            if source.source_id in self._sources or source.source_id in self._reported:
                raise UsageError(
                    f"source id {source.source_id} is already used",
                    where=f"mux add '{source.name}'",
                    fix="give every source its own id",
                )
            source.attach(self._cond)
            if self.input_spec is not None and self.config.preprocess_in_source:
                spec = self.input_spec
                source.transform = lambda image: resize_image(image, spec)  # (resized uint8, scale_xy)
            self._sources[source.source_id] = source
            self._order.append(source.source_id)
            self._had_source = True
            self._cond.notify_all()
        if self._started:
            source.start()

    def remove_source(self, source_id: int) -> None:
        """Stop a source and forget it; its queued frames are discarded and it is reported in ``eos``."""
        with self._cond:
            source = self._sources.pop(source_id, None)
            if source is None:
                raise UsageError(f"no source with id {source_id}", where="mux remove", fix=f"ids now: {self._order}")
            self._order.remove(source_id)
            self._mark_ended(source_id)
        source.stop()  # outside the lock: its decoder may need the lock to notice the stop
        with self._cond:
            self._cond.notify_all()

    @property
    def sources(self) -> dict[int, Source]:
        """The registered sources by id (a copy)."""
        with self._cond:
            return dict(self._sources)

    def start(self) -> None:
        """Start every registered source; later ``add_source`` calls start theirs at once."""
        self._started = True
        for source in self.sources.values():
            source.start()

    def stop(self) -> None:
        """Stop every source (the muxer can still report what was queued as EOS)."""
        self._started = False
        for source in self.sources.values():
            source.stop()
        with self._cond:
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        """True once at least one source was added and every source ended, was drained and reported."""
        with self._cond:
            self._scan_ended()
            exhausted = all(src.exhausted for src in self._sources.values())
            return self._had_source and exhausted and not self._pending_eos

    def stats(self) -> dict[int, dict[str, Any]]:
        """Per-source counters (state, decoded, skipped, dropped, queued, error)."""
        return {sid: src.stats() for sid, src in self.sources.items()}

    # -- batching --------------------------------------------------------------------------------------
    def next_batch(self, timeout_s: float) -> Batch | None:
        """The next batch, waiting up to ``timeout_s`` for a first frame; ``None`` if none came."""
        give_up = time.monotonic() + timeout_s
        push_s = self.config.batched_push_timeout_ms / 1000.0
        items: list[SourceItem] = []
        taken: dict[int, int] = {}
        first_at: float | None = None
        with self._cond:
            while True:
                self._collect(items, taken)
                self._scan_ended()
                if items and first_at is None:
                    first_at = min(item.queued_at for item in items)
                if len(items) >= self.config.batch_size or (items and not self._can_grow(taken)):
                    break
                if not items and (self._pending_eos or self._all_exhausted()):
                    break
                left = (first_at + push_s if first_at is not None else give_up) - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            eos, self._pending_eos = self._pending_eos, []
            failed = {sid: str(self._error_of(sid)) for sid in eos if self._error_of(sid) is not None}
        if not items and not eos:
            return None
        return self._build(items, eos, failed)

    def _collect(self, items: list[SourceItem], taken: dict[int, int]) -> None:
        """Round-robin passes over the sources, one frame per source per pass, within the caps."""
        order = self._order[self._start_at :] + self._order[: self._start_at]
        cap, size = self.config.max_frames_per_source, self.config.batch_size
        progress = True
        while progress and len(items) < size:
            progress = False
            for sid in order:
                if len(items) >= size:
                    break
                if taken.get(sid, 0) >= cap:
                    continue
                item = self._sources[sid].get_nowait()
                if item is not None:
                    items.append(item)
                    taken[sid] = taken.get(sid, 0) + 1
                    progress = True
                    self._start_at = (self._order.index(sid) + 1) % len(self._order)

    def _can_grow(self, taken: dict[int, int]) -> bool:
        """Whether waiting could add a frame: a running source has not given its share yet."""
        cap = self.config.max_frames_per_source
        return any(not src.exhausted and taken.get(sid, 0) < cap for sid, src in self._sources.items())

    def _all_exhausted(self) -> bool:
        return self._had_source and all(src.exhausted for src in self._sources.values())

    def _scan_ended(self) -> None:
        for sid, src in self._sources.items():
            if src.exhausted:
                self._mark_ended(sid)

    def _mark_ended(self, source_id: int) -> None:
        if source_id not in self._reported:
            self._reported.add(source_id)
            self._pending_eos.append(source_id)

    def _error_of(self, source_id: int) -> Any:
        src = self._sources.get(source_id)
        return src.error if src is not None else None

    def _build(self, items: list[SourceItem], eos: list[int], failed: dict[int, str]) -> Batch:
        frames = [item.frame for item in items]
        meta: dict[str, Any] = {"eos": eos, "failed": failed}
        tensor = None
        if self.input_spec is not None and frames:
            if all(item.prepared is not None for item in items):  # resized in the decode threads
                tensor, _ = to_network_input([item.prepared[0] for item in items], self.input_spec)
                meta["scales"] = [item.prepared[1] for item in items]
            else:
                tensor, meta["scales"] = to_network_input([f.decoded for f in frames], self.input_spec)
        self.batches += 1
        self.frames_out += len(frames)
        return Batch(frames=frames, tensor_nchw=tensor, meta=meta)
