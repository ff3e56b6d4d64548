"""``Detections``: the one currency type for boxes, passed between every stage of lanner.

A struct of numpy arrays (one row per box). Filtering is boolean-mask indexing; concatenation and
empty sets are explicit. Validated on construction so a bad shape fails where it is made.

Example:
    >>> import numpy as np
    >>> d = Detections(xyxy=np.array([[0, 0, 10, 10], [5, 5, 20, 30]], np.float32),
    ...                confidence=np.array([0.9, 0.3], np.float32), class_id=np.array([0, 2]))
    >>> len(d[d.confidence > 0.5])
    1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanner.core.errors import DataError

_INDEX_TYPES = (slice, int, np.integer, list, np.ndarray)


@dataclass(eq=False)
class Detections:
    """Boxes in pixel ``xyxy`` (x1, y1, x2, y2) with scores, class ids and optional track ids.

    ``data`` holds extra per-box arrays (first dimension N), e.g. KITTI's ``truncated`` column.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if self.xyxy.size == 0:
            self.xyxy = self.xyxy.reshape(0, 4)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise DataError(
                f"Detections.xyxy must have shape (N, 4), got {self.xyxy.shape}",
                fix="pass one [x1, y1, x2, y2] row per box",
            )
        n = self.xyxy.shape[0]
        self.confidence = _column("confidence", self.confidence, n, np.float32)
        self.class_id = _column("class_id", self.class_id, n, np.int64)
        if self.tracker_id is not None:
            self.tracker_id = _column("tracker_id", self.tracker_id, n, np.int64)
        self.data = {key: _per_box(key, value, n) for key, value in dict(self.data).items()}

    @classmethod
    def empty(cls, data_keys: Sequence[str] = ()) -> Detections:
        """A set with no boxes (optionally with empty ``data`` columns)."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int64),
            data={key: np.zeros((0,), np.float32) for key in data_keys},
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: Any,
        class_id: Any,
        confidence: Any | None = None,
        tracker_id: Any | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Detections:
        """Build from array-likes; ``confidence`` defaults to 1 (ground truth)."""
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        conf = np.ones(len(xyxy), np.float32) if confidence is None else confidence
        return cls(xyxy=xyxy, confidence=conf, class_id=class_id, tracker_id=tracker_id, data=dict(data or {}))

    @classmethod
    def merge(cls, items: Sequence[Detections]) -> Detections:
        """Concatenate sets. All must agree on whether they carry tracker ids and which data keys."""
        items = list(items)
        if not items:
            return cls.empty()
        keys = set(items[0].data)
        tracked = items[0].tracker_id is not None
        for i, d in enumerate(items[1:], start=1):
            if set(d.data) != keys:
                raise DataError(
                    f"cannot merge Detections with different data keys: item 0 has {sorted(keys)}, "
                    f"item {i} has {sorted(d.data)}",
                    fix="add or drop the data columns so every item carries the same keys",
                )
            if (d.tracker_id is not None) != tracked:
                raise DataError(
                    f"cannot merge Detections where only some carry tracker_id (item {i} differs)",
                    fix="assign tracker ids to every item first, or drop them",
                )
        return cls(
            xyxy=np.concatenate([d.xyxy for d in items]),
            confidence=np.concatenate([d.confidence for d in items]),
            class_id=np.concatenate([d.class_id for d in items]),
            tracker_id=np.concatenate([d.tracker_id for d in items]) if tracked else None,
            data={k: np.concatenate([d.data[k] for d in items]) for k in keys},
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __iter__(self) -> Iterator[Detections]:
        """Yield one single-row ``Detections`` per box."""
        for i in range(len(self)):
            yield self[i : i + 1]

    def __getitem__(self, index: Any) -> Detections:
        """Select rows by boolean mask, integer array, slice or int (always returns ``Detections``)."""
        if isinstance(index, str):
            return self.data[index]  # type: ignore[return-value]
        if not isinstance(index, _INDEX_TYPES):
            raise TypeError(f"Detections index must be a mask, int array, slice or int, not {type(index).__name__}")
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        index = np.asarray(index) if isinstance(index, list) else index
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean mask has shape {index.shape}, Detections has {len(self)} rows")
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        same_track = (self.tracker_id is None) == (other.tracker_id is None) and (
            self.tracker_id is None or np.array_equal(self.tracker_id, other.tracker_id)  # type: ignore[arg-type]
        )
        return (
            np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.confidence, other.confidence)
            and np.array_equal(self.class_id, other.class_id)
            and same_track
            and self.data.keys() == other.data.keys()
            and all(np.array_equal(v, other.data[k]) for k, v in self.data.items())
        )

    @property
    def area(self) -> np.ndarray:
        """Box areas in square pixels (0 for inverted boxes)."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    @property
    def wh(self) -> np.ndarray:
        """Box widths and heights, shape (N, 2)."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]


def _column(name: str, value: Any, n: int, dtype: type) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 0 and n == 1:
        array = array.reshape(1)
    if array.shape != (n,):
        raise DataError(f"Detections.{name} must have shape ({n},) to match xyxy, got {array.shape}")
    fractional = array.size and not np.issubdtype(array.dtype, np.integer) and np.issubdtype(dtype, np.integer)
    if fractional and not np.all(np.equal(np.mod(array, 1), 0)):
        raise DataError(f"Detections.{name} must hold integers, got {array.dtype} with fractions")
    return array.astype(dtype, copy=False)


def _per_box(key: str, value: Any, n: int) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 0 or array.shape[0] != n:
        raise DataError(f"Detections.data[{key!r}] must have first dimension {n} to match xyxy, got {array.shape}")
    return array
