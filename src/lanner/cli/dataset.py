"""``lanner dataset``: convert, validate, inspect, split, augment and synthesize datasets.

Each command parses its arguments, calls ``lanner.data`` and prints the result; the work is in the library.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from lanner.cli.app import err, info, out, progress_bar
from lanner.core.errors import DataError
from lanner.core.folders import writing
from lanner.data.formats.layout import IMAGE_SUFFIXES
from lanner.data.io import ALL_FORMATS, DETECTION_FORMATS, convert, detect_format, read_any
from lanner.data.split import write_split
from lanner.data.stats import Stats, check_plot_path, compute_stats, plot_stats
from lanner.data.validate import validate

_path_in = click.Path(exists=True, path_type=Path)
_path_out = click.Path(path_type=Path)


@click.group()
def dataset() -> None:
    """Work with datasets in KITTI, COCO, YOLO and ImageFolder formats."""


@dataset.command("convert")
@click.argument("src", type=_path_in)
@click.option("--to", "to_fmt", type=click.Choice(DETECTION_FORMATS), required=True, help="Format to write.")
@click.option("--from", "from_fmt", type=click.Choice(DETECTION_FORMATS), help="Format of SRC (default: detected).")
@click.option("--out", "dst", type=_path_out, help="Output folder (default: <SRC>_<format> next to SRC).")
@click.option(
    "--images",
    type=click.Choice(["link", "copy"]),
    default="link",
    show_default=True,
    help="Hard-link the images (falls back to a copy across filesystems) or copy them.",
)
def convert_cmd(src: Path, to_fmt: str, from_fmt: str | None, dst: Path | None, images: str) -> None:
    """Convert the detection dataset SRC to another format (labels rewritten, images linked).

    Example: lanner dataset convert data/cars --to coco
    """
    src_root = src.parent if src.is_file() else src
    src_root = src_root if src_root.name else src_root.resolve()  # "." has no name to suffix
    dst = dst or src_root.with_name(f"{src_root.name}_{to_fmt}")
    with progress_bar(f"converting to {to_fmt}", None) as advance:
        convert(src, dst, to_fmt, from_fmt, images=images, progress=advance)  # type: ignore[arg-type]
    out.print(f"wrote {dst} ({to_fmt})", markup=False)


@dataset.command("validate")
@click.argument("path", type=_path_in)
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@click.option("--classes", help="Comma-separated class list to check labels against, e.g. car,person.")
@click.option("--json", "json_file", type=_path_out, help="Also write the full report as JSON to this file.")
@click.option("--no-decode", is_flag=True, help="Do not decode every image (faster; headers are still read).")
def validate_cmd(path: Path, fmt: str | None, classes: str | None, json_file: Path | None, no_decode: bool) -> None:
    """List every problem in the dataset at PATH; exit 1 if there are errors (warnings are fine).

    Each problem prints as `file:line: kind: message`, then a summary line.
    """
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    fmt = fmt or detect_format(path)
    with progress_bar("validating", None) as advance:
        report = validate(path, fmt, class_list, decode=not no_decode, progress=advance)
    for problem in report.problems:
        where = _display(problem.file) if problem.file else "<dataset>"
        where = f"{where}:{problem.line}" if problem.line is not None else where
        severity = "" if problem.severity == "error" else "warning: "
        out.print(f"{where}: {severity}{problem.kind}: {problem.message}", markup=False, highlight=False)
    if json_file:
        _write_text(json_file, report.to_json())
        info(f"report written to {json_file}")
    out.print(report.summary(), markup=False, highlight=False)
    if not report.ok:  # a LannerError is how a command exits 1 through lanner.cli.main
        raise DataError(f"{len(report.errors)} errors", where=str(path), fix="fix the problems listed above")


@dataset.command("stats")
@click.argument("path", type=_path_in)
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@click.option("--json", "json_file", type=_path_out, help="Write the numbers as JSON to this file.")
@click.option("--plot", "plot_file", type=_path_out, help="Save class counts and box sizes as a PNG.")
def stats_cmd(path: Path, fmt: str | None, json_file: Path | None, plot_file: Path | None) -> None:
    """Print images, boxes, class counts, boxes per image, image and box sizes of the dataset at PATH."""
    if plot_file:
        check_plot_path(plot_file)  # before reading: a big dataset takes a while
    with progress_bar("reading", None) as advance:
        ds = read_any(path, fmt, progress=advance)
    stats = compute_stats(ds)
    for table in _stats_tables(stats):
        out.print(table)
    if json_file:
        _write_text(json_file, stats.to_json())
        info(f"stats written to {json_file}")
    if plot_file:
        plot_stats(stats, plot_file)
        info(f"plot written to {plot_file}")


@dataset.command("split")
@click.argument("path", type=_path_in)
@click.option("--out", "out_dir", type=_path_out, required=True, help="Folder for the train/val(/test) datasets.")
@click.option("--val", type=click.FloatRange(0, 1), default=0.2, show_default=True, help="Fraction for val.")
@click.option("--test", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Fraction for test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same split.")
@click.option("--to", "to_fmt", type=click.Choice(DETECTION_FORMATS), help="Write the parts in this format.")
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@click.option("--images", type=click.Choice(["link", "copy"]), default="link", show_default=True)
def split_cmd(
    path: Path, out_dir: Path, val: float, test: float, seed: int, to_fmt: str | None, fmt: str | None, images: str
) -> None:
    """Split the dataset at PATH at random into OUT/train, OUT/val (and OUT/test)."""
    with progress_bar("splitting", None) as advance:
        parts = write_split(
            path, out_dir, val=val, test=test, seed=seed, to_fmt=to_fmt, from_fmt=fmt, images=images, progress=advance
        )  # type: ignore[arg-type]
    for name, part in parts.items():  # image files only: an empty part still holds labels/ and classes.txt
        n = sum(1 for p in part.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        out.print(f"{name}: {n} images -> {part}", markup=False, highlight=False)


@dataset.command("augment")
@click.argument("src", type=_path_in)
@click.option("--out", "dst", type=_path_out, required=True, help="Output folder (must be empty or new).")
@click.option("--spec", "spec_file", type=_path_in, help="YAML of augmentation keys, or a training spec.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key, e.g. --set hflip=1.0.")
@click.option("--copies", type=click.IntRange(min=1), default=1, show_default=True, help="Augmented copies per image.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same images.")
@click.option("--format", "to_fmt", type=click.Choice(ALL_FORMATS), help="Format to write (default: SRC's).")
@click.option("--from", "from_fmt", type=click.Choice(ALL_FORMATS), help="Format of SRC (default: detected).")
@click.option("--keep-originals", is_flag=True, help="Also write the original images and labels.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images with a warning instead of failing.")
@click.option("--force", is_flag=True, help="Replace a non-empty output folder (its contents are deleted).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Augmenting processes.")
def augment_cmd(
    src: Path,
    dst: Path,
    spec_file: Path | None,
    overrides: tuple[str, ...],
    copies: int,
    seed: int,
    to_fmt: str | None,
    from_fmt: str | None,
    keep_originals: bool,
    skip_bad: bool,
    force: bool,
    workers: int,
) -> None:
    """Write COPIES augmented copies of every image of SRC (boxes transformed alongside) into OUT.

    The keys are the training spec's augmentation section (hflip, scale, translate, color, hue,
    saturation, value, blur, noise, mosaic, min_visibility).

    Example: lanner dataset augment data/cars --out data/cars_aug --copies 3 --set mosaic=0.5
    """
    from lanner.train.offline_augment import AugmentOptions, load_augmentation, prepare_augment

    section = load_augmentation(spec_file, overrides)
    options = AugmentOptions(copies, seed, to_fmt, keep_originals, skip_bad, force, workers)
    job = prepare_augment(src, dst, section, options, src_format=from_fmt)  # reads SRC: input errors come first
    with progress_bar("augmenting", job.total) as advance:
        report = job.run(advance)
    for warning in report.warnings:  # shown even with --quiet: they name the images the summary counts as skipped
        err.print(f"warning: {warning}", markup=False, highlight=False)
    out.print(report.summary(), markup=False, highlight=False)


def _write_text(path: Path, text: str) -> None:
    """Write a report file (its folder created); a path that cannot be written is one ``DataError`` line."""
    with writing(path, "report"):
        path.write_text(text, encoding="utf-8")


def _stats_tables(stats: Stats) -> list[Table]:
    """Rich tables: overview, classes, box sizes, image sizes, and KITTI histograms when present."""
    ignore = ("ignore regions",) if stats.ignore_regions else ()  # COCO crowd boxes, KITTI DontCare
    overview = Table("images", "boxes", "boxes/image min", "mean", "max", *ignore, title="dataset")
    bpi = stats.boxes_per_image
    row = [str(stats.images), str(stats.boxes), str(bpi["min"]), f"{bpi['mean']:.2f}", str(bpi["max"])]
    overview.add_row(*row, *(str(stats.ignore_regions) for _ in ignore))
    if not stats.boxes and not stats.box_sizes:  # an ImageFolder set: classes count images
        images = stats.images
        return [
            _count_table("class (images)", stats.classes, images),
            _count_table("image size", stats.image_sizes, images),
        ]
    tables = [overview, _count_table("class", stats.classes, stats.boxes)]
    tables.append(_count_table("box size (COCO)", stats.box_sizes, stats.boxes))
    tables.append(_count_table("image size", stats.image_sizes, stats.images))
    if stats.truncated is not None:
        tables.append(_count_table("truncated", stats.truncated, stats.boxes))
    if stats.occluded is not None:
        tables.append(_count_table("occluded", stats.occluded, stats.boxes))
    return tables


def _count_table(title: str, counts: dict[str, int], total: int) -> Table:
    table = Table(title, "count", "share")
    table.columns[1].justify = table.columns[2].justify = "right"
    for key, count in counts.items():
        table.add_row(str(key), str(count), f"{100 * count / total:.1f}%" if total else "-")
    return table


def _display(path: Path) -> str:
    """A path relative to the working folder when it is inside it (shorter lines), else as is."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
