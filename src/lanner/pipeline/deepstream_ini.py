"""Key-file (INI) diagnostics for the deepstream-app importer: where a file is broken, which keys repeat.

deepstream-app reads its configs with GLib's key-file parser: a repeated key keeps its last value, and a
line that is neither ``[group]`` nor ``key=value`` makes the whole file fail. These helpers turn
configparser's errors into ``file:line`` plus the offending line, and list repeated keys as warnings.
nvdsanalytics files often carry groups for more streams than the app has sources: deepstream-app ignores
those, and so does the importer (with a warning), where a YAML line naming a missing source is an error.

Example:
    >>> repeated_keys("[source0]\\nuri=a.mp4\\nuri=b.mp4\\n")
    ['[source0] uri: given more than once (line 3 is the value used)']
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any


def parse_problem(exc: configparser.Error, text: str, path: Path) -> tuple[str, str]:
    """``(where, what)`` for a configparser error: ``file:line`` and the first bad line, quoted."""
    lines = text.splitlines()
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"{path}:{exc.lineno}", f"{exc.line.strip()!r} comes before any [group] header"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        number = exc.errors[0][0]
        line = lines[number - 1].strip() if 0 < number <= len(lines) else exc.errors[0][1]
        more = f" (and {len(exc.errors) - 1} more bad lines)" if len(exc.errors) > 1 else ""
        return f"{path}:{number}", f"{line!r} is neither a [group] header nor a key=value line{more}"
    return str(path), str(exc).splitlines()[0]


def repeated_keys(text: str) -> list[str]:
    """One warning per key given twice in a group (the last value wins, as in GLib's key-file parser)."""
    group, seen, out = "", set(), []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
        elif "=" in line and not line.startswith(("#", ";")):
            key = line.split("=", 1)[0].strip()
            if (group, key) in seen:
                out.append(f"[{group}] {key}: given more than once (line {number} is the value used)")
            seen.add((group, key))
    return out


def drop_missing_streams(analytics: dict[str, Any], num_sources: int) -> list[str]:
    """Trim imported lines/ROIs to the app's sources (in place); one warning per entry trimmed or dropped."""
    warnings = []
    for kind in ("lines", "rois"):
        kept = []
        for entry in analytics.get(kind, []):
            if not entry.get("sources"):  # every source
                kept.append(entry)
                continue
            missing = [i for i in entry["sources"] if i >= num_sources]
            entry["sources"] = [i for i in entry["sources"] if i < num_sources]
            if missing:
                fate = "ignored" if not entry["sources"] else f"kept for stream(s) {entry['sources']}"
                warnings.append(f"nvdsanalytics {kind[:-1]} {entry['name']!r}: no source for stream(s) {missing} "
                                f"({num_sources} sources); {fate}")  # fmt: skip
            if entry["sources"]:
                kept.append(entry)
        analytics[kind] = kept
    return warnings
