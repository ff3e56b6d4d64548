"""The images an Ultralytics ``data.yaml`` names in ``train``/``val``/``test``, read the way Ultralytics reads them.

``path`` is the dataset root (relative to the ``data.yaml``; the ``data.yaml``'s folder when absent or when it
no longer exists, e.g. after the folder was moved). Each of ``train``, ``val``, ``test`` is a folder, a
``.txt`` file listing image paths (one a line, relative to the list file), or a list of those. Roboflow's
``train: ../train/images`` is found as ``train/images`` when the ``../`` path does not exist, as in
Ultralytics. An image's label file is its path with the last ``images`` folder replaced by ``labels`` and
the suffix by ``.txt``; no label file means a background image.

An image's id is its path under the root without the ``images`` folder and the suffix: both
``images/train/a.jpg`` (Ultralytics) and ``train/images/a.jpg`` (Roboflow) become ``train/a``.

Example:
    >>> label_path(Path("/d/images/train/a.jpg")).as_posix()
    '/d/labels/train/a.txt'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lanner.data.formats.layout import IMAGE_SUFFIXES, Parsed

SPLIT_KEYS = ("train", "val", "test")


def label_path(image: Path) -> Path:
    """Ultralytics' ``img2label_paths``: the last ``images`` folder becomes ``labels``, the suffix ``.txt``."""
    parts = list(image.parts)
    folders = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if folders:
        parts[folders[-1]] = "labels"
    return Path(*parts).with_suffix(".txt")


def split_images(parsed: Parsed, data_yaml: Path, data: dict) -> tuple[dict[str, Path], dict[str, Path]] | None:
    """``(images, labels)`` keyed by image id for the images ``data.yaml`` names; ``None`` when it names none.

    Problems (an entry that does not exist, an image listed twice) are recorded in ``parsed``.
    """
    entries = [(key, entry) for key in SPLIT_KEYS for entry in _entries(parsed, data_yaml, key, data.get(key))]
    if not entries:
        return None
    root = _root(parsed, data_yaml, data.get("path"))
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    where: dict[Path, str] = {}  # image -> the entry that listed it first
    sources: dict[Path, str] = {}  # one folder named twice (``train: images``, ``val: images``) is read once
    for key, entry in entries:
        sources.setdefault(_source(root, entry), f"{key}: {entry}")
    for source, named in sources.items():
        for image in _images_of(parsed, source, named, data_yaml):
            if image in where:
                message = f"{image} is listed by both {where[image]} and {source} (the splits overlap)"
                parsed.warn("duplicate_id", message, data_yaml)
                continue
            where[image] = str(source)
            image_id = _image_id(image, root, source)
            if image_id in images:
                parsed.add("duplicate_id", f"image id {image_id!r} is used by {images[image_id]} and {image}", image)
                continue
            images[image_id] = image
            if label_path(image).is_file():
                labels[image_id] = label_path(image)
            else:
                parsed.warn("image_without_label", f"no label file {label_path(image)} (a background image)", image)
    return images, labels


def _entries(parsed: Parsed, data_yaml: Path, key: str, value: Any) -> list[str]:
    """The paths one split key names: none, one string, or a list of strings."""
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v for v in values):
        parsed.add("malformed", f"{key!r} must be a path or a list of paths, got {value!r}", data_yaml)
        return []
    return list(values)


def _root(parsed: Parsed, data_yaml: Path, raw: Any) -> Path:
    """The dataset root ``path`` names, else the ``data.yaml``'s folder (with a warning if ``path`` is gone)."""
    folder = data_yaml.parent.resolve()
    if raw is None or raw == "":
        return folder
    path = Path(str(raw)) if Path(str(raw)).is_absolute() else folder / str(raw)
    if path.is_dir():
        return path.resolve()
    parsed.warn("malformed", f"path: {raw} is not a folder; reading the splits from {folder} instead", data_yaml)
    return folder


def _source(root: Path, entry: str) -> Path:
    """An entry resolved as Ultralytics does, including Roboflow's ``../train/images`` fallback."""
    path = root / entry
    if not path.exists() and entry.startswith("../"):
        path = root / entry[3:]
    return path.resolve() if path.exists() else path


def _images_of(parsed: Parsed, source: Path, named: str, data_yaml: Path) -> list[Path]:
    """The image files of one source: a folder (recursive) or a ``.txt`` list; a problem if it is neither."""
    if source.is_dir():
        return sorted(p.resolve() for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if source.is_file() and source.suffix.lower() == ".txt":
        return _listed_images(parsed, source)
    what = f"{source} not found" if not source.exists() else f"{source} is not a folder or a .txt list of images"
    parsed.add("missing_image", f"{named}: {what} (fix the path, or `path:` the paths are relative to)", data_yaml)
    return []


def _listed_images(parsed: Parsed, listing: Path) -> list[Path]:
    """Images named in a ``.txt`` list (``./images/a.jpg``: relative to the list), each checked to exist."""
    found = []
    for line_no, line in enumerate(listing.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        path = Path(name) if Path(name).is_absolute() else listing.parent / name
        if path.is_file():
            found.append(path.resolve())
        else:
            parsed.add("missing_image", f"image {name} not found", listing, line_no)
    return found


def _image_id(image: Path, root: Path, source: Path) -> str:
    """The path under ``root`` (else under its source folder) without the ``images`` folder and the suffix."""
    base = root if image.is_relative_to(root) else (source if source.is_dir() else source.parent)
    parts = list(image.relative_to(base).with_suffix("").parts) if image.is_relative_to(base) else [image.stem]
    folders = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if folders:
        del parts[folders[-1]]
    return "/".join(parts)
