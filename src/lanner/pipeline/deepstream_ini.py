"""Key-file (INI) reading for the deepstream-app importer: ``IniFile`` records the keys read so the rest
become warnings; the diagnostics say where a file is broken and which keys repeat.

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
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanner.core.errors import ConfigError

NO_EQUIVALENT = "ignored (no lanner equivalent)"


class IniFile:
    """One key-file (INI) with the keys read so far, so the rest can be listed as warnings (``unused``)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"DeepStream config not found: {path}", fix="check the path")
        parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",),
                                           comment_prefixes=("#", ";"), inline_comment_prefixes=None)  # fmt: skip
        parser.optionxform = str  # keep DeepStream's key names as written
        fix = "DeepStream configs are [group] headers followed by key=value lines"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not a text file (byte {exc.start} is not UTF-8)", where=str(path), fix=fix) from None
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as exc:
            where, problem = parse_problem(exc, text, path)
            raise ConfigError(f"not a key-file (INI): {problem}", where=where, fix=fix) from None
        self.path, self.parser = path, parser
        self.used: set[tuple[str, str]] = set()
        self.repeated = repeated_keys(text)

    def groups(self) -> list[str]:
        return self.parser.sections()

    def get(self, group: str, key: str, default: str | None = None) -> str | None:
        if not self.parser.has_option(group, key):
            return default
        self.used.add((group, key))
        return self.parser.get(group, key).strip()

    def num(self, group: str, key: str, kind: Callable[[str], Any] = int, default: Any = None) -> Any:
        raw = self.get(group, key)
        if raw is None:
            return default
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(
                f"[{group}] {key}={raw!r} is not a number", where=str(self.path), fix="fix the value"
            ) from None

    def enabled(self, group: str) -> bool:
        return self.num(group, "enable", int, 1) != 0

    def file(self, group: str, key: str) -> Path | None:
        raw = self.get(group, key)
        if not raw:
            return None
        raw = raw[len("file://") :] if raw.startswith("file://") else raw
        path = Path(raw)
        return path if path.is_absolute() else Path(os.path.normpath(self.path.parent / path))

    def unused(self, group: str, reason: Callable[[str], str | None]) -> list[str]:
        """One warning line per key of ``group`` not read: ``reason(key)``, or ``NO_EQUIVALENT``."""
        out = []
        for key in self.parser.options(group):
            if (group, key) not in self.used:
                why = reason(key) or NO_EQUIVALENT
                out.append(f"[{group}] {key}: {why}")
        return out


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


_WARNING = re.compile(r"^(?P<where>(?:\S+ )?\[[^\]]+\])(?: (?P<key>[^:]+))?: (?P<reason>.+)$")
_BENIGN = ("not needed", "not used", "ignored (GPU memory/placement setting")


def group_warnings(lines: list[str]) -> list[str]:
    """The importer's warnings with one line per reason, listing its keys by group (nothing is dropped).

    A deepstream-app config gives dozens of ``[group] key: reason`` lines, most of them the same few reasons
    (GPU placement keys, keys read from the model's metadata). Grouped, the reasons that change behaviour
    come first and those that need no action ("not needed", "not used", GPU placement) last.

    Example:
        >>> group_warnings(["[osd] font: ignored (x)", "[osd] show-clock: ignored (x)", "[sink2]: skipped (y)"])
        ['ignored (x): [osd] font, show-clock', 'skipped (y): [sink2]']
    """
    order: dict[str, dict[str, list[str]]] = {}
    loose = []
    for line in lines:
        match = _WARNING.match(line)
        if match is None:
            loose.append(line)
            continue
        keys = order.setdefault(match["reason"], {}).setdefault(match["where"], [])
        if match["key"]:
            keys.append(match["key"])
    grouped = []
    for reason, by_where in order.items():
        places = "; ".join(f"{where} {', '.join(keys)}".rstrip() for where, keys in by_where.items())
        grouped.append((reason.startswith(_BENIGN), f"{reason}: {places}"))
    return loose + [line for _, line in sorted(grouped, key=lambda item: item[0])]
