"""ResNet-10/18/34 (He et al. 2016, "Deep Residual Learning") with torchvision's parameter names.

The module tree matches ``torchvision.models.resnet`` (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``), so ImageNet weights saved from torchvision load by name from a
local ``.pth``/``.safetensors`` file. ResNet-10 (TAO's smallest backbone) is BasicBlock x (1, 1, 1, 1).

``forward_features`` returns the stride-8/16/32 maps (``layer2..4``) for detection necks.

Example:
    >>> import torch
    >>> model = resnet18(num_classes=10)
    >>> model(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from lanner.models.layers import init_weights
from lanner.models.registry import ModelInfo, register_model


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut; torchvision's ``BasicBlock``."""

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet classifier: stem (7x7/2 conv, 3x3/2 max-pool), four stages of residual blocks, global pool, ``fc``.

    Example:
        >>> ResNet((2, 2, 2, 2), num_classes=5).info.head
        ('fc',)
    """

    def __init__(self, layers: tuple[int, int, int, int], num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        in_ch = 64
        for i, (width, depth) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_ch if j == 0 else width, width, stride if j == 0 else 1) for j in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        self.feature_channels = widths[1:]
        init_weights(self)
        nn.init.uniform_(self.fc.weight, -(512**-0.5), 512**-0.5)  # nn.Linear's default weight bound (torchvision)
        self.info = ModelInfo(name="resnet", task="classification", num_classes=num_classes, head=("fc",))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 8, 16 and 32 (outputs of ``layer2``, ``layer3``, ``layer4``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for an ``(N, 3, H, W)`` normalised batch."""
        x = self.forward_features(x)[-1]
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model
def resnet10(**kwargs) -> ResNet:
    """ResNet-10: BasicBlock x (1, 1, 1, 1), 5.4M parameters and 0.9 GMACs at 1000 classes, 224x224."""
    return ResNet((1, 1, 1, 1), **kwargs)


@register_model
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock x (2, 2, 2, 2), torchvision-compatible names."""
    return ResNet((2, 2, 2, 2), **kwargs)


@register_model
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock x (3, 4, 6, 3), torchvision-compatible names."""
    return ResNet((3, 4, 6, 3), **kwargs)
