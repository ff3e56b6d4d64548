"""The experiment spec of ``lanner train``: TAO's sections (dataset, model, augmentation, training, evaluation).

Every section is a ``lanner.core.config.Section``: unknown keys are errors with a did-you-mean, values
are type-checked, and ``load_spec`` applies ``--set a.b=c`` overrides before validating. The resolved
spec is saved as ``spec.yaml`` in the results folder so a run can be repeated.

Example:
    >>> spec = ExperimentSpec.model_validate({"dataset": {"train": "data/train"}, "model": {"name": "yolox_nano"}})
    >>> spec.training.optimizer, spec.model.name
    ('sgd', 'yolox_nano')
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lanner.core.config import Section, load_config


class DatasetSection(Section):
    """Where the data is and which classes the model predicts.

    ``classes`` (model order) defaults to the training set's classes; a dataset class missing from it is
    an error. ``replay`` names a dataset of old-class images mixed into training (class extension);
    ``replay_images`` caps how many of them are used (0 = all). ``cache_images`` keeps the decoded training
    images in RAM (DataLoader workers share them), so an epoch does no JPEG decoding.
    """

    train: Path
    val: Path | None = None
    format: Literal["auto", "kitti", "coco", "yolo", "imagefolder"] = "auto"
    classes: list[str] = Field(default_factory=list)
    replay: Path | None = None
    replay_images: int = Field(0, ge=0)
    cache_images: bool = False  # decode the training images once into RAM (~3 bytes per pixel per image)


class ModelSection(Section):
    """The network and how it starts: pretrained weights, frozen blocks, class extension.

    ``input_size`` is ``[height, width]`` (multiples of 32 for detectors); empty keeps the model's default.
    ``freeze_blocks`` freezes the first N blocks of the backbone (stem first). ``extend_from`` is a
    lanner checkpoint whose classes are kept (head rows mapped by name) while new classes are added.
    """

    name: str = "yolox_s"
    pretrained: Path | None = None
    freeze_blocks: int = Field(0, ge=0)
    freeze_bn: bool = False
    backbone_lr_mult: float = Field(1.0, ge=0.0)
    extend_from: Path | None = None
    input_size: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _one_start(self) -> ModelSection:
        if self.pretrained is not None and self.extend_from is not None:
            raise ValueError("set either pretrained or extend_from, not both (extend_from already loads weights)")
        return self


class CopyPasteSection(Section):
    """Box copy-paste (``lanner.train.copy_paste``): objects of ``classes`` (empty: every class) cut from
    training images and pasted into others, up to ``max_objects`` per image with probability ``prob``.
    Use it with ``dataset.cache_images`` (each paste reads its source image)."""

    prob: float = Field(0.0, ge=0.0, le=1.0)
    classes: list[str] = Field(default_factory=list)
    max_objects: int = Field(3, ge=1, le=32)
    scale: tuple[float, float] = (0.75, 1.33)  # log-uniform resize factor of a pasted object
    max_overlap: float = Field(0.1, ge=0.0, le=1.0)  # of any existing box a paste may cover (and vice versa)
    min_size: int = Field(4, ge=1)  # pixels; narrower or shorter objects are not pasted

    @model_validator(mode="after")
    def _ordered(self) -> CopyPasteSection:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale {list(self.scale)} must be [low, high] with 0 < low <= high")
        return self


class AugmentationSection(Section):
    """Online augmentation (bbox-safe). Probabilities are per image; ranges are ``[low, high]``."""

    hflip: float = Field(0.5, ge=0.0, le=1.0)
    scale: tuple[float, float] = (0.5, 1.5)
    translate: float = Field(0.1, ge=0.0, le=0.5)
    color: float = Field(0.8, ge=0.0, le=1.0)  # probability of brightness/contrast + HSV jitter
    hue: int = Field(10, ge=0, le=180)
    saturation: int = Field(40, ge=0, le=255)
    value: int = Field(30, ge=0, le=255)
    blur: float = Field(0.0, ge=0.0, le=1.0)
    noise: float = Field(0.0, ge=0.0, le=1.0)
    mosaic: float = Field(0.0, ge=0.0, le=1.0)
    min_visibility: float = Field(0.3, ge=0.0, le=1.0)  # drop boxes cut below this visible fraction
    no_aug_epochs: int = Field(0, ge=0)  # the last N epochs train on clean images (YOLOX's final phase)
    copy_paste: CopyPasteSection = Field(default_factory=CopyPasteSection)


class TrainingSection(Section):
    """The optimisation: schedule, precision, seeds, device, checkpoints.

    ``schedule: cosine`` warms up for ``warmup_epochs`` then anneals to ``lr * min_lr_ratio``;
    ``soft_start`` is TAO's soft-start annealing (exponential ramp up over ``soft_start`` of the run,
    flat, exponential decay over the last ``annealing`` fraction). ``grad_clip`` 0 turns clipping off.
    ``resume`` is a checkpoint written by a previous run (e.g. ``results/last.safetensors``).
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)  # per process (per GPU under torchrun)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "soft_start"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0.0)
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0)
    soft_start: float = Field(0.1, ge=0.0, le=1.0)
    annealing: float = Field(0.3, ge=0.0, le=1.0)
    ema: bool = True
    ema_decay: float = Field(0.9998, gt=0.0, lt=1.0)
    amp: bool = True  # CUDA only; ignored on the CPU
    channels_last: bool = True  # CUDA only; ignored on the CPU
    grad_clip: float = Field(10.0, ge=0.0)
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP (CUDA only)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(2, ge=0)
    checkpoint_interval: int = Field(1, ge=1)
    resume: Path | None = None
    max_steps_per_epoch: int | None = Field(None, ge=1)  # cap (smoke runs, benchmarks)


class EvaluationSection(Section):
    """Validation during training: every ``interval`` epochs, at these thresholds."""

    interval: int = Field(1, ge=1)
    conf: float = Field(0.001, ge=0.0, le=1.0)
    iou: float = Field(0.65, gt=0.0, le=1.0)
    batch_size: int = Field(8, ge=1)


class ExperimentSpec(Section):
    """A whole ``lanner train`` experiment (see the module docstring)."""

    dataset: DatasetSection
    model: ModelSection = ModelSection()
    augmentation: AugmentationSection = AugmentationSection()
    training: TrainingSection = TrainingSection()
    evaluation: EvaluationSection = EvaluationSection()


def load_spec(
    path: str | Path | None = None, overrides: Iterable[str] = (), data: dict | None = None
) -> ExperimentSpec:
    """Read a spec file (or ``data``) and apply ``a.b=c`` overrides; errors name file:line and the key."""
    return load_config(ExperimentSpec, path, overrides, data=data)
