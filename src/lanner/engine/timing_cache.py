"""The timing cache: tactic decisions keyed by op signature, shapes, dtypes, device and library versions.

Tactic timing makes builds non-deterministic (reference §0.2); the cache is the remedy, as TensorRT's
timing cache is. Modes (``CACHE_MODES``):

- ``tune``: time every tunable node, record (overwrite) its entry, save the cache;
- ``replay``: use recorded decisions only; a miss is a ``TimingCacheMissError`` (TensorRT's
  ``kERROR_ON_TIMING_CACHE_MISS``). Same ONNX + same cache → byte-identical plan;
- ``merge``: reuse hits, time misses, add them, save.

The file is JSON (sorted keys), so two caches diff and merge readably::

    {"format": "lanner-timing-cache", "version": 1,
     "entries": {"FusedConv:1f0c...": {"tactic": "onednn.fused", "times_ms": {...}, "signature": {...},
                                       "device": {...}, "libraries": {...}}}}

Example:
    >>> cache = TimingCache()
    >>> cache.put("Conv:abc", {"tactic": "aten.nhwc", "times_ms": {"aten.nchw": 2.0, "aten.nhwc": 1.5}})
    >>> cache.get("Conv:abc")["tactic"]
    'aten.nhwc'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanner.core.errors import DataError, LannerError
from lanner.core.folders import replacing

CACHE_MODES = ("tune", "replay", "merge")
FORMAT = "lanner-timing-cache"
VERSION = 1


class TimingCacheMissError(LannerError):
    """A replay-only build met a node the timing cache has no decision for."""


@dataclass
class TimingCache:
    """In-memory timing cache (``entries``: key → decision); ``load``/``save`` for the JSON file."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path, *, must_exist: bool = False) -> TimingCache:
        """Read ``path``; a missing file is an empty cache unless ``must_exist`` (replay needs one)."""
        path = Path(path)
        if path.exists() and not path.is_file():  # else a long tuning run ends in IsADirectoryError on save
            raise DataError(
                "the timing cache path is a folder", where=str(path), fix="pass a file path, e.g. timing.json"
            )
        if not path.is_file():
            if must_exist:
                raise DataError(
                    f"timing cache {path} does not exist",
                    fix="build once with --cache-mode tune to record it, or pass the right path",
                )
            return cls(path=path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(
                f"not a readable timing cache ({exc})", where=str(path), fix="delete it and rebuild"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise DataError(
                f"not a lanner timing cache (format {data.get('format') if isinstance(data, dict) else '?'!r}, "
                f"version {data.get('version') if isinstance(data, dict) else '?'})",
                where=str(path),
                fix=f"expected format {FORMAT!r} version {VERSION}; delete it and rebuild with --cache-mode tune",
            )
        return cls(dict(data.get("entries", {})), path)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the cache as sorted JSON (deterministic bytes for the same entries)."""
        target = Path(path or self.path or "timing.cache")
        body = {"format": FORMAT, "version": VERSION, "entries": self.entries}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with replacing(target) as partial:  # the cache is what makes rebuilds identical: never half-written
                partial.write_text(json.dumps(body, sort_keys=True, indent=1) + "\n")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DataError(
                f"cannot write the timing cache: {reason}", where=str(target), fix="pass a writable file path"
            ) from None
        return target

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self.entries[key] = entry

    def merge(self, other: TimingCache) -> TimingCache:
        """A new cache with ``other``'s entries added; on a key clash ``self`` wins (it is the newer)."""
        return TimingCache({**other.entries, **self.entries}, self.path)

    def __len__(self) -> int:
        return len(self.entries)


def cache_key(op_type: str, signature: dict[str, Any], fingerprint: str) -> str:
    """``"FusedConv:<hash>"``: the op, then a hash of the signature and the device/library fingerprint."""
    text = json.dumps({"signature": signature, "fingerprint": fingerprint}, sort_keys=True, default=str)
    return f"{op_type}:{hashlib.sha256(text.encode()).hexdigest()[:24]}"
