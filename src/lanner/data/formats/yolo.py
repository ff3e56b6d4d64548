"""YOLO txt labels, as Ultralytics and Darknet write them.

Layout: ``<root>/images/<id>.jpg`` + ``<root>/labels/<id>.txt`` (sub-folders such as ``images/train`` are
mirrored under ``labels/``), class names in ``<root>/data.yaml`` (Ultralytics: ``names`` as a list or an
``{0: car}`` dict, or only ``nc``; the parent's ``data.yaml`` is used for a split folder such as
``export/train``, the grandparent's for Ultralytics' ``images/val``) or ``<root>/classes.txt``. When
``data.yaml`` names ``train``/``val``/``test``, exactly those images are read, as Ultralytics reads them
(``yolo_splits``: folders, ``.txt`` lists, Roboflow's ``train/images``). A missing or empty label file is a
background image. One object a line, normalized to the image size::

    class x_center y_center width height [conf]

Segmentation lines (``class x1 y1 x2 y2 x3 y3 ...``, Ultralytics' segment format) are read as their
bounding box; pose lines (``kpt_shape`` in ``data.yaml``) as their box, without the keypoints. Written with
six decimals, so a box survives YOLO within ~1e-6 of the image size (sub-pixel).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lanner.core.detections import Detections
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import DetectionDataset, Sample, ignored_boxes
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
from lanner.data.formats.yolo_splits import split_images

DATA_YAML = "data.yaml"


def sniff(root: Path) -> bool:
    """A ``data.yaml`` at the root, an Ultralytics ``images/<split>`` folder, or label lines of 5 or 6 numbers."""
    if (root / DATA_YAML).is_file() or _is_split_folder(root, _data_yaml(root)):
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
    data_yaml = _data_yaml(root)
    data = _load_yaml(parsed, data_yaml) if data_yaml is not None else None
    parsed.classes = list(classes) if classes is not None else _read_names(parsed, root, data_yaml, data)
    parsed.check_class_names(data_yaml or root / "classes.txt")
    listed = None
    if data_yaml is not None and isinstance(data, dict) and data_yaml.parent == root:
        listed = split_images(parsed, data_yaml, data)
    elif data_yaml is not None and isinstance(data, dict) and _is_split_folder(root, data_yaml):
        listed = split_images(parsed, data_yaml, {"path": data.get("path"), "train": str(root.resolve())})
    images, labels = listed if listed is not None else pair_images(parsed, find_layout(root))
    keypoints = _keypoint_columns(parsed, data_yaml, data)
    for image_id, path in images.items():
        sample = sized_sample(parsed, image_id, path)
        advance(progress)
        if sample is None:
            continue
        label = labels.get(image_id)
        rows, origins = [], []
        for line_no, line in enumerate(read_text_lines(parsed, label) if label else [], start=1):
            row = _parse_row(parsed, line.split(), sample, label, line_no, keypoints)  # type: ignore[arg-type]
            if row is not None:
                rows.append(row)
                origins.append(BoxOrigin(file=label, line=line_no))  # type: ignore[arg-type]
        sample.boxes = build_boxes(rows, with_kitti=False)
        parsed.samples.append(sample)
        parsed.origins[image_id] = origins
    return parsed


def _keypoint_columns(parsed: Parsed, data_yaml: Path | None, data: Any) -> int | None:
    """The keypoint columns after the box of an Ultralytics pose set (``kpt_shape: [K, 2 or 3]``), else ``None``."""
    shape = data.get("kpt_shape") if isinstance(data, dict) else None
    if shape is None:
        return None
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(v) is int and v > 0 for v in shape)):
        parsed.add("malformed", f"kpt_shape must be [keypoints, 2 or 3], got {shape!r}", data_yaml)
        return None
    return shape[0] * shape[1]


def _parse_row(
    parsed: Parsed, fields: list[str], sample: Sample, file: Path, line: int, keypoints: int | None = None
) -> dict | None:
    """One label line as a row for ``build_boxes``; a pose line's keypoints (after the box) are not read."""
    if not fields:
        return None
    if keypoints is not None:
        if len(fields) != 5 + keypoints:
            message = f"expected 5 + {keypoints} columns (class cx cy w h and kpt_shape's keypoints), got {len(fields)}"
            parsed.add("malformed", message, file, line)
            return None
        fields = fields[:5]
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


def _load_yaml(parsed: Parsed, data_yaml: Path) -> Any:
    """The parsed ``data.yaml`` (``{}`` when empty), or ``None`` with a problem pointing at the bad line."""
    try:
        return yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        parsed.add("malformed", f"invalid YAML: {exc}", data_yaml, mark.line + 1 if mark else None)
        return None


def _read_names(parsed: Parsed, root: Path, data_yaml: Path | None, data: Any) -> list[str]:
    """Class names from ``data.yaml`` (list or dict form) or ``classes.txt``; a problem if neither has them."""
    if data_yaml is not None:
        if data is None:
            return []  # invalid YAML, already reported
        return _names_from_yaml(parsed, data_yaml, data if isinstance(data, dict) else {})
    from_txt = read_classes_file(root / "classes.txt")
    if from_txt is None:
        parsed.add("unknown_class", f"no class names: neither {DATA_YAML} nor classes.txt under {root}")
        return []
    return from_txt


def _names_from_yaml(parsed: Parsed, data_yaml: Path, data: dict) -> list[str]:
    """``names`` as a list or ``{0: name}`` mapping; with only ``nc``, Ultralytics' ``class_0``, ``class_1``, ..."""
    names, nc = data.get("names"), data.get("nc")
    if isinstance(names, list):
        found = [str(n) for n in names]
    elif isinstance(names, dict) and set(names) == set(range(len(names))):  # a set: 10 sorts before 2 as text
        found = [str(names[i]) for i in range(len(names))]
    elif names is None and isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [f"class_{i}" for i in range(nc)]
    else:
        what = (
            "no 'names' (the class list) in it, nor 'nc'"
            if names is None
            else "'names' must be a list or a {0: name, 1: name, ...} mapping"
        )
        parsed.add("malformed", what, data_yaml)
        return []
    if nc is not None and nc != len(found):
        parsed.add("malformed", f"nc is {nc!r} but 'names' lists {len(found)} classes", data_yaml)
    return found


def _data_yaml(root: Path) -> Path | None:
    """``root/data.yaml``; else, with no ``classes.txt`` either, the one of the export ``root`` is a split of.

    That is the parent's (Roboflow's ``export/train``) or, for Ultralytics' ``images/train``, the grandparent's.
    """
    if (root / DATA_YAML).is_file():
        return root / DATA_YAML
    if (root / "classes.txt").is_file():
        return None
    parent = root.resolve().parent
    for folder in (parent, parent.parent) if parent.name == "images" else (parent,):
        if (folder / DATA_YAML).is_file():
            return root.parent / DATA_YAML if folder == parent else folder / DATA_YAML
    return None


def _is_split_folder(root: Path, data_yaml: Path | None) -> bool:
    """Ultralytics' ``images/<split>`` passed alone: images here, labels in ``labels/<split>`` of the export."""
    return data_yaml is not None and data_yaml.parent != root and root.resolve().parent.name == "images"


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
    """YOLO lines for one sample's boxes, normalized by its width and height.

    Ignore regions (COCO ``iscrowd`` boxes, KITTI ``DontCare``) are left out: YOLO has no way to mark one,
    and written as boxes they would be trained on as objects (Ultralytics' ``convert_coco`` skips them too).
    """
    boxes: Detections = sample.boxes
    scale = np.array([sample.width, sample.height], np.float64)
    xyxy = boxes.xyxy.astype(np.float64)
    centers = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / scale
    sizes = (xyxy[:, 2:] - xyxy[:, :2]) / scale
    lines = []
    for i in np.flatnonzero(~ignored_boxes(boxes)).tolist():
        values = (*centers[i], *sizes[i])
        line = f"{int(boxes.class_id[i])} " + " ".join(f"{v:.6f}" for v in values)
        if with_score:
            line += f" {float(boxes.confidence[i]):.4f}"
        lines.append(line)
    return lines


FORMAT = DatasetFormat(name="yolo", sniff=sniff, parse=parse, write=write)
