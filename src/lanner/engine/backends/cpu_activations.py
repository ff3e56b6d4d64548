"""Activation functions of the ``cpu`` backend, by the names ``ops/fused.py`` uses in epilogues.

``activation_fn`` returns the out-of-place torch function (elementwise kernels), ``inplace_activation_fn``
the in-place one with the same results, for epilogues applied to a tensor the kernel has just allocated.

Example:
    >>> import torch
    >>> activation_fn(torch, "Clip", 0.0, 6.0)(torch.tensor([-1.0, 7.0])).tolist()
    [0.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Fn = Callable[..., Any]


def activation_fn(torch: Any, name: str, alpha: float, beta: float) -> Fn | None:
    """The torch form of an epilogue/elementwise activation (``ops/fused.py`` names), or None."""
    F = torch.nn.functional
    table: dict[str, Fn] = {
        "Relu": torch.relu,
        "Sigmoid": torch.sigmoid,
        "Tanh": torch.tanh,
        "Silu": F.silu,
        "HardSwish": F.hardswish,
        "LeakyRelu": lambda x: F.leaky_relu(x, alpha),
        "HardSigmoid": lambda x: torch.clamp(x * alpha + beta, 0.0, 1.0),
        "Clip": lambda x: torch.clamp(x, alpha, beta),
    }
    return table.get(name)


def inplace_activation_fn(torch: Any, name: str, alpha: float, beta: float) -> Fn | None:
    """The in-place form of ``activation_fn`` (same names and results), for epilogues on a tensor the kernel has
    just allocated: it overwrites its input and returns it, saving an output allocation and a memory pass."""
    F = torch.nn.functional
    table: dict[str, Fn] = {
        "Relu": torch.relu_,
        "Sigmoid": torch.sigmoid_,
        "Tanh": torch.tanh_,
        "Silu": lambda x: F.silu(x, inplace=True),
        "HardSwish": lambda x: F.hardswish(x, inplace=True),
        "LeakyRelu": lambda x: F.leaky_relu_(x, alpha),
        "HardSigmoid": lambda x: x.mul_(alpha).add_(beta).clamp_(0.0, 1.0),
        "Clip": lambda x: x.clamp_(alpha, beta),
    }
    return table.get(name)
