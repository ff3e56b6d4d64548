"""KITTI object labels, the detection format TAO trains from.

Layout: ``<root>/images/<id>.png`` + ``<root>/labels/<id>.txt`` (or KITTI's ``image_2``/``label_2``), and
``<root>/classes.txt`` (one name a line; written, and read when present, else the sorted set of names).
One object a line, the 15 columns of the KITTI devkit (``readme.txt``)::

    type truncated occluded alpha left top right bottom height width length x y z rotation_y [score]

Example line: ``Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59``.
The extra columns travel in ``Detections.data`` (see ``lanner.data.dataset``) and are written with two
decimals as KITTI does, so KITTI -> KITTI is lossless. The optional 16th column is read into
``confidence`` and written only when some box has a score other than 1.

``DontCare`` lines (any case; KITTI's unlabelled regions, ``DontCare -1 -1 -10 ... -1000 -1000 -1000 -10``)
are ignore regions, not a class: they go to ``Sample.ignore_regions`` and never into the class list, so a
model is not trained to detect "DontCare". They are written back as ``DontCare`` lines, and so are COCO
``iscrowd`` boxes (KITTI has no per-class ignore region).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lanner.core.detections import Detections
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import DetectionDataset, Sample, ignored_boxes, kitti_defaults
from lanner.data.formats.layout import (
    BoxOrigin,
    DatasetFormat,
    Parsed,
    build_boxes,
    find_layout,
    is_number,
    is_whole,
    list_label_files,
    pair_images,
    parse_floats,
    read_text_lines,
    sized_sample,
    write_score_column,
)

COLUMNS = 15
OCCLUDED_RANGE = (-1, 3)  # the devkit's 0..3, and -1 that some tools write for DontCare objects
CLASSES_FILE = "classes.txt"
DONTCARE = "DontCare"
# The placeholders KITTI writes around a DontCare box: truncated occluded alpha | h w l x y z rotation_y.
DONTCARE_HEAD = "-1 -1 -10"
DONTCARE_TAIL = "-1 -1 -1 -1000 -1000 -1000 -10"


def is_dontcare(name: str) -> bool:
    """Whether a type column names KITTI's ignore region (``DontCare``; TAO specs write ``dontcare``)."""
    return name.lower() == DONTCARE.lower()


def sniff(root: Path) -> bool:
    """A folder of label files whose first object line has 15 or 16 columns and a name first."""
    layout = find_layout(root)
    for label in list(list_label_files(layout.labels_dir).values())[:20]:
        for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if fields:
                return len(fields) in (COLUMNS, COLUMNS + 1) and not is_number(fields[0])
    return False


def parse(root: Path, classes: Sequence[str] | None = None, progress: ProgressFn | None = None) -> Parsed:
    """Parse a KITTI folder; every problem found is recorded in the result, nothing is raised."""
    layout = find_layout(root)
    known = list(classes) if classes is not None else read_classes_file(root / CLASSES_FILE)
    if classes is None and known is not None:
        known = [name for name in known if not is_dontcare(name)]  # listed by older writers; never a class
    parsed = Parsed(root=root, classes=known or [])
    parsed.check_class_names(root / CLASSES_FILE)
    images, labels = pair_images(parsed, layout)
    rows_by_id: dict[str, list[tuple[int, list[str]]]] = {}
    for image_id in images:
        label = labels.get(image_id)
        lines = read_text_lines(parsed, label) if label else []
        rows_by_id[image_id] = [(n, ln.split()) for n, ln in enumerate(lines, start=1) if ln.strip()]
    if known is None:
        all_fields = [f for rows in rows_by_id.values() for _, f in rows]
        names = {f[0] for f in all_fields if len(f) in (COLUMNS, COLUMNS + 1) and not is_dontcare(f[0])}
        parsed.classes = sorted(names)
    index = {name: i for i, name in enumerate(parsed.classes)}
    for image_id, path in images.items():
        sample = sized_sample(parsed, image_id, path)
        advance(progress)
        if sample is not None:
            _fill_sample(parsed, sample, rows_by_id[image_id], index, labels.get(image_id))
    return parsed


def _fill_sample(
    parsed: Parsed, sample: Sample, lines: list[tuple[int, list[str]]], index: dict[str, int], label: Path | None
) -> None:
    """Parse one label file's lines into ``sample`` (boxes and DontCare regions) and add it to ``parsed``."""
    rows, origins, regions = [], [], []
    for line_no, fields in lines:
        row = _parse_row(parsed, fields, index, label, line_no)  # type: ignore[arg-type]
        if row is not None and row.get("dontcare"):
            regions.append(row["xyxy"])
        elif row is not None:
            rows.append(row)
            origins.append(BoxOrigin(file=label, line=line_no))  # type: ignore[arg-type]
    sample.boxes = build_boxes(rows, with_kitti=True)
    sample.ignore_regions = np.asarray(regions, np.float32).reshape(-1, 4)
    parsed.samples.append(sample)
    parsed.origins[sample.image_id] = origins


def _parse_row(parsed: Parsed, fields: list[str], index: dict[str, int], file: Path, line: int) -> dict | None:
    if len(fields) not in (COLUMNS, COLUMNS + 1):
        parsed.add("malformed", f"expected 15 KITTI columns (16 with score), got {len(fields)}", file, line)
        return None
    values, bad = parse_floats(fields[1:])
    if bad is not None:
        parsed.add("malformed", f"value {bad!r} is not a finite number (only the type column is text)", file, line)
        return None
    if not is_whole(values[1], *OCCLUDED_RANGE):
        message = f"occluded {fields[2]!r} must be a whole number in {OCCLUDED_RANGE[0]}..{OCCLUDED_RANGE[1]}"
        parsed.add("malformed", f"{message} (0 fully visible .. 3 unknown, -1 DontCare)", file, line)
        return None
    if is_dontcare(fields[0]):
        return {"dontcare": True, "xyxy": values[3:7]}
    if fields[0] not in index:
        parsed.add("unknown_class", f"class {fields[0]!r} is not in the class list {list(index)}", file, line)
        return None
    row = {
        "class_id": index[fields[0]],
        "truncated": values[0],
        "occluded": int(values[1]),
        "alpha": values[2],
        "xyxy": values[3:7],
        "dimensions": values[7:10],
        "location": values[10:13],
        "rotation_y": values[13],
    }
    if len(values) == COLUMNS:
        row["confidence"] = values[14]
    return row


def write(ds: DetectionDataset, root: Path, progress: ProgressFn | None = None) -> None:
    """Write ``labels/<id>.txt`` and ``classes.txt`` (images are already in place)."""
    labels_dir = root / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    names = [kitti_name(c) for c in ds.classes]
    (root / CLASSES_FILE).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    with_score = write_score_column(ds)
    for sample in ds.samples:
        path = labels_dir / f"{sample.image_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = format_lines(sample.boxes, names, with_score) + dontcare_lines(sample, with_score)
        path.write_text("".join(f"{line}\n" for line in lines), "utf-8")
        advance(progress)


def format_lines(boxes: Detections, names: list[str], with_score: bool) -> list[str]:
    """KITTI text lines for ``boxes``; columns missing from ``boxes.data`` get TAO's 2D-only defaults.

    Ignore boxes (COCO ``iscrowd``) are left out here: ``dontcare_lines`` writes them.
    """
    extras = kitti_defaults(len(boxes))
    extras.update({k: v for k, v in boxes.data.items() if k in extras})
    lines = []
    for i in np.flatnonzero(~ignored_boxes(boxes)).tolist():
        numbers = [
            float(extras["truncated"][i]),
            *boxes.xyxy[i].tolist(),
            *np.asarray(extras["dimensions"][i]).tolist(),
            *np.asarray(extras["location"][i]).tolist(),
            float(extras["rotation_y"][i]),
        ]
        text = [f"{v:.2f}" for v in numbers]
        line = (
            f"{names[int(boxes.class_id[i])]} {text[0]} {int(extras['occluded'][i])} "
            f"{float(extras['alpha'][i]):.2f} {' '.join(text[1:])}"
        )
        if with_score:
            line += f" {float(boxes.confidence[i]):.4f}"
        lines.append(line)
    return lines


def dontcare_lines(sample: Sample, with_score: bool) -> list[str]:
    """``DontCare`` lines, with KITTI's placeholders, for the sample's ignore regions and ignore boxes."""
    boxes = sample.boxes
    regions = np.concatenate([sample.ignore_regions.reshape(-1, 4), boxes.xyxy[ignored_boxes(boxes)]])
    score = " 1.0000" if with_score else ""
    return [
        f"{DONTCARE} {DONTCARE_HEAD} {' '.join(f'{v:.2f}' for v in xyxy)} {DONTCARE_TAIL}{score}"
        for xyxy in regions.tolist()
    ]


def read_classes_file(path: Path) -> list[str] | None:
    """Class names from a ``classes.txt`` (one a line, blank lines skipped), or ``None`` if absent."""
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def kitti_name(name: str) -> str:
    """KITTI's type column cannot hold spaces: ``traffic light`` -> ``traffic_light``."""
    return re.sub(r"\s+", "_", name.strip())


FORMAT = DatasetFormat(name="kitti", sniff=sniff, parse=parse, write=write)
