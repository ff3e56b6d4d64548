"""The plan file: one self-contained, versioned file per built engine (TensorRT's ``.plan``).

Layout (little-endian)::

    b"LANNERPL"              8-byte magic
    uint32 format_version    FORMAT_VERSION
    uint64 json_length
    JSON (UTF-8, sorted keys): format_version, lanner/library versions, device fingerprint, build config,
        source ONNX sha256, layer counts, graph (nodes with attributes, typed values), optimization
        profiles (min/opt/max batch + tactic per node), memory plan summary, weights_sha256, manifest_sha256
    safetensors              every constant (weights), by ONNX tensor name

Nothing in it depends on time or on dict order, so the same inputs give the same bytes. Loading a plan
built for another format version, lanner version, library set or device raises ``PlanMismatchError``
naming every difference; a damaged file (cut short, a malformed manifest, weights that no longer match
their ``weights_sha256``, a manifest edited or damaged after writing: ``manifest_sha256``) raises
``DataError`` instead of running with wrong numbers.

Example:
    >>> plan = read_plan("resnet18.plan")  # doctest: +SKIP
    >>> [(p.min, p.opt, p.max) for p in plan.profiles]  # doctest: +SKIP
    [(1, 8, 32)]
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.errors import ConfigError, DataError, PlanMismatchError
from lanner.core.folders import replacing
from lanner.engine.fingerprint import device_fingerprint, library_versions
from lanner.engine.ir.graph import Graph, Node, Value

MAGIC = b"LANNERPL"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIQ")

__all__ = ["FORMAT_VERSION", "MAGIC", "Plan", "PlanMismatchError", "Profile", "read_plan", "write_plan"]
# PlanMismatchError is lanner.core.errors' (a LannerError, also exported as lanner.PlanMismatchError);
# it is re-exported here so engine users import it from where plans live.


@dataclass(frozen=True)
class Profile:
    """An optimization profile: the batch range it serves and the batch its tactics were timed at."""

    min: int
    opt: int
    max: int
    tactics: dict[str, str] = field(default_factory=dict, compare=False)

    @staticmethod
    def parse(text: str) -> Profile:
        """``"1:8:32"`` (min:opt:max) or ``"8"`` (all three)."""
        parts = str(text).split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) == 1:
            values *= 3
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise ConfigError(
                f"bad batch profile {text!r}", fix="write min:opt:max with 1 <= min <= opt <= max, e.g. 1:8:32"
            )
        return Profile(values[0], values[1], values[2])

    def covers(self, batch: int) -> bool:
        return self.min <= batch <= self.max

    def to_json(self) -> dict[str, Any]:
        return {"min": self.min, "opt": self.opt, "max": self.max, "tactics": dict(sorted(self.tactics.items()))}


@dataclass
class Plan:
    """A built engine: the optimized graph, its profiles with tactic choices, and build metadata."""

    graph: Graph
    profiles: list[Profile]
    build_config: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=device_fingerprint)
    libraries: dict[str, str] = field(default_factory=library_versions)
    source_sha256: str = ""
    layers: dict[str, int] = field(default_factory=dict)
    memory_plan: list[dict[str, Any]] = field(default_factory=list)
    batch_symbol: str | None = None

    def to_bytes(self) -> bytes:
        """The plan file's bytes (deterministic)."""
        from safetensors.numpy import save

        weights = save({k: np.ascontiguousarray(v) for k, v in sorted(self.graph.constants.items())})
        manifest = {
            "format_version": FORMAT_VERSION,
            "lanner_version": self.libraries.get("lanner", "unknown"),
            "libraries": self.libraries,
            "device": self.device,
            "build_config": self.build_config,
            "source_sha256": self.source_sha256,
            "layers": self.layers,
            "graph": graph_to_json(self.graph),
            "batch_symbol": self.batch_symbol,
            "profiles": [p.to_json() for p in self.profiles],
            "memory_plan": self.memory_plan,
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
        manifest["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
        text = _canonical(manifest)
        return _HEADER.pack(MAGIC, FORMAT_VERSION, len(text)) + text + weights

    @staticmethod
    def from_bytes(data: bytes, where: str = "plan") -> Plan:
        """Parse plan bytes (format version checked; device/library checks are ``check_compatible``'s)."""
        from safetensors.numpy import load

        if len(data) < _HEADER.size or data[:8] != MAGIC:
            raise DataError("not a lanner plan file (bad magic)", where=where, fix="build one with `lanner build`")
        _, version, length = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise PlanMismatchError(
                f"plan format version {version} differs from this lanner's ({FORMAT_VERSION})",
                where=where,
                fix="rebuild the plan from the ONNX model with this lanner",
            )
        fix = "rebuild it with `lanner build`"
        blob = data[_HEADER.size + length :]
        try:
            manifest = json.loads(data[_HEADER.size : _HEADER.size + length])
            weights = load(blob)
        except Exception as exc:
            raise DataError(f"corrupt plan file ({exc})", where=where, fix=fix) from exc
        expected = manifest.get("weights_sha256") if isinstance(manifest, dict) else None  # absent in older plans
        if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
            raise DataError("corrupt plan file (its weights do not match their checksum)", where=where, fix=fix)
        own = manifest.pop("manifest_sha256", None) if isinstance(manifest, dict) else None  # also absent there
        if own is not None and hashlib.sha256(_canonical(manifest)).hexdigest() != own:
            raise DataError("corrupt plan file (its manifest does not match its checksum)", where=where, fix=fix)
        try:
            return _plan_from_manifest(manifest, weights)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            raise DataError(f"corrupt plan file (malformed manifest: {what})", where=where, fix=fix) from None

    def check_compatible(self, where: str = "plan") -> None:
        """Raise ``PlanMismatchError`` listing every difference to this machine and these libraries."""
        diffs = []
        here_libs, here_device = library_versions(), device_fingerprint()
        for name in sorted(set(self.libraries) | set(here_libs)):
            if self.libraries.get(name) != here_libs.get(name):
                diffs.append(f"{name} {self.libraries.get(name)} (plan) vs {here_libs.get(name)} (here)")
        for key in sorted(set(self.device) | set(here_device)):
            if self.device.get(key) != here_device.get(key):
                diffs.append(f"device {key} {self.device.get(key)!r} (plan) vs {here_device.get(key)!r} (here)")
        if diffs:
            raise PlanMismatchError(
                "plan was built elsewhere: " + "; ".join(diffs),
                where=where,
                fix="rebuild it here from the ONNX model (`lanner build`), or load with check=False at your own risk",
            )


def _plan_from_manifest(manifest: dict[str, Any], weights: dict[str, np.ndarray]) -> Plan:
    """The ``Plan`` a parsed manifest and its weights describe (``KeyError``/``TypeError`` when malformed)."""
    return Plan(
        graph=graph_from_json(manifest["graph"], weights),
        profiles=[
            Profile(int(p["min"]), int(p["opt"]), int(p["max"]), dict(p["tactics"])) for p in manifest["profiles"]
        ],
        build_config=dict(manifest["build_config"]),
        device=dict(manifest["device"]),
        libraries=dict(manifest["libraries"]),
        source_sha256=manifest["source_sha256"],
        layers=dict(manifest["layers"]),
        memory_plan=list(manifest["memory_plan"]),
        batch_symbol=manifest["batch_symbol"],
    )


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` (parent folders created)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as partial:  # a rebuild cut short keeps the old plan
            partial.write_bytes(plan.to_bytes())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataError(
            f"cannot write the plan file: {reason}", where=str(path), fix="choose a writable file path"
        ) from None
    return path


def read_plan(path: str | Path, *, check: bool = True) -> Plan:
    """Read a plan file; with ``check`` (default) a plan from another version/device raises ``PlanMismatchError``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"plan file {path} does not exist", fix="build one with `lanner build model.onnx -o m.plan`")
    plan = Plan.from_bytes(path.read_bytes(), where=str(path))
    if check:
        plan.check_compatible(where=str(path))
    return plan


# -- graph <-> JSON ---------------------------------------------------------------------------------------
def graph_to_json(graph: Graph) -> dict[str, Any]:
    """The graph without its constant data (that goes to safetensors)."""
    values = {
        name: {"dtype": None if v.dtype is None else v.dtype.str, "shape": None if v.shape is None else list(v.shape)}
        for name, v in sorted(graph.values.items())
        if v.data is None
    }
    nodes = [
        {
            "op_type": n.op_type,
            "name": n.name,
            "domain": n.domain,
            "inputs": list(n.inputs),
            "outputs": list(n.outputs),
            "attrs": {k: _encode(v) for k, v in sorted(n.attrs.items())},
        }
        for n in graph.nodes
    ]
    return {
        "name": graph.name,
        "opset": graph.opset,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "metadata_props": dict(sorted(graph.metadata_props.items())),
        "values": values,
        "nodes": nodes,
    }


def graph_from_json(data: dict[str, Any], weights: dict[str, np.ndarray]) -> Graph:
    values: dict[str, Value] = {name: Value.constant(name, array, copy=False) for name, array in weights.items()}
    for name, v in data["values"].items():
        shape = None if v["shape"] is None else tuple(v["shape"])
        values[name] = Value(name, None if v["dtype"] is None else np.dtype(v["dtype"]), shape)
    nodes = tuple(
        Node(
            n["op_type"],
            n["name"],
            tuple(n["inputs"]),
            tuple(n["outputs"]),
            {k: _decode(v) for k, v in n["attrs"].items()},
            n["domain"],
        )
        for n in data["nodes"]
    )
    return Graph(
        nodes=nodes,
        inputs=tuple(data["inputs"]),
        outputs=tuple(data["outputs"]),
        values=values,
        opset=int(data["opset"]),
        metadata_props=dict(data["metadata_props"]),
        name=data["name"],
    )


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.reshape(-1).tolist()}
        }
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__ndarray__" in value:
        spec = value["__ndarray__"]
        return np.asarray(spec["data"], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _canonical(manifest: dict[str, Any]) -> bytes:
    """The manifest's JSON as written (sorted keys, no spaces): parsing and writing it again gives the same
    bytes, so a checksum over it can be checked on load."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
