"""MOTChallenge ground truth: ``gt/gt.txt`` and ``seqinfo.ini``, written and read back.

``gt.txt`` has one comma-separated line per box, the MOT16/17 layout::

    frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility

- ``frame`` is 1-based; ``id`` is the track id (lanner's ``actor_id``, >= 1).
- ``bb_left``/``bb_top`` are 1-based pixel coordinates, as in MOTChallenge's files (its devkit is
  MATLAB); the reader subtracts the 1 again, so a round trip gives back the 0-based ``xyxy``.
- ``conf`` in ground truth is a flag: 1 = consider the box, 0 = ignore it (lanner marks boxes whose
  visibility is under ``IGNORE_BELOW_VISIBILITY``, and the boxes interpolated through occlusions).
- ``class`` is a 1-based index into the dataset's class tuple (for the synthetic world
  ``world.CLASSES``: 1 car, 2 bicycle, 3 person, 4 road_sign). This is NOT MOT17's own class table
  (where 1 is pedestrian and 3 car); ``seqinfo.ini`` lists the classes so a reader can tell.
- ``visibility`` is the visible fraction of the box, 0..1 (occlusion and truncation together).

In memory a sequence is a list with one ``Detections`` per frame (index 0 = MOT frame 1):
``class_id`` 0-based, ``tracker_id`` = id, ``confidence`` = conf and ``data["visibility"]``.

Example:
    >>> frames = [Detections.from_arrays([[10, 20, 50, 80]], [0], tracker_id=[3], data={"visibility": [1.0]})]
    >>> path = write_gt(tmp_path / "gt" / "gt.txt", frames)
    >>> read_gt(path, num_frames=1)[0].xyxy.tolist()
    [[10.0, 20.0, 50.0, 80.0]]
"""

from __future__ import annotations

import configparser
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError

MOT_COLUMNS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf", "class", "visibility")
IGNORE_BELOW_VISIBILITY = 0.2  # boxes less visible than this get conf 0 ("ignore") in gt.txt
DECIMALS = 2  # box coordinates are written with this many decimals


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOT17 ``seqinfo.ini`` (plus the class names lanner's ids index)."""

    name: str
    frameRate: int
    seqLength: int
    imWidth: int
    imHeight: int
    imExt: str = ".jpg"
    imDir: str = "img1"
    classes: tuple[str, ...] = ()


def quantize(frames: Sequence[Detections]) -> list[Detections]:
    """Round boxes to ``DECIMALS`` so what is counted in memory is exactly what ``gt.txt`` holds."""
    out = []
    for d in frames:
        q = Detections(
            xyxy=np.round(d.xyxy.astype(np.float64), DECIMALS),
            confidence=d.confidence,
            class_id=d.class_id,
            tracker_id=d.tracker_id,
            data=d.data,
        )
        out.append(q)
    return out


def interpolate_gaps(frames: Sequence[Detections], max_gap: int) -> list[Detections]:
    """Fill short holes in tracks with linearly interpolated boxes (conf 0, visibility 0).

    An object that is hidden for a few frames (behind a bus, or too few pixels visible) keeps its
    identity in MOTChallenge ground truth, where annotators interpolate through occlusions. Holes of
    up to ``max_gap`` frames are filled; after longer ones the id simply reappears. The filled boxes
    lie on the straight step between the two observed ones, so line-crossing counts do not change.
    """
    table = _to_table(frames)
    fills = []
    for tid in np.unique(table[:, 1]):
        rows = table[table[:, 1] == tid]
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        for a, b in itertools.pairwise(rows):
            gap = int(b[0] - a[0]) - 1
            if 0 < gap <= max_gap:
                t = (np.arange(1, gap + 1) / (gap + 1))[:, None]
                fill = np.repeat(b[None], gap, axis=0)
                fill[:, 0] = a[0] + np.arange(1, gap + 1)
                fill[:, 2:6] = a[2:6] + t * (b[2:6] - a[2:6])
                fill[:, 6], fill[:, 8] = 0.0, 0.0
                fills.append(fill)
    if fills:
        table = np.concatenate([table, *fills])
    return _from_table(table, len(frames))


def _to_table(frames: Sequence[Detections]) -> np.ndarray:
    """Per-frame Detections as rows ``frame_idx, id, x1, y1, x2, y2, conf, class_id, visibility`` (0-based)."""
    parts = []
    for idx, d in enumerate(frames):
        if d.tracker_id is None:
            raise DataError(f"frame {idx}: MOT ground truth needs tracker_id", fix="set Detections.tracker_id")
        vis = d.data.get("visibility", np.ones(len(d), np.float32))
        cols = [np.full(len(d), idx), d.tracker_id, *d.xyxy.T, d.confidence, d.class_id, vis]
        parts.append(np.stack([np.asarray(c, np.float64) for c in cols], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 9))


def _from_table(table: np.ndarray, num_frames: int) -> list[Detections]:
    """Rows of ``_to_table``'s layout back to one Detections per frame, each sorted by id."""
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    starts = np.searchsorted(table[:, 0], np.arange(num_frames + 1) - 0.5)
    out = []
    for k in range(num_frames):
        t = table[starts[k] : starts[k + 1]]
        out.append(
            Detections(
                xyxy=t[:, 2:6],
                confidence=t[:, 6],
                class_id=t[:, 7].astype(np.int64),
                tracker_id=t[:, 1].astype(np.int64),
                data={"visibility": t[:, 8].astype(np.float32)},
            )
        )
    return out


def write_gt(path: str | Path, frames: Sequence[Detections]) -> Path:
    """Write ``gt.txt`` from one ``Detections`` per frame, rows sorted by frame then id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _to_table(frames)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    rows = [
        f"{int(f) + 1},{int(tid)},{x1 + 1:.{DECIMALS}f},{y1 + 1:.{DECIMALS}f},{x2 - x1:.{DECIMALS}f},"
        f"{y2 - y1:.{DECIMALS}f},{round(conf)},{int(cls) + 1},{vis:.4f}\n"
        for f, tid, x1, y1, x2, y2, conf, cls, vis in table.tolist()
    ]
    path.write_text("".join(rows))
    return path


def read_gt(path: str | Path, num_frames: int | None = None) -> list[Detections]:
    """Read a MOTChallenge ``gt.txt`` (or a tracker result in the same layout) into per-frame ``Detections``.

    ``num_frames`` pads the list with empty frames up to the sequence length (from ``seqinfo.ini``);
    without it the list ends at the last frame that has a box.
    """
    table = _load_table(Path(path))
    n = max(int(table[:, 0].max()) if len(table) else 0, num_frames or 0)
    x1, y1 = table[:, 2] - 1.0, table[:, 3] - 1.0  # MOTChallenge pixels are 1-based
    x2, y2 = x1 + table[:, 4], y1 + table[:, 5]
    rows = [table[:, 0] - 1, table[:, 1], x1, y1, x2, y2, table[:, 6], table[:, 7] - 1, table[:, 8]]
    return _from_table(np.stack(rows, axis=1), n)


def _load_table(path: Path) -> np.ndarray:
    """The rows of a MOT text file as an (N, 9) float64 array (missing conf, class, visibility default to 1)."""
    if not path.is_file():
        raise DataError("MOT ground truth not found", where=str(path), fix="check the sequence folder")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise DataError(
                f"not a number in {line!r}", where=f"{path}:{lineno}", fix="expect " + ",".join(MOT_COLUMNS)
            ) from None
        if len(values) < 6:
            raise DataError(
                f"{len(values)} columns, need at least 6",
                where=f"{path}:{lineno}",
                fix="expect " + ",".join(MOT_COLUMNS),
            )
        values += [1.0, 1.0, 1.0][: max(0, 9 - len(values))]
        rows.append(values[:9])
    return np.array(rows, np.float64).reshape(-1, 9)


def write_seqinfo(path: str | Path, info: SeqInfo) -> Path:
    """Write a MOT17-style ``seqinfo.ini``; lanner adds a ``classes`` key (comma-separated, 1-based order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "[Sequence]",
        f"name={info.name}",
        f"imDir={info.imDir}",
        f"frameRate={info.frameRate}",
        f"seqLength={info.seqLength}",
        f"imWidth={info.imWidth}",
        f"imHeight={info.imHeight}",
        f"imExt={info.imExt}",
    ]
    if info.classes:
        lines.append(f"classes={','.join(info.classes)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read the ``[Sequence]`` section of a ``seqinfo.ini``."""
    path = Path(path)
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep MOTChallenge's camelCase keys
    if not parser.read(path) or "Sequence" not in parser:
        raise DataError("no [Sequence] section", where=str(path), fix="write it with write_seqinfo")
    sec = parser["Sequence"]
    try:
        return SeqInfo(
            name=sec["name"],
            frameRate=int(float(sec["frameRate"])),
            seqLength=int(sec["seqLength"]),
            imWidth=int(sec["imWidth"]),
            imHeight=int(sec["imHeight"]),
            imExt=sec.get("imExt", ".jpg"),
            imDir=sec.get("imDir", "img1"),
            classes=tuple(c for c in sec.get("classes", "").split(",") if c),
        )
    except (KeyError, ValueError) as exc:
        raise DataError(f"bad or missing key {exc}", where=str(path), fix="see MOT17's seqinfo.ini") from None
