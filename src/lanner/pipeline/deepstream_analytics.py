"""Import an nvdsanalytics config (the ``config-file`` of deepstream-app's ``[nvds-analytics]`` group).

Groups read (key names as nvdsanalytics' property parser spells them):

- ``[property]``: ``enable``; ``config-width`` / ``config-height`` become the analytics
  ``reference_size``: every coordinate below is in that space and each source scales it to its own
  frame size (as nvdsanalytics does against the streammux resolution).
- ``[line-crossing-stream-N]``: ``line-crossing-<label>=x1;y1;x2;y2;x3;y3;x4;y4`` (a direction
  vector, then the line) becomes a lanner line on source N, its end points ordered so that moving
  along the direction vector counts "in"; ``class-id`` (``-1``: every class).
- ``[roi-filtering-stream-N]``: ``roi-<label>=x1;y1;...`` becomes an ROI (occupancy, dwell); ``class-id``.
- ``[overcrowding-stream-N]``: ``roi-<label>`` with ``object-threshold`` becomes an ROI whose
  ``max_objects`` is the threshold (an ``overcrowding`` event when more objects are inside).

The same label with the same geometry on several streams becomes one entry with several ``sources``;
a label reused with other points gets a ``_streamN`` suffix. Keys without an equivalent (``mode``,
``extended=1``, ``inverse-roi=1``, ``time-threshold``, ``osd-mode``...) and the
``[direction-detection-stream-N]`` groups are listed as warnings.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "analytics.txt"
    >>> _ = path.write_text("[property]\\nenable=1\\nconfig-width=200\\nconfig-height=100\\n"
    ...                     "[line-crossing-stream-0]\\nenable=1\\nline-crossing-gate=50;20;50;80;0;50;100;50\\n")
    >>> data, warnings = import_nvdsanalytics(path)
    >>> data["lines"][0], data["reference_size"], warnings
    ({'name': 'gate', 'p1': (0.0, 50.0), 'p2': (100.0, 50.0), 'sources': [0]}, [200, 100], [])
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lanner.core.errors import ConfigError
from lanner.pipeline.deepstream_ini import IniFile

_STREAM_GROUP = re.compile(r"(line-crossing|roi-filtering|overcrowding|direction-detection)-stream-(\d+)")
_NO_EQUIVALENT = {
    "mode": "ignored (lanner counts a crossing when the object's anchor moves across the segment)",
    "time-threshold": "ignored (lanner's overcrowding starts on the first frame above the threshold)",
    "osd-mode": "ignored (use the osd section: show_lines, show_rois, show_counts)",
    "display-font-size": "ignored (use osd.text_scale)",
    "obj-cnt-win-in-ms": "ignored (no lanner equivalent)",
    "display-obj-cnt": "ignored (use osd.show_counts)",
}


def import_nvdsanalytics(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Read an nvdsanalytics config: the lanner ``analytics`` section (``{}`` if disabled) and warnings."""
    ini = IniFile(Path(path))
    warnings: list[str] = []
    where = ini.path.name
    if not ini.parser.has_section("property"):
        raise ConfigError("nvdsanalytics config has no [property] group", where=str(ini.path),
                          fix="add [property] with enable, config-width and config-height")  # fmt: skip
    if not ini.enabled("property"):
        warnings.append(f"{where} [property] enable=0: analytics skipped")
        return {}, warnings
    width, height = ini.num("property", "config-width", int), ini.num("property", "config-height", int)
    if not width or not height:
        raise ConfigError("nvdsanalytics [property] needs config-width and config-height", where=str(ini.path),
                          fix="give the width and height the coordinates are drawn in, e.g. 1920 and 1080")  # fmt: skip
    data: dict[str, Any] = {"lines": [], "rois": [], "reference_size": [width, height]}
    groups = sorted(ini.groups(), key=lambda g: (g != "property", _stream_of(g), g))
    for group in groups:
        match = _STREAM_GROUP.fullmatch(group)
        if group != "property" and match is None:
            warnings.append(f"{where} [{group}]: ignored (not an nvdsanalytics group)")
            continue
        if match is not None and _read_stream_group(ini, group, match[1], int(match[2]), data, warnings):
            continue
        warnings.extend(f"{where} {line}" for line in ini.unused(group, lambda key: _NO_EQUIVALENT.get(key)))
    return data, warnings


def _stream_of(group: str) -> int:
    match = _STREAM_GROUP.fullmatch(group)
    return int(match[2]) if match else -1


def _read_stream_group(ini: Any, group: str, kind: str, stream: int, data: dict, warnings: list[str]) -> bool:
    """Read one per-stream group into ``data``; True when the whole group was skipped (already warned)."""
    where = ini.path.name
    if kind == "direction-detection":
        warnings.append(f"{where} [{group}]: ignored (direction detection has no lanner equivalent; a line "
                        "counts in/out)")  # fmt: skip
        return True
    if not ini.enabled(group):
        warnings.append(f"{where} [{group}]: skipped (enable=0)")
        return True
    classes = _class_ids(ini, group)
    if kind == "line-crossing":
        _lines(ini, group, stream, classes, data, warnings)
    else:
        threshold = ini.num(group, "object-threshold", int, None) if kind == "overcrowding" else None
        if kind == "roi-filtering" and ini.num(group, "inverse-roi", int, 0):
            warnings.append(f"{where} [{group}] inverse-roi=1: ignored (lanner ROIs count the objects inside)")
        for key in ini.parser.options(group):
            if key.startswith("roi-"):
                polygon = _points(ini, group, key, None)
                entry = {"name": key[len("roi-") :], "polygon": polygon, "sources": [stream]}
                if classes:
                    entry["class_ids"] = classes
                if threshold is not None:
                    entry["max_objects"] = threshold
                _add(data["rois"], entry, ("polygon", "class_ids", "max_objects"))
    return False


def _lines(ini: Any, group: str, stream: int, classes: list[int], data: dict, warnings: list[str]) -> None:
    if ini.num(group, "extended", int, 0):
        warnings.append(f"{ini.path.name} [{group}] extended=1: ignored (lanner counts crossings of the "
                        "segment only)")  # fmt: skip
    for key in ini.parser.options(group):
        if not key.startswith("line-crossing-"):
            continue
        (dx1, dy1), (dx2, dy2), p1, p2 = _points(ini, group, key, 4)
        direction = (dx2 - dx1, dy2 - dy1)
        side = (p2[0] - p1[0]) * direction[1] - (p2[1] - p1[1]) * direction[0]  # > 0: points to the right
        if side < 0:
            p1, p2 = p2, p1
        elif side == 0:
            warnings.append(f"{ini.path.name} [{group}] {key}: the direction vector is parallel to the line; "
                            "'in' is left-to-right of the line as written")  # fmt: skip
        entry: dict[str, Any] = {"name": key[len("line-crossing-") :], "p1": p1, "p2": p2, "sources": [stream]}
        if classes:
            entry["class_ids"] = classes
        _add(data["lines"], entry, ("p1", "p2", "class_ids"))


def _points(ini: Any, group: str, key: str, count: int | None) -> list[tuple[float, float]]:
    """``x1;y1;x2;y2;...`` as (x, y) pairs; exactly ``count`` pairs unless None (then at least 3)."""
    raw = ini.get(group, key) or ""
    try:
        values = [float(v) for v in raw.split(";") if v.strip()]
    except ValueError:
        values = []
    pairs = len(values) // 2
    ok = len(values) % 2 == 0 and (pairs == count if count is not None else pairs >= 3)
    if not ok:
        want = f"{count} x;y points" if count is not None else "at least 3 x;y points"
        fix = "write the coordinates as x1;y1;x2;y2;... in config-width x config-height pixels"
        raise ConfigError(f"[{group}] {key}={raw!r} is not {want}", where=str(ini.path), fix=fix)
    return [(values[2 * i], values[2 * i + 1]) for i in range(pairs)]


def _class_ids(ini: Any, group: str) -> list[int]:
    raw = ini.get(group, "class-id")
    if not raw:
        return []
    try:
        ids = [int(v) for v in raw.split(";") if v.strip()]
    except ValueError:
        raise ConfigError(f"[{group}] class-id={raw!r} is not a list of integers", where=str(ini.path),
                          fix="use class-id=-1 (every class) or ids separated by ';'") from None  # fmt: skip
    return [] if -1 in ids else ids


def _add(entries: list[dict[str, Any]], entry: dict[str, Any], same: tuple[str, ...]) -> None:
    """Append ``entry``, or add its source to an entry with the same name and geometry."""
    for old in entries:
        if old["name"] == entry["name"] and all(old.get(k) == entry.get(k) for k in same):
            old["sources"] = sorted(set(old["sources"]) | set(entry["sources"]))
            return
    names = {old["name"] for old in entries}
    if entry["name"] in names:
        entry["name"] = f"{entry['name']}_stream{entry['sources'][0]}"
    entries.append(entry)
