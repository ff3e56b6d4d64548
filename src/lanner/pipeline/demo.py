"""The demo scene behind ``lanner demo`` / ``make demo``: synthetic cameras and the bundled pipeline config.

``ensure_cameras`` renders the synthetic traffic cameras once (``lanner.data.synth.video``) and reuses them
while their parameters match; ``demo_config`` points the bundled config (``lanner/assets/demo.yaml``: the
starter detector, the vehicle-type classifier, ByteTrack, line counting, overlays, a mosaic, an MP4 and a
JSONL sink) at them. The bundled file names the default cameras (4 x 10 s at 1280x720, seed 0); for others
the sources, the counting lines (each camera's ``lines.json``) and the mosaic's grid are rewritten, and
outputs go to the folder asked for. ``short_yaml`` writes a validated config back as short YAML.

Example:
    >>> config = bundled_config()
    >>> [s["name"] for s in config["sources"]], config["tracker"]["type"]
    (['cam0', 'cam1', 'cam2', 'cam3'], 'bytetrack')
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lanner.core.errors import ConfigError, DataError
from lanner.core.progress import ProgressFn
from lanner.pipeline.config import PipelineConfig

DEMO_ASSET = "demo.yaml"
_RENDERED = re.compile(r"cam\d+(\.mp4)?")  # what generate_videos writes before its manifest


def bundled_config() -> dict[str, Any]:
    """The packaged demo pipeline config, as a dict."""
    text = resources.files("lanner").joinpath("assets", DEMO_ASSET).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def demo_config(data_dir: Path, out_dir: Path, cameras: int) -> dict[str, Any]:
    """The bundled config pointed at ``cameras`` rendered cameras in ``data_dir``, writing into ``out_dir``.

    Sources become ``<data_dir>/cam<i>.mp4``; the counting lines are read from each camera's
    ``lines.json`` (``cam<i>_<line>``, counted once per track, as the bundled ones); sink and summary paths
    keep their file names under ``out_dir``; the mosaic gets a grid that holds every camera.
    """
    config = bundled_config()
    config["sources"] = [{"uri": str(data_dir / f"cam{i}.mp4"), "name": f"cam{i}"} for i in range(cameras)]
    lines = []
    for i in range(cameras):
        path = data_dir / f"cam{i}" / "lines.json"
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read the camera's counting lines ({type(exc).__name__})", where=str(path),
                            fix=f"delete {data_dir} to render the cameras again")  from None  # fmt: skip
        for line in spec["lines"]:
            lines.append({"name": f"cam{i}_{line['name']}", "p1": line["p1_xy"], "p2": line["p2_xy"],
                          "sources": [i], "once_per_track": True})  # fmt: skip
    config.setdefault("analytics", {})["lines"] = lines
    for sink in config.get("sinks", []):
        if "path" in sink:
            sink["path"] = str(out_dir / Path(sink["path"]).name)
    telemetry = config.get("telemetry", {})
    if telemetry.get("summary_path"):
        telemetry["summary_path"] = str(out_dir / Path(telemetry["summary_path"]).name)
    if config.get("tiler"):
        columns = math.ceil(math.sqrt(cameras))
        config["tiler"].update(columns=columns, rows=math.ceil(cameras / columns))
    return config


def cameras_ready(data_dir: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``data_dir`` holds the cameras ``wanted`` (``VideoSynthConfig`` fields), rendered by lanner.

    A folder with other files and no lanner video manifest is refused rather than written into later; one
    that holds only cameras (a render that was interrupted before its manifest) is rendered again.
    """
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        if data_dir.is_dir() and any(not _RENDERED.fullmatch(p.name) for p in data_dir.iterdir()):
            raise ConfigError(f"{data_dir} is not empty and holds no demo cameras (no manifest.json)", where="--data",
                              fix="pass an empty or new folder with --data")  # fmt: skip
        return False
    try:
        have = json.loads(manifest.read_text()).get("config", {})
    except (json.JSONDecodeError, AttributeError):
        have = {}
    return all(have.get(k) == v for k, v in wanted.items()) and all(
        (data_dir / f"cam{i}.mp4").is_file() for i in range(wanted["cameras"])
    )


def ensure_cameras(data_dir: Path, wanted: dict[str, Any], progress: ProgressFn | None = None) -> bool:
    """Render the cameras ``wanted`` into ``data_dir`` unless ``cameras_ready``; True if it rendered.
    ``progress(n)`` gets frames finished."""
    if cameras_ready(data_dir, wanted):
        return False
    from lanner.data.synth.video import VideoSynthConfig, generate_videos  # heavy (PyAV)

    generate_videos(VideoSynthConfig(**wanted), data_dir, progress=progress)
    return True


def short_yaml(config: PipelineConfig) -> str:
    """A validated pipeline config as short YAML: values that differ from the defaults, plus each sink's
    ``type`` (the key that tells sink kinds apart, needed even where it equals the default)."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    for dumped, sink in zip(data.get("sinks", []), config.sinks, strict=True):
        dumped["type"] = sink.type
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
