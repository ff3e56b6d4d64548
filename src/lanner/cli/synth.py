"""``lanner dataset synth``: render a labelled synthetic traffic dataset (images, vehicle crops or videos).

Parses arguments and calls ``lanner.data.synth``; the rendering lives there.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from lanner.cli.app import next_steps, out, progress_bar
from lanner.core.errors import UsageError
from lanner.core.folders import filling
from lanner.data.synth.images import SynthConfig, generate_images
from lanner.data.synth.world import TIMES_OF_DAY

MAX_WIDTH, MAX_HEIGHT = 1920, 1080
DEFAULT_MIX = {"day": 0.6, "dusk": 0.2, "night": 0.2}


def parse_resolution(text: str) -> tuple[int, int]:
    """``"640x384"`` -> (640, 384); at least 64x64, at most 1920x1080."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"bad --resolution {text!r}", fix="write it as WIDTHxHEIGHT, e.g. 640x384")
    width, height = int(match[1]), int(match[2])
    if width < 64 or height < 64 or width > MAX_WIDTH or height > MAX_HEIGHT:
        raise UsageError(f"--resolution {width}x{height} is out of range", fix="use 64x64 up to 1920x1080")
    return width, height


def parse_time_mix(text: str) -> dict[str, float]:
    """``"day,night"`` (default weights) or ``"day=0.7,night=0.3"`` -> fractions per time of day."""
    mix: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in TIMES_OF_DAY:
            raise UsageError(f"unknown time of day {name!r} in --time", fix=f"use {','.join(TIMES_OF_DAY)}")
        try:
            mix[name] = float(weight) if weight else DEFAULT_MIX[name]
        except ValueError:
            raise UsageError(f"bad weight {weight!r} in --time", fix="write e.g. day=0.7,night=0.3") from None
    if not mix or sum(mix.values()) <= 0 or min(mix.values()) < 0:
        raise UsageError(f"--time {text!r} selects nothing", fix="e.g. --time day,dusk,night")
    return mix


def _check_out(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("--out is a file", where=str(out_dir), fix="pass a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise UsageError("output folder is not empty", where=str(out_dir), fix="pass --force to write into it anyway")


@click.command("synth", short_help="Render a labelled synthetic traffic dataset or videos.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--images", type=click.IntRange(min=1), default=1000, show_default=True, help="Images to render.")
@click.option("--format", "fmt", type=click.Choice(["kitti", "coco", "yolo"]), default="kitti", show_default=True)
@click.option("--resolution", help="WIDTHxHEIGHT (default 640x384 for images, 1280x720 for --video).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--time",
    "time_mix",
    default="day,dusk,night",
    show_default=True,
    help="Times of day, optionally weighted: day=0.6,dusk=0.2,night=0.2.",
)
@click.option("--png", is_flag=True, help="Write PNG images instead of JPEG.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Render processes.")
@click.option("--crops", type=click.Choice(["body_type", "color"]), help="Write vehicle crops (ImageFolder) instead.")
@click.option("--per-class", type=click.IntRange(min=1), default=100, show_default=True, help="Crops per class.")
@click.option("--crop-size", type=click.IntRange(min=8, max=512), default=64, show_default=True)
@click.option("--video", is_flag=True, help="Write MP4 videos (with MOT labels) from fixed cameras instead.")
@click.option("--cameras", type=click.IntRange(min=1), default=4, show_default=True, help="Videos to write.")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option("--fps", type=click.IntRange(min=1, max=120), default=30, show_default=True)
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
def synth(
    out_dir: Path,
    images: int,
    fmt: str,
    resolution: str | None,
    seed: int,
    time_mix: str,
    png: bool,
    workers: int,
    crops: str | None,
    per_class: int,
    crop_size: int,
    video: bool,
    cameras: int,
    seconds: float,
    fps: int,
    force: bool,
) -> None:
    """Render a labelled synthetic traffic dataset from procedurally generated street cameras.

    \b
    Examples:
      lanner dataset synth --out data/synth --images 1000 --format kitti
      lanner dataset synth --out data/types --crops body_type --per-class 200
      lanner dataset synth --out data/videos --video --cameras 4 --seconds 30
    """
    if video and crops:
        raise UsageError("--video and --crops are exclusive", fix="pick one of them")
    width, height = parse_resolution(resolution or ("1280x720" if video else "640x384"))
    mix = parse_time_mix(time_mix)
    _check_out(out_dir, force)
    with filling(out_dir, "lanner dataset synth"):  # Ctrl-C leaves it marked incomplete
        start = time.perf_counter()
        if video:
            _videos(out_dir, cameras, seconds, fps, width, height, seed)
            return
        config = SynthConfig(
            images=images,
            width=width,
            height=height,
            seed=seed,
            time_of_day=mix,
            image_format="png" if png else "jpg",
            workers=workers,
        )
        if crops:
            _crops(config, out_dir, crops, per_class, crop_size, start)
            return
        with progress_bar("rendering", images) as advance:
            ds = generate_images(config, out_dir, fmt, progress=advance)
        seconds_taken = time.perf_counter() - start
        per_class_counts = ", ".join(f"{k} {v}" for k, v in ds.class_counts().items())
        out.print(
            f"wrote {len(ds)} images ({ds.box_count()} boxes: {per_class_counts}) as {fmt} to {out_dir} "
            f"in {seconds_taken:.1f} s ({len(ds) / seconds_taken:.1f} images/s)",
            markup=False,
            highlight=False,
        )
    next_steps(f"lanner dataset stats {out_dir}", f"lanner dataset split {out_dir} --out {out_dir}_split --val 0.2")


def _crops(config: SynthConfig, out_dir: Path, by: str, per_class: int, size: int, start: float) -> None:
    from lanner.data.synth.crops import generate_crops

    with progress_bar(f"cropping by {by}", None) as advance:
        counts = generate_crops(config, out_dir, by=by, per_class=per_class, size=size, progress=advance)
    total = sum(counts.values())
    seconds_taken = time.perf_counter() - start
    out.print(
        f"wrote {total} crops in {len(counts)} classes ({by}) to {out_dir} in {seconds_taken:.1f} s",
        markup=False,
        highlight=False,
    )


def _videos(out_dir: Path, cameras: int, seconds: float, fps: int, width: int, height: int, seed: int) -> None:
    from lanner.data.synth.video import VideoSynthConfig, generate_videos  # written alongside; heavy (PyAV)

    start = time.perf_counter()
    config = VideoSynthConfig(cameras=cameras, seconds=seconds, fps=fps, width=width, height=height, seed=seed)
    with progress_bar("rendering videos", None) as advance:
        paths = generate_videos(config, out_dir, progress=advance)
    seconds_taken = time.perf_counter() - start
    frames = cameras * round(seconds * fps)
    out.print(
        f"wrote {len(paths)} video(s) ({frames} frames) to {out_dir} in {seconds_taken:.1f} s "
        f"({frames / seconds_taken:.1f} frames/s)",
        markup=False,
        highlight=False,
    )
