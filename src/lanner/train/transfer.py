"""Transfer learning: build the model a spec asks for, load weights, freeze, group parameters, extend classes.

* ``build_model``: ``create_model`` with the spec's classes and input size; ``pretrained`` loads by
  name (``lanner.models.load_pretrained``: another class count re-initialises the head, another
  architecture raises with the misfit tensors); a lanner checkpoint whose class *names* differ gets a
  fresh head too. ``extend_from`` keeps an old checkpoint's classes (see ``extend_classes``).
* ``backbone_blocks``/``freeze``: the first ``freeze_blocks`` blocks of the backbone stop learning,
  ``freeze_bn`` fixes every BatchNorm (statistics and affine); ``set_train_mode`` keeps frozen BN in
  eval mode whenever the model is put in training mode.
* ``param_groups``: backbone vs rest (``backbone_lr_mult``) x decay vs no decay (biases, norms).

Example:
    >>> from lanner.train.spec import ModelSection
    >>> model = build_model(ModelSection(name="yolox_nano", input_size=(128, 160)), ["car", "person"])
    >>> model.info.class_names, model.info.input_size
    (('car', 'person'), (128, 160))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from lanner.core.errors import ConfigError
from lanner.models import create_model, load_checkpoint, load_pretrained, match_state_dict
from lanner.train.spec import ModelSection

log = logging.getLogger(__name__)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)


def build_model(section: ModelSection, class_names: Sequence[str]) -> nn.Module:
    """The spec's model with ``class_names``, pretrained or extended weights, and frozen parts applied."""
    model = create_model(section.name, len(class_names), class_names=list(class_names))
    if section.input_size is not None:
        h, w = section.input_size
        stride = max(model.info.strides or (1,))
        if h % stride or w % stride or min(h, w) < stride:
            raise ConfigError(
                f"input_size {[h, w]} must be positive multiples of {stride} for {section.name}",
                where="model.input_size",
                fix=f"use e.g. {[max(stride, round(h / stride) * stride), max(stride, round(w / stride) * stride)]}",
            )
        model.info = model.info.replace(input_size=(h, w))
    if section.pretrained is not None:
        fresh_head = {k: v.clone() for k, v in model.state_dict().items() if _in_head(k, model.info.head)}
        load_pretrained(model, section.pretrained)
        old_names = _checkpoint_classes(section.pretrained)
        if old_names is not None and list(old_names) != list(class_names):
            model.load_state_dict(fresh_head, strict=False)  # same count, other classes: a new head
            log.warning("%s: classes %s differ from %s; new head", section.pretrained, old_names, list(class_names))
        model.info = model.info.replace(pretrained=str(section.pretrained))
    if section.extend_from is not None:
        extend_classes(model, section.extend_from)
    freeze(model, section.freeze_blocks, section.freeze_bn)
    return model


def _in_head(name: str, head: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in head)


def _checkpoint_classes(path: Path) -> list[str] | None:
    if Path(path).suffix != ".safetensors":
        return None
    try:
        _, doc = load_checkpoint(path)
    except Exception:  # a plain safetensors file (no lanner header) has no class names to compare
        return None
    return list(doc["model"].get("class_names") or [])


def extend_classes(model: nn.Module, old_checkpoint: str | Path) -> list[str]:
    """Load ``old_checkpoint`` into ``model``, mapping head rows by class name; returns the new classes.

    Every tensor outside the head must fit (same architecture). Each head tensor's rows for classes
    the old model knew are copied from it; rows for new classes keep their fresh initialisation.
    Raises ``ConfigError`` when an old class is missing from the new class list.
    """
    state, doc = load_checkpoint(old_checkpoint)
    old_names = list(doc["model"]["class_names"])
    new_names = list(model.info.class_names)
    dropped = [c for c in old_names if c not in new_names]
    if dropped:
        raise ConfigError(
            f"classes {dropped} of the extended model are missing from dataset.classes {new_names}",
            where=str(old_checkpoint),
            fix="list the old classes first, then the new ones, in dataset.classes",
        )
    head = model.info.head
    report, tensors = match_state_dict(model, {k: v for k, v in state.items() if not _in_head(k, head)})
    if not report.ok:
        raise ConfigError(
            f"extend_from weights do not fit {model.info.name!r}: {report.problems()}",
            where=str(old_checkpoint),
            fix=f"set model.name to the checkpoint's model {doc['model']['name']!r}",
        )
    own = model.state_dict()
    loaded = {k: tensors[k] for k in report.loaded}
    rows = torch.tensor([new_names.index(c) for c in old_names])
    for name, value in own.items():
        if _in_head(name, head) and name in state:
            extended = value.clone()
            extended[rows] = state[name].to(value.dtype)
            loaded[name] = extended
    model.load_state_dict(loaded, strict=False)
    added = [c for c in new_names if c not in old_names]
    log.info("extended %s with %s (old classes %s kept)", old_checkpoint, added, old_names)
    model.info = model.info.replace(extra={**model.info.extra, "extended_from": str(old_checkpoint)})
    return added


def backbone_network(model: nn.Module) -> nn.Module:
    """The feature extractor: YOLOX's ``backbone.backbone``, or a classifier itself."""
    inner = getattr(getattr(model, "backbone", None), "backbone", None)
    return inner if isinstance(inner, nn.Module) else model


def backbone_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks in input order (children holding parameters; a classifier's head excluded)."""
    net = backbone_network(model)
    prefix = "backbone.backbone." if net is not model else ""
    head = getattr(getattr(model, "info", None), "head", ()) if net is model else ()
    return [
        (prefix + name, child)
        for name, child in net.named_children()
        if any(True for _ in child.parameters()) and not _in_head(name, head)
    ]


def freeze(model: nn.Module, freeze_blocks: int = 0, freeze_bn: bool = False) -> list[str]:
    """Stop gradients for the first ``freeze_blocks`` backbone blocks (and every norm if ``freeze_bn``).

    Records the frozen module names in ``model.frozen_modules`` for ``set_train_mode``; returns them.
    """
    blocks = backbone_blocks(model)
    if freeze_blocks > len(blocks):
        raise ConfigError(
            f"freeze_blocks={freeze_blocks} but {model.info.name} has {len(blocks)} backbone blocks",
            where="model.freeze_blocks",
            fix=f"use 0..{len(blocks)} ({', '.join(n for n, _ in blocks)})",
        )
    frozen = [name for name, _ in blocks[:freeze_blocks]]
    if freeze_bn:
        frozen += [name for name, m in model.named_modules() if isinstance(m, _NORMS)]
    for name in frozen:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(False)
    model.frozen_modules = tuple(frozen)
    return frozen


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, then frozen modules back to eval so their BatchNorm statistics stay fixed."""
    model.train()
    for name in getattr(model, "frozen_modules", ()):
        model.get_submodule(name).eval()
    return model


def param_groups(model: nn.Module, weight_decay: float, backbone_lr_mult: float = 1.0) -> list[dict]:
    """Optimizer groups: (backbone | rest) x (decay | no decay); each carries ``lr_mult``.

    Biases and norm weights get no weight decay (YOLOX's pg0/pg2); backbone tensors get
    ``lr_mult = backbone_lr_mult``. Frozen tensors are left out. Empty groups are dropped.
    """
    backbone = {id(p) for _, m in backbone_blocks(model) for p in m.parameters()}
    no_decay = {id(m.weight) for m in model.modules() if isinstance(m, _NORMS) and m.weight is not None}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (name.endswith(".bias") or id(p) in no_decay)
        groups.setdefault((id(p) in backbone, decay), []).append(p)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decay else 0.0,
            "lr_mult": backbone_lr_mult if in_backbone else 1.0,
            "name": f"{'backbone' if in_backbone else 'head'}_{'decay' if decay else 'no_decay'}",
        }
        for (in_backbone, decay), params in sorted(groups.items())
    ]
