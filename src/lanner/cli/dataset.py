"""``lanner dataset``: convert, validate, inspect, split and synthesize datasets."""

from __future__ import annotations

import click


@click.group()
def dataset() -> None:
    """Work with datasets in KITTI, COCO, YOLO and ImageFolder formats."""
