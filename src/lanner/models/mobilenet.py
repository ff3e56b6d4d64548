"""MobileNetV2 (Sandler et al. 2018): depthwise-separable inverted residuals with linear bottlenecks.

The module tree matches ``torchvision.models.mobilenet_v2`` (``features.0.0``, ``features.1.conv.0.0``,
..., ``features.18.0``, ``classifier.1``) so torchvision's ImageNet weights load by name for width
1.0. ``act="hardswish"`` gives a MobileNetV3-flavoured variant (HardSwish instead of ReLU6) with the
same parameter names, cheaper to train from scratch on small data.

Example:
    >>> import torch
    >>> model = mobilenet_v2(num_classes=4)
    >>> model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import torch
from torch import nn

from lanner.models.layers import conv_bn_act_seq, init_weights, make_divisible
from lanner.models.registry import ModelInfo, register_model

# (expansion t, channels c, repeats n, first stride s) from Table 2 of the paper.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """1x1 expand → 3x3 depthwise → 1x1 linear project, with a residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int, act: str = "relu6") -> None:
        super().__init__()
        hidden = in_ch * expand
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act_seq(in_ch, hidden, 1, act=act))
        layers += [
            conv_bn_act_seq(hidden, hidden, 3, stride, groups=hidden, act=act),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier; ``width`` scales every stage's channels (rounded to multiples of 8).

    Example:
        >>> MobileNetV2(width=0.5, num_classes=3).info.head
        ('classifier.1',)
    """

    def __init__(self, width: float = 1.0, num_classes: int = 1000, act: str = "relu6", dropout: float = 0.2) -> None:
        super().__init__()
        in_ch = make_divisible(32 * width)
        last_ch = make_divisible(1280 * max(1.0, width))
        features: list[nn.Module] = [conv_bn_act_seq(3, in_ch, 3, 2, act=act)]
        stride, stage_ends, channels = 2, [], []
        for t, c, n, s in _SETTINGS:
            out_ch = make_divisible(c * width)
            if s == 2 and stride >= 8:  # the previous stage is the last one at its stride
                stage_ends.append(len(features) - 1)
                channels.append(in_ch)
            for i in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t, act))
                in_ch = out_ch
            stride *= s
        features.append(conv_bn_act_seq(in_ch, last_ch, 1, act=act))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last_ch, num_classes))
        self.stage_ends = (*stage_ends, len(features) - 1)
        self.feature_channels = (*channels, last_ch)
        init_weights(self)
        self.info = ModelInfo(
            name="mobilenet_v2", task="classification", num_classes=num_classes, head=("classifier.1",)
        )

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 8, 16 and 32 (the last block of each of those stages)."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.stage_ends:
                outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for an ``(N, 3, H, W)`` normalised batch."""
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, (1, 1)), 1)
        return self.classifier(x)


@register_model
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNetV2 1.0 (3.5M parameters at 1000 classes), torchvision-compatible names."""
    return MobileNetV2(width=1.0, **kwargs)


@register_model
def mobilenet_v2_050(**kwargs) -> MobileNetV2:
    """MobileNetV2 0.5: half the channels, for small edge devices."""
    return MobileNetV2(width=0.5, **kwargs)


@register_model
def mobilenet_v2_hs(**kwargs) -> MobileNetV2:
    """MobileNetV2 1.0 with HardSwish activations (MobileNetV3's activation; same parameter names)."""
    return MobileNetV2(width=1.0, act="hardswish", **kwargs)
