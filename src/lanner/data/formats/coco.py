"""COCO JSON detection annotations (the ``instances_*.json`` schema, boxes only).

Layout: ``<root>/annotations.json`` with images under ``<root>/images/`` (a path to any ``.json`` file works
too; ``file_name`` is resolved against ``images/`` next to it, the json's folder, ``../images``, and for
COCO's own ``annotations/instances_val2017.json`` against ``../val2017``)::

    {"images": [{"id", "file_name", "width", "height"}],
     "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, width, height], "area", "iscrowd"}],
     "categories": [{"id", "name"}]}

Category ids are written 1-based in class order; image and annotation ids are renumbered 1..N in image-id
order, so output is deterministic. ``area`` and ``iscrowd`` travel in ``Detections.data``; KITTI's extra
columns are kept in each annotation's ``"attributes"`` object so KITTI -> COCO -> KITTI keeps them.
Segmentation polygons and RLE masks are not read (``bbox`` is). ``iscrowd: 1`` boxes are ignore regions, as
in pycocotools: they also get ``data["ignore"]``, so training leaves them out and evaluation lets them absorb
detections without counting. KITTI's class-less ``DontCare`` regions (``Sample.ignore_regions``) have no COCO
form and are not written.

A folder is read from the file that CVAT, Roboflow or Label Studio put in it (``candidate_files``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import KITTI_EXTRA_COLUMNS, DetectionDataset, Sample, ignored_boxes
from lanner.data.formats.kitti import OCCLUDED_RANGE
from lanner.data.formats.layout import BoxOrigin, DatasetFormat, Parsed, build_boxes, is_number, is_whole

ANNOTATIONS_FILE = "annotations.json"
EXPORT_FILES = (ANNOTATIONS_FILE, "_annotations.coco.json", "result.json")
IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")


def candidate_files(folder: Path) -> list[Path]:
    """The COCO files an export folder holds under the names tools give them, in this order.

    ``annotations.json`` (lanner), ``_annotations.coco.json`` (Roboflow, one per split folder), ``result.json``
    (Label Studio); else every ``annotations/instances_*.json`` (COCO itself, CVAT's ``instances_default``).
    """
    for name in EXPORT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    return sorted(p for p in (folder / "annotations").glob("instances_*.json") if p.is_file())


def json_path(path: Path) -> Path:
    """The annotation file of ``path``: itself if a ``.json`` file, else the first of ``candidate_files``."""
    if path.suffix.lower() == ".json":
        return path
    return next(iter(candidate_files(path)), path / ANNOTATIONS_FILE)


def sniff(path: Path) -> bool:
    """A ``.json`` file or a folder with a COCO file under a name an exporter gives it."""
    return path.is_file() if path.suffix.lower() == ".json" else bool(candidate_files(path))


def parse(path: Path, classes: Sequence[str] | None = None, progress: ProgressFn | None = None) -> Parsed:
    """Parse a COCO annotation file; every problem found is recorded in the result, nothing is raised."""
    file = json_path(path)
    parsed = Parsed(root=file.parent, classes=[], source=path)
    several = candidate_files(path) if path.is_dir() else []
    if len(several) > 1:
        names = ", ".join(p.relative_to(path).as_posix() for p in several)
        parsed.add("malformed", f"several COCO files ({names}): pass the one to read", path)
        return parsed
    doc = _load(parsed, file)
    if doc is None:
        return parsed
    category_index = _categories(parsed, file, doc, classes)
    samples = _images(parsed, file, doc)
    rows: dict[int, list[dict]] = {key: [] for key in samples}
    origins: dict[int, list[BoxOrigin]] = {key: [] for key in samples}
    annotation_ids: set[Any] = set()
    for i, ann in enumerate(_list(parsed, file, doc, "annotations")):
        row = _annotation(parsed, file, i, ann, samples, category_index, annotation_ids)
        if row is not None:
            rows[ann["image_id"]].append(row)
            origins[ann["image_id"]].append(BoxOrigin(file=file, ref=f"annotations[{i}] (id {ann['id']})"))
    with_kitti = any("truncated" in r for rs in rows.values() for r in rs)
    crowd = sum(r["iscrowd"] for rs in rows.values() for r in rs)
    if crowd:
        message = (
            f"{crowd} annotation(s) with iscrowd 1 are ignore regions: not trained on, and in evaluation they "
            "absorb detections as in pycocotools (CVAT writes masks as iscrowd 1: set 0 to train on them)"
        )
        parsed.warn("ignore_region", message, file)
    for key, sample in samples.items():
        sample.boxes = _with_coco_data(build_boxes(rows[key], with_kitti), rows[key])
        parsed.samples.append(sample)
        parsed.origins[sample.image_id] = origins[key]
        advance(progress)
    return parsed


def _load(parsed: Parsed, file: Path) -> dict | None:
    if not file.is_file():
        parsed.add("malformed", f"no COCO annotation file {file.name} here", file)
        return None
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        parsed.add("malformed", f"invalid JSON: {exc.msg} (column {exc.colno})", file, exc.lineno)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        parsed.add("malformed", f"cannot read: {exc}", file)
        return None
    if not isinstance(doc, dict):
        parsed.add("malformed", "the top level must be an object with images, annotations, categories", file)
        return None
    return doc


def _list(parsed: Parsed, file: Path, doc: dict, key: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list):
        parsed.add("malformed", f"{key!r} must be a list", file)
        return []
    return value


def _categories(parsed: Parsed, file: Path, doc: dict, classes: Sequence[str] | None) -> dict[Any, int | str]:
    """Category id -> class index (or its name when ``classes`` lacks it).

    The category names in id order become the class list unless ``classes`` is given.
    """
    cats = {}
    for i, cat in enumerate(_list(parsed, file, doc, "categories")):
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str):
            parsed.add("malformed", f"categories[{i}] needs an 'id' (int or string) and a 'name' (string)", file)
        elif cat["id"] in cats:
            parsed.add("duplicate_id", f"categories[{i}]: category id {cat['id']} is used twice", file)
        else:
            cats[cat["id"]] = str(cat["name"])
    for group in _group_categories(doc, cats):
        message = f"category {group} {cats.pop(group)!r} only groups the others (Roboflow): not read as a class"
        parsed.warn("group_category", message, file)
    ordered = sorted(cats, key=lambda c: (not isinstance(c, int), c if isinstance(c, int) else str(c)))
    parsed.classes = list(classes) if classes is not None else [cats[c] for c in ordered]
    parsed.check_class_names(file)
    by_name = {name: i for i, name in enumerate(parsed.classes)}
    return {c: by_name.get(cats[c], cats[c]) for c in ordered}


def _group_categories(doc: dict, cats: dict[Any, str]) -> list[Any]:
    """Ids of categories that are another category's ``supercategory`` and label nothing.

    Roboflow writes its project's class group as category 0 (``{"id": 0, "name": "vehicles"}``, every real
    class having ``"supercategory": "vehicles"``); read as a class it would be one the model never sees.
    COCO's ``person`` (its own supercategory) is not such a group.
    """
    categories: list = doc["categories"] if isinstance(doc.get("categories"), list) else []
    annotations: list = doc["annotations"] if isinstance(doc.get("annotations"), list) else []
    raw = [c for c in categories if isinstance(c, dict)]
    # only ints and strings can name a category (a malformed file may hold lists or dicts there)
    parents = {
        c.get("supercategory")
        for c in raw
        if isinstance(c.get("supercategory"), str) and c.get("supercategory") != c.get("name")
    }
    used = {a.get("category_id") for a in annotations if isinstance(a, dict) and _is_id(a.get("category_id"))}
    return [cid for cid, name in cats.items() if name in parents and cid not in used]


def _images(parsed: Parsed, file: Path, doc: dict) -> dict[Any, Sample]:
    samples: dict[Any, Sample] = {}
    seen_ids: dict[str, Any] = {}
    for i, image in enumerate(_list(parsed, file, doc, "images")):
        if not isinstance(image, dict) or any(k not in image for k in IMAGE_KEYS):
            parsed.add("malformed", f"images[{i}] needs {', '.join(IMAGE_KEYS)}", file)
            continue
        if not _is_id(image["id"]) or not all(_is_size(image[k]) for k in ("width", "height")):
            parsed.add("malformed", f"images[{i}]: id must be an int or string, width and height positive ints", file)
            continue
        if image["id"] in samples:
            parsed.add("duplicate_id", f"images[{i}]: image id {image['id']} is used twice", file)
            continue
        path = resolve_image(file, str(image["file_name"]))
        if path is None:
            parsed.add("missing_image", f"images[{i}] (id {image['id']}): {image['file_name']} not found", file)
            continue
        image_id = _image_id(file.parent, str(image["file_name"]), path)
        if image_id in seen_ids:
            parsed.add("duplicate_id", f"images[{i}]: {image['file_name']} clashes with image id {image_id!r}", file)
            continue
        seen_ids[image_id] = image["id"]
        samples[image["id"]] = Sample(image_id, path, int(image["width"]), int(image["height"]))
    return samples


def resolve_image(file: Path, file_name: str) -> Path | None:
    """Where a ``file_name`` is: under ``images/``, next to the json, in ``../images``, or for the official
    layout (``annotations/instances_val2017.json``) in ``../val2017`` or ``../images/val2017``.

    A ``file_name`` that climbs out (``../photos/a.jpg``, as written with ``images="keep"``) is relative to the json.
    """
    folder, split = file.parent, file.stem.removeprefix("instances_")
    bases = (
        folder / "images",
        folder,
        folder.parent / "images",
        folder.parent / split,
        folder.parent / "images" / split,
    )
    for base in (folder,) if ".." in Path(file_name).parts else bases:
        if (base / file_name).is_file():
            return (base / file_name).resolve()
    return None


def _image_id(folder: Path, file_name: str, path: Path) -> str:
    images_dir = (folder / "images").resolve()
    if path.is_relative_to(images_dir):
        return path.relative_to(images_dir).with_suffix("").as_posix()
    return Path(file_name).with_suffix("").as_posix()


def _annotation(
    parsed: Parsed, file: Path, i: int, ann: Any, samples: dict, category_index: dict, seen: set
) -> dict | None:
    """One annotation as a row for ``build_boxes``, or ``None`` with the problem recorded."""
    where = f"annotations[{i}]"
    if not isinstance(ann, dict) or any(k not in ann for k in ANNOTATION_KEYS):
        parsed.add("malformed", f"{where} needs {', '.join(ANNOTATION_KEYS)}", file)
        return None
    if not all(_is_id(ann[k]) for k in ("id", "image_id", "category_id")):
        parsed.add("malformed", f"{where}: id, image_id and category_id must be ints or strings", file)
        return None
    where = f"{where} (id {ann['id']})"
    if ann["id"] in seen:
        parsed.add("duplicate_id", f"{where}: annotation id {ann['id']} is used twice", file)
        return None
    seen.add(ann["id"])
    bbox = ann["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(str(v)) for v in bbox):
        parsed.add("malformed", f"{where}: bbox must be 4 numbers [x, y, width, height], got {bbox!r}", file)
        return None
    if ann["image_id"] not in samples:
        parsed.add("label_without_image", f"{where}: image_id {ann['image_id']} has no usable image entry", file)
        return None
    class_id = category_index.get(ann["category_id"])
    if not isinstance(class_id, int):
        named = f" ({class_id!r})" if class_id is not None else " (not in categories)"
        message = f"{where}: category_id {ann['category_id']}{named} is not in the class list {parsed.classes}"
        parsed.add("unknown_class", message, file)
        return None
    x, y, w, h = (float(v) for v in bbox)
    optional = {"score": ann.get("score", 1.0), "area": ann.get("area", w * h), "iscrowd": ann.get("iscrowd", 0)}
    bad = [k for k, v in optional.items() if isinstance(v, bool) or not is_number(str(v))]
    if bad:
        parsed.add("malformed", f"{where}: {', '.join(bad)} must be a number", file)
        return None
    if not is_whole(float(optional["iscrowd"]), 0, 1):
        parsed.add("malformed", f"{where}: iscrowd must be 0 or 1, got {optional['iscrowd']!r}", file)
        return None
    row = {"class_id": class_id, "xyxy": [x, y, x + w, y + h]}
    row.update(confidence=float(optional["score"]), area=float(optional["area"]), iscrowd=int(optional["iscrowd"]))
    row.update(_kitti_attributes(ann.get("attributes")))
    return row


def _kitti_attributes(attributes: Any) -> dict:
    """KITTI's extra columns from an annotation's ``attributes`` when all are there and valid, else none.

    Valid: numbers float32 holds, and ``occluded`` a whole number in KITTI's range (a larger one would wrap
    around when cast to the int column). Other tools' ``attributes`` objects are ignored the same way.
    """
    if not isinstance(attributes, dict) or any(k not in attributes for k in KITTI_EXTRA_COLUMNS):
        return {}
    shapes = {"dimensions": (3,), "location": (3,)}
    values = {}
    for key in KITTI_EXTRA_COLUMNS:
        array = np.asarray(attributes[key])
        if array.shape != shapes.get(key, ()) or not np.issubdtype(array.dtype, np.number):
            return {}
        if not all(is_number(str(v)) for v in array.reshape(-1).tolist()):
            return {}
        values[key] = array
    if not is_whole(float(values["occluded"]), *OCCLUDED_RANGE):
        return {}
    return values


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_size(value: Any) -> bool:
    """A positive whole number (some exporters write ``640.0``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and float(value).is_integer()


def _with_coco_data(boxes: Detections, rows: list[dict]) -> Detections:
    boxes.data["area"] = np.asarray([r["area"] for r in rows], np.float64)
    boxes.data["iscrowd"] = np.asarray([r["iscrowd"] for r in rows], np.int64)
    boxes.data["ignore"] = boxes.data["iscrowd"].astype(bool)  # a crowd region is not an object to train on
    return boxes


def write(ds: DetectionDataset, root: Path, progress: ProgressFn | None = None) -> None:
    """Write ``annotations.json`` (images are already in place)."""
    images, annotations = [], []
    for image_number, sample in enumerate(ds.samples, start=1):
        images.append(
            {
                "id": image_number,
                "file_name": _file_name(root, sample.image_path),
                "width": int(sample.width),
                "height": int(sample.height),
            }
        )
        annotations.extend(_annotations(sample.boxes, image_number, first_id=len(annotations) + 1))
        advance(progress)
    doc = {
        "info": {"description": "written by lanner"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(ds.classes, start=1)],
    }
    (root / ANNOTATIONS_FILE).write_text(json.dumps(doc), encoding="utf-8")


def _file_name(root: Path, image_path: Path) -> str:
    images_dir = (root / "images").resolve()
    path = image_path.resolve()
    if path.is_relative_to(images_dir):
        return path.relative_to(images_dir).as_posix()
    return Path(os.path.relpath(path, root.resolve())).as_posix()


def _annotations(boxes: Detections, image_number: int, first_id: int) -> list[dict]:
    """COCO annotation objects for one image's boxes (bbox xywh with two decimals, as KITTI writes)."""
    xywh = np.concatenate([boxes.xyxy[:, :2], boxes.wh], axis=1).astype(np.float64)
    kitti = all(k in boxes.data for k in KITTI_EXTRA_COLUMNS)
    crowd = ignored_boxes(boxes)
    result = []
    for i in range(len(boxes)):
        bbox = [round(float(v), 2) for v in xywh[i]]
        area = float(boxes.data["area"][i]) if "area" in boxes.data else round(bbox[2] * bbox[3], 2)
        ann: dict[str, Any] = {
            "id": first_id + i,
            "image_id": image_number,
            "category_id": int(boxes.class_id[i]) + 1,
            "bbox": bbox,
            "area": area,
            "iscrowd": int(crowd[i]),
        }
        if boxes.confidence[i] != 1.0:
            ann["score"] = round(float(boxes.confidence[i]), 4)
        if kitti:
            ann["attributes"] = {k: _json_value(boxes.data[k][i]) for k in KITTI_EXTRA_COLUMNS}
        result.append(ann)
    return result


def _json_value(value: Any) -> Any:
    """numpy scalars and rows as plain JSON numbers, floats rounded to KITTI's two decimals."""
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        return array.tolist()
    rounded = np.round(array.astype(np.float64), 2)
    return rounded.tolist()


FORMAT = DatasetFormat(name="coco", sniff=sniff, parse=parse, write=write)
