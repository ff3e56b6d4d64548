"""YOLO txt labels, as Ultralytics and Darknet write them.

Layout: ``<root>/images/<id>.jpg`` + ``<root>/labels/<id>.txt`` (sub-folders such as ``images/train`` are
mirrored under ``labels/``), class names in ``<root>/data.yaml`` (Ultralytics: ``names`` as a list or an
``{0: car}`` dict; the parent's ``data.yaml`` is used for a split folder such as ``export/train``) or
``<root>/classes.txt``. One object a line, normalized to the image size::

    class x_center y_center width height [conf]

Segmentation lines (``class x1 y1 x2 y2 x3 y3 ...``, Ultralytics' segment format) are read as their
bounding box. Written with six decimals, so a box survives YOLO within ~1e-6 of the image size (sub-pixel).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from lanner.core.detections import Detections
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import DetectionDataset, Sample
from lanner.data.formats.kitti import read_classes_file
from lanner.data.formats.layout import (
    BoxOrigin,
    DatasetFormat,
    Parsed,
    build_boxes,
    find_layout,
    is_number,
    list_label_files,
    pair_images,
    parse_floats,
    read_text_lines,
    sized_sample,
    write_score_column,
)

DATA_YAML = "data.yaml"


def sniff(root: Path) -> bool:
    """A ``data.yaml`` at the root, or label files whose first line is 5 or 6 numbers."""
    if (root / DATA_YAML).is_file():
        return True
    for label in list(list_label_files(find_layout(root).labels_dir).values())[:20]:
        for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if fields:
                shape_ok = len(fields) in (5, 6) or (len(fields) >= 7 and len(fields) % 2 == 1)
                return shape_ok and all(is_number(f) for f in fields)
    return False


def parse(root: Path, classes: Sequence[str] | None = None, progress: ProgressFn | None = None) -> Parsed:
    """Parse a YOLO folder; every problem found is recorded in the result, nothing is raised."""
    parsed = Parsed(root=root, classes=[])
    parsed.classes = list(classes) if classes is not None else _read_names(parsed, root)
    parsed.check_class_names(_data_yaml(root) or root / "classes.txt")
    layout = find_layout(root)
    images, labels = pair_images(parsed, layout)
    for image_id, path in images.items():
        sample = sized_sample(parsed, image_id, path)
        advance(progress)
        if sample is None:
            continue
        label = labels.get(image_id)
        rows, origins = [], []
        for line_no, line in enumerate(read_text_lines(parsed, label) if label else [], start=1):
            row = _parse_row(parsed, line.split(), sample, label, line_no)  # type: ignore[arg-type]
            if row is not None:
                rows.append(row)
                origins.append(BoxOrigin(file=label, line=line_no))  # type: ignore[arg-type]
        sample.boxes = build_boxes(rows, with_kitti=False)
        parsed.samples.append(sample)
        parsed.origins[image_id] = origins
    return parsed


def _parse_row(parsed: Parsed, fields: list[str], sample: Sample, file: Path, line: int) -> dict | None:
    if not fields:
        return None
    polygon = len(fields) >= 7 and len(fields) % 2 == 1  # Ultralytics segment: class x1 y1 x2 y2 x3 y3 ...
    if len(fields) not in (5, 6) and not polygon:
        message = f"expected 5 YOLO columns (class cx cy w h, 6 with conf, or a polygon), got {len(fields)}"
        parsed.add("malformed", message, file, line)
        return None
    values, bad = parse_floats(fields)
    if bad is not None:
        parsed.add("malformed", f"value {bad!r} is not a finite number", file, line)
        return None
    if not values[0].is_integer():
        parsed.add("malformed", f"class index {fields[0]!r} is not an integer", file, line)
        return None
    class_id = int(values[0])
    if not 0 <= class_id < len(parsed.classes):
        parsed.add("unknown_class", f"class index {class_id} is outside 0..{len(parsed.classes) - 1}", file, line)
        return None
    if polygon:
        xs, ys = values[1::2], values[2::2]
        return {
            "class_id": class_id,
            "xyxy": [min(xs) * sample.width, min(ys) * sample.height, max(xs) * sample.width, max(ys) * sample.height],
        }
    cx, w = values[1] * sample.width, values[3] * sample.width
    cy, h = values[2] * sample.height, values[4] * sample.height
    row = {"class_id": class_id, "xyxy": [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]}
    if len(values) == 6:
        row["confidence"] = values[5]
    return row


def _read_names(parsed: Parsed, root: Path) -> list[str]:
    """Class names from ``data.yaml`` (list or dict form) or ``classes.txt``; a problem if neither has them."""
    data_yaml = _data_yaml(root)
    if data_yaml is not None:
        try:
            data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            parsed.add("malformed", f"invalid YAML: {exc}", data_yaml, mark.line + 1 if mark else None)
            return []
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, list):
            found = [str(n) for n in names]
        elif isinstance(names, dict) and set(names) == set(range(len(names))):  # a set: 10 sorts before 2 as text
            found = [str(names[i]) for i in range(len(names))]
        else:
            what = (
                "no 'names' (the class list) in it"
                if names is None
                else "'names' must be a list or a {0: name, 1: name, ...} mapping"
            )
            parsed.add("malformed", what, data_yaml)
            return []
        nc = data.get("nc")
        if nc is not None and nc != len(found):
            parsed.add("malformed", f"nc is {nc!r} but 'names' lists {len(found)} classes", data_yaml)
        return found
    from_txt = read_classes_file(root / "classes.txt")
    if from_txt is None:
        parsed.add("unknown_class", f"no class names: neither {DATA_YAML} nor classes.txt under {root}")
        return []
    return from_txt


def _data_yaml(root: Path) -> Path | None:
    """``root/data.yaml``; else, with no ``classes.txt`` either, the parent's (a split folder of an export)."""
    if (root / DATA_YAML).is_file():
        return root / DATA_YAML
    if not (root / "classes.txt").is_file() and (root.parent / DATA_YAML).is_file():
        return root.parent / DATA_YAML
    return None


def write(ds: DetectionDataset, root: Path, progress: ProgressFn | None = None) -> None:
    """Write ``labels/<id>.txt`` and an Ultralytics ``data.yaml`` (images are already in place)."""
    data = {
        "path": str(root.resolve()),
        "train": "images",
        "val": "images",
        "names": dict(enumerate(ds.classes)),
    }
    (root / DATA_YAML).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with_score = write_score_column(ds)
    for sample in ds.samples:
        path = root / "labels" / f"{sample.image_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in format_lines(sample, with_score)), encoding="utf-8")
        advance(progress)


def format_lines(sample: Sample, with_score: bool) -> list[str]:
    """YOLO lines for one sample's boxes, normalized by its width and height."""
    boxes: Detections = sample.boxes
    scale = np.array([sample.width, sample.height], np.float64)
    xyxy = boxes.xyxy.astype(np.float64)
    centers = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / scale
    sizes = (xyxy[:, 2:] - xyxy[:, :2]) / scale
    lines = []
    for i in range(len(boxes)):
        values = (*centers[i], *sizes[i])
        line = f"{int(boxes.class_id[i])} " + " ".join(f"{v:.6f}" for v in values)
        if with_score:
            line += f" {float(boxes.confidence[i]):.4f}"
        lines.append(line)
    return lines


FORMAT = DatasetFormat(name="yolo", sniff=sniff, parse=parse, write=write)
