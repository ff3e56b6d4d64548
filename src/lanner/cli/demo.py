"""``lanner demo``: the synthetic multi-camera traffic scene through the shipped models, in one command.

What ``make demo`` runs, available to anyone who installed the package: render the synthetic cameras once,
run the bundled pipeline config on them (``lanner.pipeline.demo``) and print the line counts next to the
renderer's ground truth. ``--print-config`` writes the resolved YAML instead, to edit and run with
``lanner run -c``.
"""

from __future__ import annotations

from pathlib import Path

import click

from lanner.cli.app import info, next_steps, out, progress_bar
from lanner.cli.run import exit_with, run_and_report
from lanner.cli.synth import parse_resolution


@click.command("demo", short_help="Try this first: synthetic cameras -> detector -> counts.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_data"),
              show_default=True, help="Where the synthetic cameras are rendered (once) and read from.")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
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
    from lanner.pipeline.demo import cameras_ready, demo_config, ensure_cameras, short_yaml

    width, height = parse_resolution(resolution)
    wanted = {"cameras": cameras, "seconds": seconds, "width": width, "height": height, "seed": seed}
    if not cameras_ready(data_dir, wanted):
        with progress_bar("rendering demo cameras", cameras * round(seconds * 30)) as advance:  # 30 fps
            ensure_cameras(data_dir, wanted, progress=advance)
        info(f"rendered {cameras} camera(s) into {data_dir}")
    data = demo_config(data_dir, out_dir, cameras)
    config = load_pipeline_config(data=data, overrides=overrides)  # validated, with the overrides applied
    if print_config:
        out.print(short_yaml(config), end="")
        return
    summary = run_and_report(config, truth=True)
    next_steps(
        "add --print-config > my.yaml to this command for its pipeline YAML; edit it, then lanner run -c my.yaml"
    )
    exit_with(ctx, summary)
