"""The model registry and the metadata (``ModelInfo``) that travels with a model's weights.

Every model family registers its variants with ``@register_model``: a variant is a short function that
passes data to the family's class (timm's pattern). ``create_model`` builds one by name, names its
classes and optionally loads pretrained weights (torchvision ``.pth``, ``.safetensors`` or a lanner
checkpoint; see ``lanner.models.checkpoint``).

``ModelInfo`` holds what a consumer needs to run the model without Python model code: task, input
size and layout, mean/std, colour order, class names and the postprocess kind. It is saved in
checkpoints (JSON) and in exported ONNX files (``metadata_props``).

Example:
    >>> from lanner.models import create_model
    >>> model = create_model("resnet18", num_classes=3, class_names=["cat", "dog", "bird"])
    >>> model.info.postprocess, model.info.class_names
    ('softmax', ('cat', 'dog', 'bird'))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lanner.core.errors import ConfigError
from lanner.core.registry import Registry

#: ImageNet normalisation in pixel units (0-255), RGB order: ``x = (pixel - mean) / std``.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

_MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


@dataclass(frozen=True)
class ModelInfo:
    """Metadata a consumer needs to feed a model and read its outputs.

    ``mean``/``std`` are in pixel units (0-255) and in ``color_order``: the network input is
    ``(pixel - mean) / std`` laid out as ``input_layout``. ``input_size`` is ``(height, width)``;
    ``resize`` says how an image is brought to it (``letterbox``: scale to fit keeping the aspect
    ratio, image at the top-left, right/bottom filled with ``pad_value``, as the YOLOX reference).
    ``head`` lists the state-dict prefixes of the layers whose shape depends on the class count;
    they are re-initialised when pretrained weights were trained for another number of classes.

    Example:
        >>> info = ModelInfo(name="m", task="classification", num_classes=2, head=("fc",))
        >>> info.class_names
        ('0', '1')
    """

    name: str
    task: str  # "classification" | "detection"
    num_classes: int
    head: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    input_size: tuple[int, int] = (224, 224)
    input_layout: str = "NCHW"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"
    resize: str = "stretch"  # "stretch" | "letterbox" (keep aspect, image top-left, pad right/bottom)
    pad_value: float = 114.0  # letterbox fill, in pixel units
    postprocess: str = "softmax"  # "softmax" (outputs logits) | "yolox_decoded" (boxes xyxy + scores)
    strides: tuple[int, ...] = ()
    outputs: tuple[str, ...] = ("logits",)
    pretrained: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}", where=self.name)
        names = tuple(str(n) for n in self.class_names) or tuple(str(i) for i in range(self.num_classes))
        if len(names) != self.num_classes:
            raise ConfigError(
                f"{len(names)} class names given for {self.num_classes} classes",
                where=self.name,
                fix="pass one name per class, or leave class_names out",
            )
        object.__setattr__(self, "class_names", names)

    def replace(self, **changes: Any) -> ModelInfo:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of ``to_dict``; unknown keys are rejected so a typo cannot pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ModelInfo keys {unknown}", fix=f"known keys: {sorted(known)}")
        tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        if "input_size" in tuples:
            tuples["input_size"] = tuple(int(v) for v in tuples["input_size"])
        return cls(**{**data, **tuples})


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model constructor under its function name; a duplicate name raises ``ValueError``.

    Example:
        >>> @register_model
        ... def resnet18_doc_example(**kwargs):
        ...     return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)  # doctest: +SKIP
    """
    return _MODELS.register(fn.__name__)(fn)


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return _MODELS.names()


def create_model(
    name: str,
    num_classes: int | None = None,
    *,
    pretrained: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model; the result carries ``model.info`` (a ``ModelInfo``).

    ``num_classes`` defaults to ``len(class_names)`` or else the family's default (1000 for ImageNet
    classifiers, 80 for COCO detectors). ``pretrained`` is a path to a torchvision-style ``.pth``, a
    ``.safetensors`` file or a lanner checkpoint; if its class count differs, the head is
    re-initialised and a warning says so. Other ``kwargs`` go to the family's constructor and are
    recorded in ``info.extra["create_kwargs"]`` (so ``model_from_checkpoint`` rebuilds the same model).
    An unknown name raises ``ConfigError`` with a suggestion.

    Example:
        >>> model = create_model("yolox_s", num_classes=2, class_names=("person", "car"))
        >>> model.info.task
        'detection'
    """
    constructor = _MODELS.get(name)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if num_classes is not None:
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}", where=name)
        kwargs["num_classes"] = num_classes
    model = constructor(**kwargs)
    options = {k: v for k, v in kwargs.items() if k != "num_classes"}
    extra = {**model.info.extra, "create_kwargs": options} if options else model.info.extra
    model.info = model.info.replace(name=name, class_names=tuple(class_names or ()), extra=extra)
    if pretrained is not None:
        from lanner.models.checkpoint import load_pretrained  # checkpoint imports this module

        load_pretrained(model, pretrained)
        model.info = model.info.replace(pretrained=str(pretrained))
    return model
