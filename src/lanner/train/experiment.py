"""Turn a spec into the objects a run needs: class list, model, datasets, loaders.

``build_experiment`` reads the training set (and the validation and replay sets), fixes the class
list (``dataset.classes`` or the training set's), builds the model (``transfer.build_model``) and the
loaders (``GlobalBatchSampler`` so DDP ranks split each global batch). Every mismatch (a detector
on an ImageFolder set, classes missing from the spec, an empty dataset) fails here with one line.

Example:
    >>> exp = build_experiment(load_spec("spec.yaml"), resolve_runtime("cpu"))  # doctest: +SKIP
    >>> exp.class_names, exp.steps_per_epoch  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lanner.core.errors import ConfigError, DataError
from lanner.data.dataset import ClassificationDataset, DetectionDataset
from lanner.train.augment import build_augment
from lanner.train.copy_paste import CopyPaste, build_bank
from lanner.train.data import (
    ClassificationTrainSet,
    DetectionTrainSet,
    GlobalBatchSampler,
    Item,
    classification_items,
    collate_detection,
    detection_items,
    input_spec,
    read_training_set,
    worker_init,
)
from lanner.train.distributed import Runtime
from lanner.train.spec import CopyPasteSection, ExperimentSpec
from lanner.train.transfer import build_model


@dataclass
class Experiment:
    """The model, class names, loaders and step count of one run."""

    model: nn.Module
    task: str  # "detection" | "classification"
    class_names: list[str]
    train_set: torch.utils.data.Dataset
    sampler: GlobalBatchSampler
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    steps_per_epoch: int


def _items(dataset: DetectionDataset | ClassificationDataset, task: str, classes: list[str], where: Path) -> list[Item]:
    if task == "detection" and isinstance(dataset, ClassificationDataset):
        raise ConfigError(
            "a detection model needs a detection dataset (KITTI/COCO/YOLO), got an ImageFolder set",
            where=str(where),
            fix="point dataset.train at a detection set, or pick a classifier in model.name",
        )
    if task == "classification" and isinstance(dataset, DetectionDataset):
        raise ConfigError(
            "a classification model needs an ImageFolder dataset (<root>/<class>/<image>)",
            where=str(where),
            fix="point dataset.train at class folders, or pick a detector in model.name",
        )
    if isinstance(dataset, ClassificationDataset):
        return classification_items(dataset, classes, str(where))
    return detection_items(dataset, classes, str(where))


def _replay_items(spec: ExperimentSpec, task: str, classes: list[str]) -> list[Item]:
    section = spec.dataset
    if section.replay is None:
        return []
    items = _items(read_training_set(section.replay, section.format), task, classes, section.replay)
    if section.replay_images:
        order = np.random.default_rng(spec.training.seed).permutation(len(items))[: section.replay_images]
        items = [items[i] for i in sorted(order.tolist())]
    return items


def _copy_paste(items: list[Item], classes: list[str], section: CopyPasteSection, where: str) -> CopyPaste | None:
    """The copy-paste bank of ``augmentation.copy_paste`` over the training items (None when ``prob`` is 0)."""
    return build_bank(
        [(item.xyxy, item.class_id) for item in items], classes, section, where, "augmentation.copy_paste"
    )


def build_experiment(spec: ExperimentSpec, runtime: Runtime) -> Experiment:
    """Datasets, model and loaders for ``spec`` on ``runtime`` (see the module docstring)."""
    section = spec.dataset
    train_ds = read_training_set(section.train, section.format)
    classes = list(section.classes) or list(train_ds.classes)
    if not classes:
        raise DataError("the training set names no classes", where=str(section.train), fix="set dataset.classes")
    torch.manual_seed(spec.training.seed)  # the same initial weights on every rank and every run
    model = build_model(spec.model, classes)
    task = model.info.task
    items = _items(train_ds, task, classes, section.train) + _replay_items(spec, task, classes)
    if task == "detection" and not any((item.class_id >= 0).any() for item in items):  # ignore regions alone
        raise DataError(
            f"the training set has no boxes in its {len(items)} images (a detector would learn nothing)",
            where=str(section.train),
            fix="check that the label files hold objects (`lanner dataset stats` counts them)",
        )
    shape = input_spec(model.info)
    seed, t = spec.training.seed, spec.training
    if task == "detection":
        aug = spec.augmentation
        augment = build_augment(aug, shape.size_hw)
        clean_from = t.epochs - aug.no_aug_epochs if aug.no_aug_epochs else None
        train_set = DetectionTrainSet(
            items,
            shape,
            augment,
            aug.mosaic,
            seed,
            cache=section.cache_images,
            augment_epochs=clean_from,
            copy_paste=_copy_paste(items, classes, aug.copy_paste, str(section.train)),
        )
        collate = collate_detection
    else:
        train_set, collate = ClassificationTrainSet(items, shape, augment=True, seed=seed), None
    sampler = GlobalBatchSampler(len(items), t.batch_size, seed, runtime.world_size, runtime.rank, with_epoch=True)
    loader_args = {
        "num_workers": t.workers,
        "pin_memory": runtime.device.type == "cuda",
        "collate_fn": collate,
        "worker_init_fn": worker_init if t.workers else None,
        "persistent_workers": t.workers > 0,
    }
    train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, **loader_args)
    val_loader = None
    if section.val is not None:
        val_items = _items(read_training_set(section.val, section.format), task, classes, section.val)
        val_set = (
            DetectionTrainSet(val_items, shape) if task == "detection" else ClassificationTrainSet(val_items, shape)
        )
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=spec.evaluation.batch_size, **loader_args)
    steps = len(sampler) if t.max_steps_per_epoch is None else min(len(sampler), t.max_steps_per_epoch)
    return Experiment(model, task, classes, train_set, sampler, train_loader, val_loader, steps)
