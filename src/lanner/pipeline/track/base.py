"""The tracker protocol, the track table all trackers share, and the tracker registry.

A tracker follows objects of one source (camera) over time: the pipeline keeps one per source. Every
tracker takes the frame's ``Detections`` and returns the subset that belongs to confirmed tracks, in
input order, with ``tracker_id`` set (ids start at 1 per tracker and only increase). Returned rows keep
the detector's box, score, class and ``data`` columns, so later stages (secondary inference on crops,
analytics) see what the detector saw.

Example:
    >>> import numpy as np
    >>> from lanner.core import Detections
    >>> tracker = create_tracker("bytetrack", {"track_thresh": 0.5})
    >>> boxes = Detections.from_arrays([[10, 10, 50, 90]], class_id=[0], confidence=[0.9])
    >>> tracker.update(boxes, frame_idx=0).tracker_id
    array([1])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from lanner.core.config import Section, load_config
from lanner.core.detections import Detections
from lanner.core.errors import ConfigError, DataError
from lanner.core.registry import Registry
from lanner.pipeline.track import kalman

# Track states (Zhang et al. 2022, ByteTrack: new tracks are tentative until matched again; a tracked
# object that is not matched becomes lost and may be re-found within the lost-track buffer).
TENTATIVE, TRACKED, LOST = 0, 1, 2


@runtime_checkable
class Tracker(Protocol):
    """What the pipeline needs from a tracker: per-frame ``update`` and ``reset`` (e.g. on source restart)."""

    def update(self, detections: Detections, frame_idx: int) -> Detections:
        """Associate this frame's boxes with tracks; return the tracked rows with ``tracker_id`` set."""
        ...

    def reset(self) -> None:
        """Forget every track; the next id is 1 again."""
        ...


TRACKERS: Registry[type[Any]] = Registry("tracker")


def register_tracker(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: ``@register_tracker("bytetrack")``. The class needs a ``config_type`` Section."""
    return TRACKERS.register(name)


def create_tracker(name: str, config: Mapping[str, Any] | Section | None = None) -> Tracker:
    """Build a tracker by registry name from its config section (a dict is validated; unknown keys raise)."""
    cls = TRACKERS.get(name)
    schema: type[Section] = cls.config_type
    if isinstance(config, Section):
        if not isinstance(config, schema):
            raise ConfigError(
                f"tracker {name!r} takes a {schema.__name__}, got {type(config).__name__}",
                fix=f"pass {schema.__name__}(...) or a dict of its keys",
            )
        return cls(config)
    return cls(load_config(schema, data=dict(config or {})))


def tracker_names() -> list[str]:
    """Names accepted by ``create_tracker`` (and by the pipeline config's ``tracker.type``)."""
    return TRACKERS.names()


class PerSourceTrackers:
    """One tracker per source (camera), made on a source's first frame: ids are per source, from 1.

    Example:
        >>> from lanner.core import Detections
        >>> trackers = PerSourceTrackers("sort", {"min_hits": 1})
        >>> box = Detections.from_arrays([[0, 0, 10, 20]], class_id=[0], confidence=[0.9])
        >>> [trackers.update(cam, box, frame_idx=0).tracker_id.tolist() for cam in (0, 1)]
        [[1], [1]]
    """

    def __init__(self, name: str, config: Mapping[str, Any] | Section | None = None) -> None:
        create_tracker(name, config)  # fail here, at construction, on a bad name or config
        self.name, self.config = name, config
        self._trackers: dict[int, Tracker] = {}

    def update(self, source_id: int, detections: Detections, frame_idx: int) -> Detections:
        """Track ``detections`` of frame ``frame_idx`` of source ``source_id``."""
        tracker = self._trackers.get(source_id)
        if tracker is None:
            tracker = self._trackers[source_id] = create_tracker(self.name, self.config)
        return tracker.update(detections, frame_idx)

    def remove(self, source_id: int) -> None:
        """Forget a source (end of stream, or removed): its next frame starts a fresh tracker."""
        self._trackers.pop(source_id, None)

    def sources(self) -> list[int]:
        return sorted(self._trackers)


class FrameClock:
    """Checks that frame indices increase and measures the gap since the previous update.

    The gap is the Kalman step (``dt``) and the unit of ``max_age`` / ``track_buffer``, so a tracker fed
    only every Nth frame (detector ``interval``) or after dropped frames predicts over the real gap.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.calls = 0

    def tick(self, frame_idx: int) -> int:
        frame_idx = int(frame_idx)
        if self.last is not None and frame_idx <= self.last:
            raise DataError(
                f"tracker got frame_idx {frame_idx} after {self.last}; frame indices must increase",
                fix="keep one tracker per source, and call reset() when a source restarts",
            )
        gap = 1 if self.last is None else frame_idx - self.last
        self.last = frame_idx
        self.calls += 1
        return gap


@dataclass
class TrackTable:
    """Tracks as a struct of numpy arrays (one row per track), so association stays vectorised.

    ``xyxy`` is the box used for association: the Kalman prediction for SORT/ByteTrack, the last matched
    box for the IOU tracker. ``track_id`` is 0 until the track is confirmed. ``mean``/``cov`` hold the
    Kalman state (see ``kalman.py``); the IOU tracker leaves them zero.
    """

    track_id: np.ndarray  # (T,) int64, 0 = not confirmed yet
    class_id: np.ndarray  # (T,) int64
    score: np.ndarray  # (T,) float32, score of the last matched detection
    xyxy: np.ndarray  # (T, 4) float64
    state: np.ndarray  # (T,) int8: TENTATIVE / TRACKED / LOST
    hits: np.ndarray  # (T,) int64, matched detections so far
    hit_streak: np.ndarray  # (T,) int64, consecutive matched updates
    start_frame: np.ndarray  # (T,) int64
    last_frame: np.ndarray  # (T,) int64, frame of the last match
    mean: np.ndarray  # (T, 8) float64
    cov: np.ndarray  # (T, 8, 8) float64

    _SHAPES: ClassVar[dict[str, tuple[tuple[int, ...], type]]] = {
        "track_id": ((), np.int64),
        "class_id": ((), np.int64),
        "score": ((), np.float32),
        "xyxy": ((4,), np.float64),
        "state": ((), np.int8),
        "hits": ((), np.int64),
        "hit_streak": ((), np.int64),
        "start_frame": ((), np.int64),
        "last_frame": ((), np.int64),
        "mean": ((8,), np.float64),
        "cov": ((8, 8), np.float64),
    }

    @classmethod
    def empty(cls, n: int = 0) -> TrackTable:
        """``n`` zeroed rows (0 by default)."""
        return cls(**{k: np.zeros((n, *shape), dtype) for k, (shape, dtype) in cls._SHAPES.items()})

    @classmethod
    def start(cls, detections: Detections, index: np.ndarray, frame_idx: int, state: int) -> TrackTable:
        """New rows (one hit each, starting at ``frame_idx``) for the boxes ``detections[index]``."""
        table = cls.empty(len(index))
        table.class_id[:] = detections.class_id[index]
        table.score[:] = detections.confidence[index]
        table.xyxy[:] = detections.xyxy[index]
        table.state[:] = state
        table.hits[:] = 1
        table.hit_streak[:] = 1
        table.start_frame[:] = frame_idx
        table.last_frame[:] = frame_idx
        return table

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def take(self, index: np.ndarray) -> TrackTable:
        """Rows selected by a boolean mask or an index array."""
        return TrackTable(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    def concat(self, other: TrackTable) -> TrackTable:
        """These rows followed by ``other``'s."""
        fields = dataclasses.fields(self)
        return TrackTable(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields})


class TableTracker:
    """What the IOU, SORT and ByteTrack trackers share: a typed config (``config_type``, defaults when
    none is given), a ``TrackTable``, a ``FrameClock`` and the next id to hand out; ``reset`` starts over."""

    config_type: type[Section] = Section

    def __init__(self, config: Section | None = None) -> None:
        self.config: Any = config or self.config_type()
        self.reset()

    def reset(self) -> None:
        self._tracks = TrackTable.empty()
        self._clock = FrameClock()
        self._next_id = 1


def assign_ids(table: TrackTable, rows: np.ndarray, next_id: int) -> int:
    """Give consecutive ids (from ``next_id``) to the rows among ``rows`` that have none; return the next id."""
    rows = np.asarray(rows, np.int64)
    fresh = rows[table.track_id[rows] == 0]
    table.track_id[fresh] = np.arange(next_id, next_id + len(fresh))
    return next_id + len(fresh)


def tracked_output(detections: Detections, det_index: np.ndarray, track_id: np.ndarray) -> Detections:
    """The rows ``det_index`` of ``detections`` in input order, with ``tracker_id`` = ``track_id``."""
    det_index = np.asarray(det_index, np.int64)
    order = np.argsort(det_index, kind="stable")
    picked = detections[det_index[order]]
    picked.tracker_id = np.asarray(track_id, np.int64)[order]
    return picked


def empty_output(detections: Detections) -> Detections:
    """No tracked rows (keeps the ``data`` keys so ``Detections.merge`` across frames works)."""
    return tracked_output(detections, np.zeros(0, np.int64), np.zeros(0, np.int64))


def correct(
    tracks: TrackTable, rows: np.ndarray, detections: Detections, det_index: np.ndarray, frame_idx: int
) -> None:
    """Kalman-update the rows ``rows`` with their matched boxes ``detections[det_index]`` (same order)."""
    xyxy = detections.xyxy[det_index]
    mean, cov = kalman.update(tracks.mean[rows], tracks.cov[rows], kalman.xyxy_to_xyah(xyxy))
    tracks.mean[rows], tracks.cov[rows] = mean, cov
    tracks.xyxy[rows] = kalman.xyah_to_xyxy(mean)
    tracks.score[rows] = detections.confidence[det_index]
    tracks.class_id[rows] = detections.class_id[det_index]
    tracks.hits[rows] += 1
    tracks.hit_streak[rows] += 1
    tracks.last_frame[rows] = frame_idx
