"""``lanner demo``: the synthetic multi-camera traffic scene through the shipped models, in one command.

What ``make demo`` runs, available to anyone who installed the package: render the synthetic cameras once
(``lanner dataset synth --video``), then run the bundled pipeline config (``lanner/assets/demo.yaml``: the
starter detector, the vehicle-type classifier, ByteTrack, line counting, overlays, a mosaic, an MP4 and a
JSONL sink) and print the line counts next to the renderer's ground truth.

The bundled config names the default cameras (4 x 10 s at 1280x720, seed 0). For other cameras
(``--cameras/--seconds/--resolution/--seed``) the sources, the counting lines (each camera's
``lines.json``) and the mosaic's grid are rewritten to match; outputs go to ``--out``. ``--print-config``
writes the resolved YAML instead of running, to edit and run with ``lanner run -c``.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml

from lanner.cli.app import info, out, progress_bar
from lanner.cli.run import EXIT_ERRORS, EXIT_SIGNAL, _limit_malloc_arenas, _status, summary_table, truth_table
from lanner.cli.synth import parse_resolution
from lanner.core.errors import UsageError

DEMO_ASSET = "demo.yaml"
DEFAULT_OUT = "demo_out"


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
        spec = json.loads((data_dir / f"cam{i}" / "lines.json").read_text())
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


def ensure_data(data_dir: Path, wanted: dict[str, Any]) -> bool:
    """Render the cameras into ``data_dir`` unless it already holds exactly these; True if it rendered.

    A folder with other files and no lanner video manifest is refused rather than written into.
    """
    manifest = data_dir / "manifest.json"
    if manifest.is_file():
        try:
            have = json.loads(manifest.read_text()).get("config", {})
        except (json.JSONDecodeError, AttributeError):
            have = {}
        if all(have.get(k) == v for k, v in wanted.items()) and all(
            (data_dir / f"cam{i}.mp4").is_file() for i in range(wanted["cameras"])
        ):
            return False
    elif data_dir.is_dir() and any(data_dir.iterdir()):
        raise UsageError(f"{data_dir} is not empty and holds no demo cameras (no manifest.json)", where="--data",
                         fix="pass an empty or new folder with --data")  # fmt: skip
    from lanner.data.synth.video import VideoSynthConfig, generate_videos  # heavy (PyAV)

    config = VideoSynthConfig(**wanted)
    with progress_bar("rendering demo cameras", config.cameras * round(config.seconds * config.fps)) as advance:
        generate_videos(config, data_dir, progress=advance)
    return True


def config_yaml(config: Any) -> str:
    """A validated pipeline config as short YAML: values that differ from the defaults, plus each sink's
    ``type`` (the key that tells sink kinds apart, needed even where it equals the default)."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    for dumped, sink in zip(data.get("sinks", []), config.sinks, strict=True):
        dumped["type"] = sink.type
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


@click.command("demo")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_data"),
              show_default=True, help="Where the synthetic cameras are rendered (once) and read from.")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path(DEFAULT_OUT),
              show_default=True, help="Where tiled.mp4, events.jsonl and summary.json go.")  # fmt: skip
@click.option("--cameras", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--seconds", type=click.FloatRange(0.1, 600), default=10.0, show_default=True)
@click.option("--resolution", default="1280x720", show_default=True, help="WIDTHxHEIGHT of the cameras.")
@click.option("--seed", type=int, default=0, show_default=True, help="Scene seed of the rendered cameras.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--print-config", is_flag=True, help="Print the resolved pipeline YAML and exit (for lanner run -c).")
@click.pass_context
def demo(
    ctx: click.Context, data_dir: Path, out_dir: Path, cameras: int, seconds: float, resolution: str, seed: int,
    overrides: tuple[str, ...], print_config: bool,
) -> None:  # fmt: skip
    """Run the demo: synthetic traffic cameras -> detector -> ByteTrack -> line counts -> overlays.

    \b
    Examples:
      lanner demo                                   # 4 cameras x 10 s at 720p, outputs in demo_out/
      lanner demo --cameras 2 --seconds 5 --out /tmp/demo
      lanner demo --print-config > my_demo.yaml && lanner run -c my_demo.yaml --truth
    """
    from lanner.pipeline.config import load_pipeline_config

    width, height = parse_resolution(resolution)
    wanted = {"cameras": cameras, "seconds": seconds, "width": width, "height": height, "seed": seed}
    if ensure_data(data_dir, wanted):
        info(f"rendered {cameras} camera(s) into {data_dir}")
    data = demo_config(data_dir, out_dir, cameras)
    config = load_pipeline_config(data=data, overrides=overrides)  # validated, with the overrides applied
    if print_config:
        out.print(config_yaml(config), end="")
        return
    from lanner.pipeline.runner import Pipeline

    _limit_malloc_arenas()
    pipeline = Pipeline(config)
    with _status() as show:
        summary = pipeline.run(on_status=lambda t: show(t.status_line()))
    out.print(summary_table(summary))
    out.print(truth_table(summary, config))
    info(f"outputs: {out_dir}")
    if summary.stopped_by == "signal":
        ctx.exit(EXIT_SIGNAL)
    if summary.errors:
        ctx.exit(EXIT_ERRORS)
