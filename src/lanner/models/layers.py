"""Small building blocks shared by model families.

Attribute names (``conv``, ``bn``, ``act``; ``dconv``, ``pconv``) follow the YOLOX reference code so
its released weights load by name; the ``nn.Sequential`` form follows torchvision's
``Conv2dNormActivation`` (keys ``0``, ``1``) for MobileNet.

Example:
    >>> import torch
    >>> ConvBnAct(3, 8, 3, stride=2)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10% (MobileNet rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def make_activation(name: str) -> nn.Module:
    """``silu`` | ``relu`` | ``relu6`` | ``hardswish`` | ``identity`` as a module (all export to ONNX opset 17)."""
    table = {
        "silu": nn.SiLU,
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardswish": nn.Hardswish,
        "identity": nn.Identity,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(table)}")
    return table[name]()


class ConvBnAct(nn.Module):
    """Conv2d (no bias, 'same' padding for odd kernels) → BatchNorm2d → activation."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: str = "silu"
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(nn.Module):
    """Depthwise ``kernel``x``kernel`` ConvBnAct then pointwise 1x1 ConvBnAct (YOLOX ``DWConv``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, act: str = "silu") -> None:
        super().__init__()
        self.dconv = ConvBnAct(in_ch, in_ch, kernel, stride, groups=in_ch, act=act)
        self.pconv = ConvBnAct(in_ch, out_ch, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


def conv_bn_act_seq(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: str = "relu6"
) -> nn.Sequential:
    """torchvision ``Conv2dNormActivation`` layout: ``Sequential(conv, bn[, act])`` with keys 0, 1, 2."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act != "identity":
        layers.append(make_activation(act))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> None:
    """He-normal convs, unit BatchNorm, small-normal linears: the torchvision classifier initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
