"""Exponential moving average of the model weights (as YOLOX's ``ModelEMA``).

``decay_t = decay * (1 - exp(-updates / 2000))`` ramps the decay up so early weights do not dominate.
Floating-point parameters and buffers are averaged; integer buffers (BN counters) are copied. The EMA
model is the one validated and exported.

Example:
    >>> from torch import nn
    >>> ema = ModelEMA(nn.Linear(2, 2))
    >>> ema.update(nn.Linear(2, 2)); ema.updates
    1
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """An averaged copy of ``model`` (``.module``); ``update(model)`` after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float = 0.9998, updates: int = 0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = decay, updates

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / 2000))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = model.state_dict()
        mine = self.module.state_dict()
        floats = [k for k, v in mine.items() if v.dtype.is_floating_point]
        ema_values = [mine[k] for k in floats]
        # one fused kernel per op for all tensors (a Python loop launches ~2 kernels per tensor)
        torch._foreach_mul_(ema_values, d)
        torch._foreach_add_(ema_values, [source[k].detach().to(mine[k].dtype) for k in floats], alpha=1 - d)
        for k, v in mine.items():
            if not v.dtype.is_floating_point:
                v.copy_(source[k])
