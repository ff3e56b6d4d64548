"""Labelled still images of the synthetic traffic world, written as a KITTI, COCO or YOLO dataset.

Image ``i`` depends only on ``(seed, i)``: its camera/street comes from scene ``i // images_per_scene``
(several shots per fixed camera, as in a real traffic-camera set, and the backdrop is painted once for
them) and its actors from ``i`` itself. So any subset can be re-rendered alone, a run is byte-for-byte
deterministic, and ``workers`` only changes the speed.

Example:
    >>> ds = generate_images(SynthConfig(images=8, width=320, height=192), Path("/tmp/synth"), fmt="kitti")
    >>> len(ds), ds.classes
    (8, ['car', 'bicycle', 'person', 'road_sign'])
"""

from __future__ import annotations

import functools
import math
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import DetectionDataset, Sample
from lanner.data.synth.render import random_actors, render
from lanner.data.synth.world import CLASSES, TIMES_OF_DAY, Actor, ActorBox, Camera, Scene, random_scene


class SynthConfig(Section):
    """What ``generate_images`` renders: how many images, their size, the seed and the mix of conditions."""

    images: int = Field(1000, ge=1)
    width: int = Field(640, ge=64, le=1920)
    height: int = Field(384, ge=64, le=1080)
    seed: int = Field(0, ge=0)
    time_of_day: dict[str, float] = Field(default_factory=lambda: {"day": 0.6, "dusk": 0.2, "night": 0.2})
    min_visible_px: int = Field(12, ge=1)
    image_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = Field(92, ge=10, le=100)
    images_per_scene: int = Field(4, ge=1)  # shots per camera; 1 = a new street for every image
    actors_min: int = Field(3, ge=0)
    actors_max: int = Field(25, ge=0)
    workers: int = Field(1, ge=1)

    @field_validator("time_of_day")
    @classmethod
    def _check_mix(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = set(mix) - set(TIMES_OF_DAY)
        if unknown:
            raise ValueError(f"unknown time of day {sorted(unknown)}; use {', '.join(TIMES_OF_DAY)}")
        if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("time-of-day fractions must be >= 0 and not all 0")
        return mix


def scene_for(config: SynthConfig, index: int) -> Scene:
    """The scene (camera, street, conditions, backdrop) that image ``index`` is shot in."""
    return _scene(
        config.seed,
        index // config.images_per_scene,
        config.width,
        config.height,
        tuple(sorted(config.time_of_day.items())),
    )


@functools.lru_cache(maxsize=2)
def _scene(seed: int, scene_index: int, width: int, height: int, mix: tuple[tuple[str, float], ...]) -> Scene:
    names = [k for k, _ in mix]
    p = np.array([v for _, v in mix], np.float64)
    time_of_day = names[int(np.random.default_rng([seed, scene_index, 1]).choice(len(names), p=p / p.sum()))]
    return random_scene(np.random.default_rng([seed, scene_index, 0]), width, height, time_of_day)


def render_sample(config: SynthConfig, index: int) -> tuple[np.ndarray, list[ActorBox], Scene, list[Actor]]:
    """Render image ``index`` of the run: pixels, labels, and the scene and actors behind them."""
    scene = scene_for(config, index)
    rng = np.random.default_rng([config.seed, index, 2])
    actors = random_actors(scene, rng, config.actors_min, max(config.actors_min, config.actors_max))
    image, boxes = render(scene, actors, rng, config.min_visible_px)
    return image, boxes, scene, actors


def to_detections(boxes: list[ActorBox], actors: list[Actor], camera: Camera) -> Detections:
    """Labels as ``Detections`` with KITTI's extra columns (camera frame: x right, y down, z forward, metres).

    ``location`` is the bottom centre of the object in the (pitched) camera frame; ``rotation_y`` and
    ``alpha`` measure the heading about the vertical, as for KITTI's level camera.
    """
    by_id = {a.actor_id: a for a in actors}
    chosen = [by_id[b.actor_id] for b in boxes]
    n = len(boxes)
    loc = camera.to_camera(np.array([[a.x_m, 0.0, a.z_m] for a in chosen]).reshape(n, 3)).astype(np.float32)
    ry = np.array([kitti_rotation_y(a.heading_rad, camera.yaw_rad) for a in chosen], np.float32)
    alpha = (ry - np.arctan2(loc[:, 0], loc[:, 2]) + np.pi) % (2 * np.pi) - np.pi
    return Detections.from_arrays(
        xyxy=np.array([b.xyxy for b in boxes], np.float32).reshape(n, 4),
        class_id=np.array([CLASSES.index(b.cls) for b in boxes], np.int64),
        data={
            "truncated": np.array([b.truncated for b in boxes], np.float32),
            "occluded": np.array([b.occluded for b in boxes], np.int64),
            "alpha": alpha.astype(np.float32),
            "dimensions": np.array([[a.height_m, a.width_m, a.length_m] for a in chosen], np.float32).reshape(n, 3),
            "location": loc,
            "rotation_y": ry,
            "visible_fraction": np.array([b.visible_fraction for b in boxes], np.float32),
            "actor_id": np.array([b.actor_id for b in boxes], np.int64),
            "body_type": np.array([b.body_type or "" for b in boxes], dtype=object),
            "color": np.array([b.color or "" for b in boxes], dtype=object),
        },
    )


def kitti_rotation_y(heading_rad: float, yaw_rad: float) -> float:
    """KITTI ``rotation_y`` of a heading (0 = along +z, pi/2 = along +x) seen by a camera turned ``yaw_rad``.

    KITTI measures it about the camera's y (down) axis from the camera's x axis: driving away is -pi/2.
    """
    dx, dz = math.sin(heading_rad), math.cos(heading_rad)
    x_cam = math.cos(yaw_rad) * dx - math.sin(yaw_rad) * dz
    z_cam = math.sin(yaw_rad) * dx + math.cos(yaw_rad) * dz
    return -math.atan2(z_cam, x_cam)


def _write_one(args: tuple[SynthConfig, int, Path]) -> tuple[int, Detections]:
    config, index, images_dir = args
    image, boxes, scene, actors = render_sample(config, index)
    path = images_dir / f"{index:06d}.{config.image_format}"
    params = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality] if config.image_format == "jpg" else []
    ok, buf = cv2.imencode(f".{config.image_format}", image, params)
    if not ok:
        raise OSError(f"could not encode image {index}")
    path.write_bytes(buf.tobytes())
    return index, to_detections(boxes, actors, scene.camera)


def _jobs(config: SynthConfig, images_dir: Path) -> Iterator[tuple[SynthConfig, int, Path]]:
    return ((config, i, images_dir) for i in range(config.images))


def generate_images(
    config: SynthConfig, out_dir: str | Path, fmt: str = "kitti", progress: ProgressFn | None = None
) -> DetectionDataset:
    """Render ``config.images`` images into ``out_dir/images/`` and write their labels in ``fmt``.

    Returns the dataset as written. ``config.workers`` > 1 renders in a process pool (each worker takes
    whole scenes, so a backdrop is still painted once per scene).
    """
    from lanner.data.io import write_dataset  # the format writers are only needed here

    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, Detections] = {}
    if config.workers == 1:
        for index, dets in map(_write_one, _jobs(config, images_dir)):
            results[index] = dets
            advance(progress)
    else:
        chunk = config.images_per_scene
        with multiprocessing.get_context("spawn").Pool(config.workers) as pool:
            for index, dets in pool.imap_unordered(_write_one, _jobs(config, images_dir), chunksize=chunk):
                results[index] = dets
                advance(progress)
    samples = []
    for i in range(config.images):
        path = (images_dir / f"{i:06d}.{config.image_format}").resolve()
        samples.append(Sample(f"{i:06d}", path, config.width, config.height, results[i]))
    ds = DetectionDataset(root=out_dir.resolve(), classes=list(CLASSES), samples=samples)
    write_dataset(ds, out_dir, fmt, images="keep")
    return ds
