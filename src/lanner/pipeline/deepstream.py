"""Import a deepstream-app config (INI) into a ``PipelineConfig``: ``lanner run --deepstream app.txt``.

Groups read: ``[application]``, ``[sourceN]``, ``[streammux]``, ``[primary-gie]`` and ``[secondary-gieN]``
(with their nvinfer ``config-file``), ``[tracker]``, ``[osd]``, ``[tiled-display]``, ``[sinkN]``,
``[message-broker]``/``[message-converter]``, ``[nvds-analytics]`` (its nvdsanalytics ``config-file``:
lines, ROIs and overcrowding, see ``deepstream_analytics``) and ``[tests]``. Keys that map are used (DeepStream names
verbatim, units converted: ``batched-push-timeout`` is in microseconds, ``bitrate`` in bits/s); every
other key gives one warning line such as ``[osd] clock-color: ignored (no lanner equivalent)``.
Relative paths are taken from the file that holds them, as deepstream-app does. The primary nvinfer's
``infer-dims=3;H;W`` becomes ``primary.input_size: [H, W]``.

Example:
    >>> result = import_deepstream("configs/deepstream_app.txt")  # doctest: +SKIP
    >>> result.data["mux"]["batched_push_timeout_ms"], result.warnings[0]  # doctest: +SKIP
    (40.0, '[application] gie-kitti-output-dir: ignored (no lanner equivalent)')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanner.core.config import load_config
from lanner.core.errors import ConfigError
from lanner.pipeline.config import PipelineConfig
from lanner.pipeline.deepstream_ini import IniFile, drop_missing_streams

GPU_ONLY = "ignored (GPU memory/placement setting; lanner picks its device itself)"
_GPU_KEYS = {"gpu-id", "nvbuf-memory-type", "cudadec-memtype", "compute-hw", "process-mode", "buffer-pool-size"}
# deepstream_sources.h: 1 V4L2 camera, 2 URI, 3 multi-URI, 4 RTSP, 5 CSI camera
SOURCE_TYPES = {1: "v4l2", 2: "auto", 3: "auto", 4: "rtsp"}
# deepstream_sinks.h (x86): 1 fakesink, 2 EGL display, 3 file, 4 RTSP out, 5 overlay, 6 msgconv + msgbroker
SINK_FILE, SINK_BROKER = 3, 6
PROTOCOLS = ("kafka", "mqtt", "redis")
MAX_NUM_SOURCES = 1024  # a multi-URI group's copies; a typo like 100000000 must fail, not build 1e8 sources
# nvinfer key -> (DetectorConfig / SecondaryConfig field, type)
_THRESHOLD_KEYS = (
    ("pre-cluster-threshold", "conf_threshold", float),
    ("nms-iou-threshold", "iou_threshold", float),
    ("topk", "max_det", int),
)
_SECONDARY_KEYS = (
    ("input-object-min-width", "min_width", int),
    ("input-object-min-height", "min_height", int),
    ("classifier-threshold", "conf_threshold", float),
    ("secondary-reinfer-interval", "reinfer_interval", int),
)
_GROUP_HINTS = {
    "pre-process": "not needed: preprocessing is read from the model's metadata",
    "secondary-pre-process": "not needed: preprocessing is read from the model's metadata",
    "message-consumer": "cloud-to-device messages have no lanner equivalent",
    "img-save": "no lanner equivalent; a jsonl sink records every object",
}


@dataclass
class ImportResult:
    """The pipeline config tree made from the INI file, and one warning line per key that was not used."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def import_deepstream(path: str | Path) -> ImportResult:
    """Read a deepstream-app config into a ``PipelineConfig`` tree plus warnings (not validated yet)."""
    ini = IniFile(Path(path))
    data: dict[str, Any] = {"sources": [], "sinks": []}
    warnings: list[str] = list(ini.repeated)
    readers: list[tuple[str, Callable[[IniFile, str, dict[str, Any], list[str]], None]]] = [
        (r"application", _application),
        (r"tests", _tests),
        (r"source\d+", _source),
        (r"streammux", _streammux),
        (r"primary-gie", _primary),
        (r"secondary-gie\d+", _secondary),
        (r"tracker", _tracker),
        (r"osd", _osd),
        (r"tiled-display", _tiler),
        (r"sink\d+", _sink),
        (r"message-broker", _message_broker),
        (r"message-converter", _message_converter),
        (r"nvds-analytics", _nvds_analytics),
    ]
    groups = sorted(ini.groups(), key=lambda g: (g.startswith("message-converter"), g))  # converters apply last
    for group in groups:
        reader = next((fn for pattern, fn in readers if re.fullmatch(pattern, group)), None)
        if reader is None:
            hint = _GROUP_HINTS.get(group.rstrip("0123456789"), "group not supported by the importer")
            warnings.append(f"[{group}]: ignored ({hint})")
            continue
        reader(ini, group, data, warnings)
        warnings.extend(ini.unused(group, _reason))
    if data.get("_live"):
        for source in data["sources"]:
            source.setdefault("live", True)
    if data.pop("_loop", False):
        for source in data["sources"]:
            if source.get("type") not in ("rtsp", "v4l2"):
                source["loop"] = True
    data.pop("_live", None)
    if "analytics" in data:
        warnings.extend(drop_missing_streams(data["analytics"], len(data["sources"])))
    return ImportResult(data=data, warnings=warnings, path=ini.path)


def load_deepstream_config(path: str | Path, overrides: Iterable[str] = ()) -> tuple[PipelineConfig, list[str]]:
    """Import ``path``, apply ``a.b=c`` overrides, validate: ``(config, warnings)``."""
    result = import_deepstream(path)
    overrides = list(overrides)
    if not result.data["sources"] and not any(o.startswith(("sources", "control_port")) for o in overrides):
        raise ConfigError("no enabled source: the file has no [sourceN] group with enable=1", where=str(path),
                          fix="add e.g. [source0] with enable=1, type=3 and uri=file:///path/video.mp4")  # fmt: skip
    source = f"{path} (as imported)"  # errors name lanner keys; the module docstring maps them to INI keys
    return load_config(PipelineConfig, data=result.data, overrides=overrides, source=source), result.warnings


# -- groups --------------------------------------------------------------------------------------------
def _application(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if ini.num(group, "enable-perf-measurement", int, 0):
        data["telemetry"] = {"interval_s": ini.num(group, "perf-measurement-interval-sec", float, 5.0)}


def _tests(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    data["_loop"] = bool(ini.num(group, "file-loop", int, 0))


def _source(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        warnings.append(f"[{group}]: skipped (enable=0)")
        ini.used.update((group, k) for k in ini.parser.options(group))
        return
    kind = ini.num(group, "type", int, 2)
    if kind not in SOURCE_TYPES:
        warnings.append(f"[{group}] type={kind}: ignored (CSI/audio/IPC sources have no lanner equivalent)")
        ini.used.update((group, k) for k in ini.parser.options(group))
        return
    if kind == 1:
        uri = f"/dev/video{ini.num(group, 'camera-v4l2-dev-node', int, 0)}"
    else:
        raw = ini.get(group, "uri")
        if not raw:
            raise ConfigError(
                f"[{group}] has no uri", where=str(ini.path), fix="add uri=file:///path/video.mp4 or rtsp://..."
            )
        uri = raw if raw.startswith(("rtsp://", "rtsps://", "http")) else str(ini.file(group, "uri"))
    source: dict[str, Any] = {"uri": uri, "type": SOURCE_TYPES[kind], "name": group}
    if ini.get(group, "rtsp-reconnect-interval-sec") is not None:
        source["reconnect_interval_s"] = ini.num(group, "rtsp-reconnect-interval-sec", float)
    if ini.get(group, "rtsp-reconnect-attempts") is not None:
        source["reconnect_attempts"] = ini.num(group, "rtsp-reconnect-attempts", int)
    protocol = ini.num(group, "select-rtp-protocol", int, None)
    if protocol is not None:
        source["rtsp_transport"] = "tcp" if protocol == 4 else "udp"
    count = ini.num(group, "num-sources", int, 1) if kind == 3 else 1
    if not 1 <= count <= MAX_NUM_SOURCES:
        raise ConfigError(f"[{group}] num-sources={count} is out of range", where=str(ini.path),
                          fix=f"give 1 to {MAX_NUM_SOURCES} copies of the uri")  # fmt: skip
    for i in range(count):
        data["sources"].append(dict(source, name=group if count == 1 else f"{group}_{i}"))


def _streammux(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    mux: dict[str, Any] = {}
    if ini.get(group, "batch-size") is not None:
        mux["batch_size"] = ini.num(group, "batch-size", int)
    if ini.get(group, "batched-push-timeout") is not None:  # microseconds in DeepStream
        mux["batched_push_timeout_ms"] = max(ini.num(group, "batched-push-timeout", float), 0.0) / 1000.0
    data["mux"] = mux
    data["_live"] = bool(ini.num(group, "live-source", int, 0))
    for key in ("width", "height"):
        if ini.get(group, key) is not None:
            warnings.append(f"[{group}] {key}: not used (lanner letterboxes each frame straight to the detector's "
                            "input size, read from the model)")  # fmt: skip
    if ini.get(group, "enable-padding") is not None:
        warnings.append(f"[{group}] enable-padding: not needed (lanner always letterboxes, keeping the aspect ratio)")


def _nvinfer(ini: IniFile, group: str) -> tuple[IniFile | None, str]:
    """The nvinfer config of a gie group and the name of its ``[property]`` group."""
    path = ini.file(group, "config-file")
    if path is None:
        return None, "property"
    return IniFile(path), "property"


def _model_path(group: str, infer: IniFile | None, ini: IniFile) -> str:
    candidates = [(ini, group, "model-engine-file")]
    if infer is not None:
        candidates = [(infer, "property", "onnx-file"), (infer, "property", "model-engine-file"), *candidates]
    for source, grp, key in candidates:
        path = source.file(grp, key) if source.parser.has_section(grp) else None
        if path is not None and (path.suffix in (".onnx", ".plan", ".lplan")):
            return str(path)
    fix = "set onnx-file=model.onnx in the nvinfer config (TensorRT .engine files are not portable)"
    raise ConfigError(f"[{group}] has no ONNX model", where=str(infer.path if infer else ini.path), fix=fix)


def _labels(infer: IniFile | None) -> list[str] | None:
    path = infer.file("property", "labelfile-path") if infer and infer.parser.has_section("property") else None
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"label file not found: {path}", where=str(infer.path), fix="fix labelfile-path")
    text = path.read_text().strip()
    return [s.strip() for s in re.split(r"[;\n]", text) if s.strip()]


def _infer_warnings(infer: IniFile | None) -> list[str]:
    if infer is None:
        return []
    out = []
    for grp in infer.groups():
        for line in infer.unused(grp, _reason):
            out.append(f"{infer.path.name} {line}")
    return out


def _reason(key: str) -> str | None:
    """Why a key that was not used does not matter, when there is a better reason than 'no equivalent'."""
    if key in _GPU_KEYS:
        return GPU_ONLY
    if key == "batch-size":
        return "not needed (the mux batch is the inference batch)"
    if key in ("gie-unique-id", "operate-on-gie-id"):
        return "not needed (secondaries always work on the primary detector's objects)"
    if key.startswith("bbox-border-color") or key.startswith("bbox-bg-color"):
        return "ignored (the OSD colours boxes by class or track: osd.color_by)"
    return _nvinfer_reason(key)


def _nvinfer_reason(key: str) -> str | None:
    if key in ("net-scale-factor", "offsets", "model-color-format", "infer-dims", "maintain-aspect-ratio",
               "symmetric-padding", "uff-input-blob-name", "output-blob-names"):  # fmt: skip
        return "not needed (preprocessing and outputs are read from the model's metadata)"
    if key == "model-engine-file":
        return "not used (the onnx-file is; TensorRT engines are tied to one GPU and TensorRT version)"
    if key in ("network-mode", "int8-calib-file", "workspace-size"):
        return "ignored (precision comes from the model file: use an INT8 lanner plan for INT8)"
    if key in ("parse-bbox-func-name", "custom-lib-path", "cluster-mode", "network-type", "output-tensor-meta"):
        return "not needed (box decoding is read from the model's metadata)"
    return None


def _primary(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        warnings.append(f"[{group}]: skipped (enable=0)")
        return
    infer, prop = _nvinfer(ini, group)
    primary: dict[str, Any] = {"model": _model_path(group, infer, ini)}
    interval = ini.num(group, "interval", int, None)
    if infer is not None and infer.parser.has_section(prop):
        interval = infer.num(prop, "interval", int, interval)
        _thresholds(infer, primary)
    if interval is not None:
        primary["interval"] = interval
    if infer is not None and infer.parser.has_section(prop) and infer.get(prop, "infer-dims") is not None:
        primary["input_size"] = _infer_dims(infer, prop)
    labels = _labels(infer)
    if labels:
        primary["labels"] = labels
    data["primary"] = primary
    warnings.extend(_infer_warnings(infer))


def _infer_dims(infer: IniFile, group: str) -> list[int]:
    """nvinfer's ``infer-dims=C;H;W`` (the network input of a dynamic-shape model) -> ``input_size [H, W]``."""
    raw = infer.get(group, "infer-dims") or ""
    parts = [v.strip() for v in raw.split(";") if v.strip()]
    if len(parts) != 3 or not all(v.isdigit() for v in parts) or int(parts[0]) != 3:
        fix = "write the network input as channels;height;width, e.g. infer-dims=3;448;800"
        raise ConfigError(f"[{group}] infer-dims={raw!r} is not 3;H;W", where=str(infer.path), fix=fix)
    return [int(parts[1]), int(parts[2])]


def _thresholds(infer: IniFile, primary: dict[str, Any]) -> None:
    prop = "property"
    for grp in ("class-attrs-all", prop):
        if infer.parser.has_section(grp):
            for key, name, kind in _THRESHOLD_KEYS:
                value = infer.num(grp, key, kind, None)
                if value is not None and name not in primary:
                    primary[name] = value
    drop = infer.get(prop, "filter-out-class-ids")
    classes = infer.num(prop, "num-detected-classes", int, None)
    if drop and classes:
        removed = {int(v) for v in drop.split(";") if v.strip()}
        primary["classes"] = [c for c in range(classes) if c not in removed]


def _secondary(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        warnings.append(f"[{group}]: skipped (enable=0)")
        return
    infer, prop = _nvinfer(ini, group)
    entry: dict[str, Any] = {"model": _model_path(group, infer, ini), "name": group.replace("-", "_")}
    sources = [(ini, group)] + ([(infer, prop)] if infer is not None and infer.parser.has_section(prop) else [])
    for src, grp in sources:
        ids = src.get(grp, "operate-on-class-ids")
        if ids:
            entry["operate_on_class_ids"] = [int(v) for v in ids.split(";") if v.strip()]
        for key, name, kind in _SECONDARY_KEYS:
            value = src.num(grp, key, kind, None)
            if value is not None:
                entry[name] = value
    labels = _labels(infer)
    if labels:
        entry["labels"] = labels
    data.setdefault("secondary", []).append(entry)
    warnings.extend(_infer_warnings(infer))


def _tracker(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        return
    ll_config = ini.get(group, "ll-config-file") or ""
    name = Path(ll_config).name.lower()
    kind = "iou" if "iou" in name else "sort" if "sort" in name and "deepsort" not in name else "bytetrack"
    if kind == "bytetrack" and ll_config:
        warnings.append(f"[{group}] ll-config-file: {Path(ll_config).name} (NvDCF/NvDeepSORT) has no lanner "
                        "equivalent; using ByteTrack")  # fmt: skip
    data["tracker"] = {"type": kind}
    show = ini.num(group, "display-tracking-id", int, None)
    if show is not None:
        data.setdefault("osd", {})["show_track_ids"] = bool(show)
    for key in ("tracker-width", "tracker-height", "ll-lib-file"):
        if ini.get(group, key) is not None:
            warnings.append(f"[{group}] {key}: not needed (lanner trackers use the boxes, not scaled pixels)")


def _osd(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        data.pop("osd", None)
        return
    osd = data.setdefault("osd", {})
    if ini.get(group, "border-width") is not None:
        osd["border_width"] = max(1, ini.num(group, "border-width", int))
    if ini.get(group, "text-size") is not None:  # points; OpenCV scale 1.0 is about 25 pt on a 720-line frame
        osd["text_scale"] = round(ini.num(group, "text-size", float) / 25.0, 3)
    if ini.get(group, "display-text") is not None:
        osd["show_labels"] = bool(ini.num(group, "display-text", int))


def _tiler(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        return
    tiler = {}
    for key in ("rows", "columns", "width", "height"):
        if ini.get(group, key) is not None:
            tiler[key] = ini.num(group, key, int)
    data["tiler"] = tiler


def _sink(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        ini.used.update((group, k) for k in ini.parser.options(group))
        warnings.append(f"[{group}]: skipped (enable=0)")
        return
    kind = ini.num(group, "type", int, 1)
    if kind == SINK_FILE:
        data["sinks"].append(_file_sink(ini, group, warnings))
    elif kind == SINK_BROKER:
        data["sinks"].append(_broker_sink(ini, group, "msg-broker-proto-lib", "msg-broker-conn-str", "topic"))
        payload = ini.num(group, "msg-conv-payload-type", int, None)
        if payload is not None:
            data["sinks"][-1]["payload"] = "minimal" if payload == 1 else "full"
        interval = ini.num(group, "msg-conv-frame-interval", int, None)
        if interval is not None:
            data["sinks"][-1]["frame_interval"] = interval
    elif kind == 1:
        warnings.append(f"[{group}] type=1 (fakesink): no sink needed")
    else:
        what = {2: "EGL display", 4: "RTSP streaming", 5: "overlay"}.get(kind, f"type {kind}")
        warnings.append(f"[{group}] type={kind} ({what}): ignored (no lanner equivalent; use a file or broker sink)")
        ini.used.update((group, k) for k in ini.parser.options(group))


def _file_sink(ini: IniFile, group: str, warnings: list[str]) -> dict[str, Any]:
    out = ini.file(group, "output-file")
    sink: dict[str, Any] = {"type": "video", "name": group, "path": str(out or f"{group}.mp4")}
    codec = ini.num(group, "codec", int, 1)
    if codec != 1:
        warnings.append(f"[{group}] codec={codec}: lanner writes H.264 (codec=1)")
    bitrate = ini.num(group, "bitrate", int, None)
    if bitrate:
        sink["bitrate_kbps"] = max(1, bitrate // 1000)
    if ini.num(group, "container", int, 1) != 1:
        warnings.append(f"[{group}] container: lanner writes MP4")
    if ini.num(group, "enc-type", int, 0) == 0 and ini.get(group, "enc-type") is not None:
        warnings.append(f"[{group}] enc-type=0 (hardware): using libx264; set codec: h264_nvenc on a GPU machine")
    return sink


def _broker_sink(ini: IniFile, group: str, lib_key: str, conn_key: str, topic_key: str) -> dict[str, Any]:
    lib = (ini.get(group, lib_key) or "").lower()
    proto = next((p for p in PROTOCOLS if p in Path(lib).name), None)
    if proto is None:
        fix = "use libnvds_kafka_proto.so, libnvds_mqtt_proto.so or libnvds_redis_proto.so"
        raise ConfigError(
            f"[{group}] {lib_key}={lib!r}: lanner has kafka, mqtt and redis sinks", where=str(ini.path), fix=fix
        )
    sink: dict[str, Any] = {"type": proto, "name": group}
    conn = [p.strip() for p in (ini.get(group, conn_key) or "").split(";") if p.strip()]
    if conn:  # "host;port" (kafka also "host;port;topic")
        port = int(conn[1]) if len(conn) > 1 and conn[1].isdigit() else None
        if proto == "kafka":
            sink["bootstrap_servers"] = f"{conn[0]}:{port or 9092}"
        else:
            sink["host"] = conn[0]
            if port:
                sink["port"] = port
        if len(conn) > 2:
            sink["topic"] = conn[2]
    topic = ini.get(group, topic_key)
    if topic:
        sink["topic"] = topic
    return sink


def _message_broker(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    if not ini.enabled(group):
        return
    data["sinks"].append(_broker_sink(ini, group, "proto-lib", "conn-str", "topic"))


def _nvds_analytics(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    """``[nvds-analytics]``: ``enable`` and the nvdsanalytics ``config-file`` (lines, ROIs, overcrowding)."""
    from lanner.pipeline.deepstream_analytics import import_nvdsanalytics

    if not ini.enabled(group):
        warnings.append(f"[{group}]: skipped (enable=0)")
        return
    path = ini.file(group, "config-file")
    if path is None:
        raise ConfigError(f"[{group}] has no config-file", where=str(ini.path),
                          fix="add config-file=config_nvdsanalytics.txt or set enable=0")  # fmt: skip
    if not path.is_file():  # analytics are optional: the rest of the pipeline still imports
        warnings.append(f"[{group}] config-file: {path} not found; analytics not imported")
        return
    analytics, notes = import_nvdsanalytics(path)
    warnings.extend(notes)
    if analytics:
        data["analytics"] = analytics


def _message_converter(ini: IniFile, group: str, data: dict[str, Any], warnings: list[str]) -> None:
    payload = ini.num(group, "msg-conv-payload-type", int, None)
    ini.get(group, "enable")
    for sink in data["sinks"]:
        if sink["type"] in PROTOCOLS and payload is not None:
            sink.setdefault("payload", "minimal" if payload == 1 else "full")
