"""``lanner dataset``: convert, validate, inspect, split, augment and synthesize datasets.

Each command parses its arguments, calls ``lanner.data`` and prints the result; the work is in the library.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from lanner.cli.app import err, info, next_steps, out, progress_bar
from lanner.core.errors import DataError, UsageError
from lanner.core.folders import filling, writing
from lanner.data.dataset import ClassificationDataset, DetectionDataset, ignored_boxes
from lanner.data.formats.layout import IMAGE_SUFFIXES
from lanner.data.io import (
    ALL_FORMATS,
    DETECTION_FORMATS,
    check_output_folder,
    detect_format,
    read_any,
    read_dataset,
    write_dataset,
)
from lanner.data.split import write_split
from lanner.data.stats import Stats, check_plot_path, compute_stats, plot_stats
from lanner.data.validate import validate

_path_in = click.Path(exists=True, path_type=Path)
_path_out = click.Path(path_type=Path)
_images_option = click.option(
    "--images",
    type=click.Choice(["link", "copy"]),
    default="link",
    show_default=True,
    help="Hard-link the images (falls back to a copy across filesystems) or copy them.",
)

# the order of the work (README's tour), not the alphabet: make or bring a set, count, look, convert, check, split
ORDER = ("synth", "stats", "preview", "convert", "validate", "split", "augment")

PREVIEW_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# why a target format drops ignore regions (COCO keeps iscrowd boxes: they have a class; KITTI keeps all)
DROPPED_IGNORE = {
    "coco": "COCO has no form for KITTI's class-less DontCare regions",
    "yolo": "YOLO cannot mark a box as ignored (written as a box it would be trained on)",
}


class _WorkOrderGroup(click.Group):
    """Lists the subcommands in ``ORDER`` (others after them, by name), as ``lanner --help`` lists its own."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(ORDER)), name))


@click.group(cls=_WorkOrderGroup, short_help="Make, inspect, convert, check, split and augment datasets.")
def dataset() -> None:
    """Make, inspect, convert, check, split and augment datasets (KITTI, COCO, YOLO, ImageFolder).

    \b
    Examples:
      lanner dataset synth --out data/cars --images 200
      lanner dataset validate data/cars
      lanner dataset split data/cars --out data/cars_split --val 0.2
    """


@dataset.command("convert", short_help="Convert a detection set between KITTI, COCO and YOLO.")
@click.argument("src", type=_path_in)
@click.option("--to", "to_fmt", type=click.Choice(DETECTION_FORMATS), required=True, help="Format to write.")
@click.option("--from", "from_fmt", type=click.Choice(DETECTION_FORMATS), help="Format of SRC (default: detected).")
@click.option("--out", "dst", type=_path_out, help="Output folder (default: <SRC>_<format> next to SRC).")
@_images_option
def convert_cmd(src: Path, to_fmt: str, from_fmt: str | None, dst: Path | None, images: str) -> None:
    """Convert the detection dataset SRC to another format (labels rewritten, images hard-linked).

    Prints what it wrote: images and how they were placed, boxes per class, and ignore regions (KITTI
    DontCare, COCO iscrowd), with a warning for those the new format cannot hold.

    \b
    Examples:
      lanner dataset convert data/cars --to coco
      lanner dataset convert data/cars_coco --to yolo --out data/cars_yolo --images copy
    """
    src_root = _root(src)
    dst = dst or src_root.with_name(f"{src_root.name}_{to_fmt}")
    check_output_folder(src, dst)  # before reading: a big dataset takes a while
    fmt = from_fmt or detect_format(src)
    with progress_bar("reading", None) as advance:
        ds = read_dataset(src, fmt, progress=advance)
    with filling(dst, "lanner dataset convert"), progress_bar(f"writing {to_fmt}", len(ds)) as advance:
        write_dataset(ds, dst, to_fmt, images=images, progress=advance)  # type: ignore[arg-type]
    summary, dropped = _convert_summary(ds, to_fmt, _placement(ds, dst, images))
    out.print(f"wrote {dst} ({to_fmt}) from {src} ({fmt}): {summary}", markup=False, highlight=False)
    if dropped:  # shown even with --quiet: data the user may count on is gone
        reason = f"{DROPPED_IGNORE[to_fmt]}; --to kitti keeps them as DontCare lines"
        err.print(f"warning: {dropped} ignore regions not written: {reason}", markup=False, highlight=False)
    next_steps(f"lanner dataset validate {_quote(dst)}")


def _convert_summary(ds: DetectionDataset, to_fmt: str, placement: str) -> tuple[str, int]:
    """``"3 images hard-linked into d/images, 5 boxes (car 3, person 2), 1 ignore regions"`` and how many
    ignore regions ``to_fmt`` cannot hold (KITTI writes them all as DontCare, COCO its iscrowd boxes only)."""
    objects = np.zeros(len(ds.classes), np.int64)
    crowd = regions = 0
    for sample in ds.samples:
        ignored = ignored_boxes(sample.boxes)
        objects += np.bincount(sample.boxes.class_id[~ignored], minlength=len(ds.classes))[: len(ds.classes)]
        crowd, regions = crowd + int(ignored.sum()), regions + len(sample.ignore_regions)
    per_class = ", ".join(f"{name} {n}" for name, n in zip(ds.classes, objects.tolist(), strict=True))
    summary = f"{len(ds)} images {placement}, {int(objects.sum())} boxes" + (f" ({per_class})" if per_class else "")
    kept = {"kitti": crowd + regions, "coco": crowd}.get(to_fmt, 0)
    return summary + (f", {kept} ignore regions" if kept else ""), crowd + regions - kept


def _placement(ds: DetectionDataset, dst: Path, images: str) -> str:
    """How the images reached ``dst/images``: ``--images link`` falls back to a copy across filesystems."""
    where = f"into {dst / 'images'}"
    if images == "copy":
        return f"copied {where}"
    # the place write_dataset puts each image: <out>/images/<image_id><suffix>
    placed = [dst / "images" / f"{s.image_id}{s.image_path.suffix}" for s in ds.samples]
    linked = sum(1 for s, p in zip(ds.samples, placed, strict=True) if p.exists() and os.path.samefile(s.image_path, p))
    if linked == len(placed):
        return f"hard-linked {where}"
    if linked == 0:
        return f"copied {where} (no hard links across filesystems)"
    return f"{where} ({linked} hard-linked, {len(placed) - linked} copied)"


@dataset.command("validate", short_help="List every problem in a dataset, with file and line.")
@click.argument("path", type=_path_in)
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@click.option("--classes", help="Comma-separated class list to check labels against, e.g. car,person.")
@click.option("--json", "json_file", type=_path_out, help="Also write the full report as JSON to this file.")
@click.option("--no-decode", is_flag=True, help="Do not decode every image (faster; headers are still read).")
def validate_cmd(path: Path, fmt: str | None, classes: str | None, json_file: Path | None, no_decode: bool) -> None:
    """List every problem in the dataset at PATH; exit 1 if there are errors (warnings are fine).

    Each problem prints as `file:line: kind: message`, then a summary line.

    \b
    Examples:
      lanner dataset validate data/cars
      lanner dataset validate data/cars --classes car,bicycle,person,road_sign --json report.json
      lanner dataset validate data/cars --no-decode
    """
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    given = f" --format {fmt}" if fmt else ""  # the split reads PATH the same way
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
    split_dir = _quote(_root(path).with_name(_root(path).name + "_split"))
    next_steps(f"lanner dataset split {_quote(path)} --out {split_dir} --val 0.2{given}")


@dataset.command("stats", short_help="Count images, boxes, classes and sizes; plot them.")
@click.argument("path", type=_path_in)
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@click.option("--json", "json_file", type=_path_out, help="Write the numbers as JSON to this file.")
@click.option("--plot", "plot_file", type=_path_out, help="Save class counts and box sizes as a PNG.")
def stats_cmd(path: Path, fmt: str | None, json_file: Path | None, plot_file: Path | None) -> None:
    """Print images, boxes, class counts, boxes per image, image and box sizes of the dataset at PATH.

    \b
    Examples:
      lanner dataset stats data/cars
      lanner dataset stats data/cars --plot cars_stats.png --json cars_stats.json
    """
    if plot_file:
        check_plot_path(plot_file)  # before reading: a big dataset takes a while
    with progress_bar("reading", None) as advance:
        ds = read_any(path, fmt, progress=advance)
    if isinstance(ds, ClassificationDataset):  # its sizes come from reading every image's header
        with progress_bar("measuring images", len(ds)) as advance:
            stats = compute_stats(ds, progress=advance)
    else:
        stats = compute_stats(ds)
    for table in _stats_tables(stats):
        out.print(table)
    if json_file:
        _write_text(json_file, stats.to_json())
        info(f"stats written to {json_file}")
    if plot_file:
        plot_stats(stats, plot_file)
        info(f"plot written to {plot_file}")


@dataset.command("preview", short_help="Draw sample images with their boxes into one picture, to look at.")
@click.argument("path", type=_path_in)
@click.option("-o", "--out", "out_file", type=_path_out, help="Image to write (default: <PATH name>_preview.jpg).")
@click.option("--count", type=int, default=16, show_default=True, help="Images in the sheet (a seeded random pick).")
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed shows other images.")
@click.option("--classes", help="Only images that show one of these classes (comma-separated).")
@click.option("--width", type=click.IntRange(min=64), default=480, show_default=True, help="Width of each tile, px.")
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
def preview_cmd(
    path: Path, out_file: Path | None, count: int, seed: int, classes: str | None, width: int, fmt: str | None
) -> None:
    """Draw COUNT images of the set at PATH with their boxes, class names and ignore regions (or their class).

    Check a set from another tool before training on it: are the boxes on the objects, the classes right?

    \b
    Examples:
      lanner dataset preview data/cars
      lanner dataset preview data/cars --classes road_sign --count 9 -o signs.jpg
    """
    import cv2

    from lanner.data.preview import draw_preview, pick_samples

    target = out_file or Path(f"{_root(path).name}_preview.jpg")
    if target.suffix.lower() not in PREVIEW_SUFFIXES:  # before reading: a big dataset takes a while
        raise UsageError(
            f"cannot write a preview as {target.suffix or 'a file without a suffix'}",
            where=str(target),
            fix=f"use one of {', '.join(PREVIEW_SUFFIXES)}",
        )
    with progress_bar("reading", None) as advance:
        ds = read_any(path, fmt, progress=advance)
    wanted = [name.strip() for name in classes.split(",") if name.strip()] if classes else []
    samples = pick_samples(ds, count, seed, wanted)
    grid = draw_preview(ds, samples, tile_width=width)
    with writing(target, "preview"):
        if not cv2.imwrite(str(target), grid):
            raise OSError(0, "OpenCV could not write the file")
    out.print(f"wrote {target} ({len(samples)} of {len(ds.samples)} images)", markup=False)


@dataset.command("split", short_help="Split a dataset at random into train/val(/test) sets.")
@click.argument("path", type=_path_in)
@click.option("--out", "out_dir", type=_path_out, required=True, help="Folder for the train/val(/test) datasets.")
@click.option("--val", type=click.FloatRange(0, 1), default=0.2, show_default=True, help="Fraction for val.")
@click.option("--test", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Fraction for test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same split.")
@click.option("--to", "to_fmt", type=click.Choice(DETECTION_FORMATS), help="Write the parts in this format.")
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Format of PATH (default: detected).")
@_images_option
def split_cmd(
    path: Path, out_dir: Path, val: float, test: float, seed: int, to_fmt: str | None, fmt: str | None, images: str
) -> None:
    """Split the dataset at PATH at random into OUT/train, OUT/val (and OUT/test).

    ImageFolder sets are split per class, so every part keeps the class balance.

    \b
    Examples:
      lanner dataset split data/cars --out data/cars_split --val 0.2
      lanner dataset split data/cars --out data/cars_parts --val 0.2 --test 0.1 --seed 1 --to coco
    """
    check_output_folder(path, out_dir)  # before the folder is marked: the input's own folder is refused untouched
    with filling(out_dir, "lanner dataset split"), progress_bar("splitting", None) as advance:
        parts = write_split(
            path, out_dir, val=val, test=test, seed=seed, to_fmt=to_fmt, from_fmt=fmt, images=images, progress=advance
        )  # type: ignore[arg-type]
    counts = {}
    for name, part in parts.items():  # image files only: an empty part still holds labels/ and classes.txt
        counts[name] = sum(1 for p in part.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        out.print(f"{name}: {counts[name]} images -> {part}", markup=False, highlight=False)
    val = f" --set dataset.val={_quote(parts['val'])}" if counts.get("val") else ""
    next_steps(f"lanner train -e spec.yaml -r results/ --set dataset.train={_quote(parts['train'])}{val}")


@dataset.command("augment", short_help="Write augmented copies of a dataset, boxes transformed.")
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

    \b
    Examples:
      lanner dataset augment data/cars --out data/cars_aug --copies 3 --set mosaic=0.5
      lanner dataset augment data/cars --out data/cars_flip --set hflip=1.0 --keep-originals --format coco
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
    next_steps(f"lanner train -e spec.yaml -r results/ --set dataset.train={_quote(dst)}")


def _root(path: Path) -> Path:
    """The dataset's folder (a COCO .json file's parent), named: new folders are named after it."""
    root = path.parent if path.is_file() else path
    return root if root.name else root.resolve()  # "." has no name to suffix


def _quote(path: Path) -> str:
    """A path as a shell word, so a ``next:`` line can be pasted as is (spaces, quotes)."""
    return shlex.quote(str(path))


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
