"""Dataset formats on disk: KITTI, COCO JSON and YOLO txt for detection, ImageFolder for classification.

``FORMATS`` maps a detection format's name to its ``DatasetFormat`` (sniff, parse, write). Adding a
format is one module with a ``FORMAT`` object and one line here.

Example:
    >>> FORMATS.get("kitti").name
    'kitti'
"""

from lanner.core.registry import Registry
from lanner.data.formats import coco, kitti, yolo
from lanner.data.formats.imagefolder import read_imagefolder, write_imagefolder
from lanner.data.formats.layout import DatasetFormat, ImageMode, Parsed, Problem

FORMATS: Registry[DatasetFormat] = Registry("dataset format")
for _format in (kitti.FORMAT, coco.FORMAT, yolo.FORMAT):
    FORMATS.register(_format.name)(_format)

__all__ = ["FORMATS", "DatasetFormat", "ImageMode", "Parsed", "Problem", "read_imagefolder", "write_imagefolder"]
