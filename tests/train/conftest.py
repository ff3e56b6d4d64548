"""Shared setup for the training tests: one torch thread (shared CI machine) and tiny synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

CLASSES = ["car", "bicycle", "person", "road_sign"]


def render(out: Path, images: int, seed: int, **kwargs) -> Path:
    """A small KITTI set of the synthetic street world (224x128, few actors)."""
    from lanner.data.synth import SynthConfig, generate_images

    config = SynthConfig(images=images, width=224, height=128, seed=seed, actors_min=2, actors_max=5, **kwargs)
    generate_images(config, out, fmt="kitti")
    return out


@pytest.fixture(scope="session")
def synth_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``train`` (12 images) and ``val`` (4 images) KITTI sets, rendered once per session."""
    root = tmp_path_factory.mktemp("synth")
    return {"train": render(root / "train", 12, seed=1), "val": render(root / "val", 4, seed=2)}


def tiny_spec(train: Path, val: Path | None = None, **sections) -> dict:
    """A spec dict for a seconds-long CPU run of yolox_nano at 64x96 (callers override sections)."""
    spec = {
        "dataset": {"train": str(train), **({"val": str(val)} if val else {})},
        "model": {"name": "yolox_nano", "input_size": [64, 96]},
        "augmentation": {"mosaic": 0.0},
        "training": {"epochs": 2, "batch_size": 4, "workers": 0, "device": "cpu", "max_steps_per_epoch": 2},
    }
    for name, values in sections.items():
        spec.setdefault(name, {}).update(values)
    return spec
