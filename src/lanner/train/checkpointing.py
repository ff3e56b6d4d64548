"""Training checkpoints: model + optimizer + EMA + epoch/step + RNG state in one safetensors file.

Built on ``lanner.models.save_checkpoint`` (never pickle): the model's tensors are the checkpoint's
weights (the EMA weights when EMA is on, so ``best.safetensors`` is directly usable for evaluation
and export); the raw training weights, the optimizer state (``flatten_state``) and the torch RNG
states go in the extra tensors; epoch, step, EMA update count, the NumPy/Python RNG states, metrics
and the resolved spec go in the JSON ``meta``. ``restore_training`` puts all of it back, so a resumed
run continues bit-for-bit (on the same device and library versions).

Example:
    >>> state = save_training("results/last.safetensors", model, optimizer, ema, epoch=3, step=300)  # doctest: +SKIP
    >>> epoch, step, meta = restore_training(state, model, optimizer, ema)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lanner.core.errors import ConfigError
from lanner.models import (
    flatten_state,
    load_checkpoint,
    load_extra_tensors,
    save_checkpoint,
    unflatten_state,
    unwrap_model,
)
from lanner.train.ema import ModelEMA

_MODEL, _OPTIM, _RNG = "train_model.", "optimizer.", "rng."


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG's state: torch (CPU + CUDA) as tensors, NumPy's legacy and Python's as JSON."""
    tensors = {_RNG + "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"{_RNG}cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_py = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_py],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of ``rng_state``."""
    torch.set_rng_state(tensors[_RNG + "torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith(_RNG + "cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_py = meta["python"]
    random.setstate((version, tuple(internal), gauss_py))


def save_training(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: ModelEMA | None,
    epoch: int,
    step: int,
    meta: dict[str, Any] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write everything a resume needs; ``epoch`` is the number of finished epochs."""
    model = unwrap_model(model)
    optim_tensors, optim_skeleton = flatten_state(optimizer.state_dict())
    rng_tensors, rng_meta = rng_state()
    extra = {_OPTIM + k: v for k, v in optim_tensors.items()}
    extra.update(rng_tensors)
    doc = dict(meta or {})
    doc.update(epoch=epoch, step=step, optimizer=optim_skeleton, rng=rng_meta)
    doc["scaler"] = scaler.state_dict() if scaler is not None and scaler.is_enabled() else None
    weights = model
    if ema is not None:
        extra.update({_MODEL + k: v for k, v in model.state_dict().items()})
        doc["ema_updates"] = ema.updates
        weights = ema.module
        weights.info = model.info
    return save_checkpoint(path, weights, doc, extra)


def restore_training(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: ModelEMA | None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[int, int, dict[str, Any]]:
    """Load a ``save_training`` file into the run's objects; returns ``(epoch, step, meta)``."""
    state, doc = load_checkpoint(path)
    meta = doc["meta"]
    if "optimizer" not in meta:
        raise ConfigError(
            "the checkpoint has no training state (it is a weights file)",
            where=str(path),
            fix="resume from a checkpoint that `lanner train` wrote (e.g. results/last.safetensors)",
        )
    extra = load_extra_tensors(path)
    model = unwrap_model(model)
    _check_same_model(path, doc.get("model") or {}, model)
    try:
        if ema is not None and "ema_updates" in meta:
            ema.module.load_state_dict(state)
            ema.updates = int(meta["ema_updates"])
            model.load_state_dict({k.removeprefix(_MODEL): v for k, v in extra.items() if k.startswith(_MODEL)})
        else:
            model.load_state_dict(state)
        optim = {k.removeprefix(_OPTIM): v for k, v in extra.items() if k.startswith(_OPTIM)}
        optimizer.load_state_dict(unflatten_state(meta["optimizer"], optim))
    except (RuntimeError, ValueError) as err:  # same model name but other options (width, frozen blocks, optimizer)
        raise ConfigError(
            f"the checkpoint's training state does not fit this run: {_first_mismatch(err)}",
            where=str(path),
            fix="resume with the spec of the run that wrote it (its results/spec.yaml)",
        ) from None
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    set_rng_state(extra, meta["rng"])
    return int(meta["epoch"]), int(meta["step"]), meta


def _check_same_model(path: str | Path, saved: dict[str, Any], model: nn.Module) -> None:
    """A resumed run must build the model it stopped with: same architecture, same classes in the same order."""
    info = model.info
    name, classes = saved.get("name"), list(saved.get("class_names") or [])
    if name != info.name or classes != list(info.class_names):
        raise ConfigError(
            f"cannot resume: the checkpoint is a {name!r} for classes {classes}, "
            f"the spec builds a {info.name!r} for classes {list(info.class_names)}",
            where=str(path),
            fix="resume with the spec of the run that wrote it (its results/spec.yaml), or start a new run",
        )


def _first_mismatch(err: Exception) -> str:
    """The first concrete line of torch's multi-line ``load_state_dict`` (or the optimizer's) error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = next((line for line in lines[1:] if line), lines[0] if lines else type(err).__name__)
    return detail[:300]
