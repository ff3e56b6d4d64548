"""CSPDarknet backbone and PAFPN neck of YOLOX (Ge et al. 2021, "YOLOX: Exceeding YOLO Series in 2021").

Module and attribute names follow the YOLOX reference implementation (``backbone.backbone.stem``,
``dark2``..``dark5``, ``lateral_conv0``, ``C3_p4``, ``reduce_conv1``, ``C3_p3``, ``bu_conv2``, ``C3_n3``,
``bu_conv1``, ``C3_n4``), so the released COCO weights load by name. ``depth`` and ``width`` are the
YOLOX multipliers (s: 0.33/0.50, m: 0.67/0.75).

Example:
    >>> import torch
    >>> neck = PAFPN(depth=0.33, width=0.25)
    >>> [tuple(f.shape[1:]) for f in neck(torch.zeros(1, 3, 64, 64))]
    [(64, 8, 8), (128, 4, 4), (256, 2, 2)]
"""

from __future__ import annotations

import torch
from torch import nn

from lanner.models.layers import ConvBnAct, DWConv


def _conv(depthwise: bool) -> type[nn.Module]:
    return DWConv if depthwise else ConvBnAct


class Bottleneck(nn.Module):
    """1x1 conv → 3x3 conv, plus the input when ``shortcut`` and the shapes match."""

    def __init__(self, in_ch: int, out_ch: int, shortcut: bool = True, depthwise: bool = False) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(in_ch, out_ch, 1)
        self.conv2 = _conv(depthwise)(out_ch, out_ch, 3, 1)
        self.use_add = shortcut and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.use_add else y


class CSPLayer(nn.Module):
    """Cross Stage Partial block: half the channels go through ``n`` bottlenecks, half skip; concat; 1x1."""

    def __init__(self, in_ch: int, out_ch: int, n: int = 1, shortcut: bool = True, depthwise: bool = False) -> None:
        super().__init__()
        hidden = int(out_ch * 0.5)
        self.conv1 = ConvBnAct(in_ch, hidden, 1)
        self.conv2 = ConvBnAct(in_ch, hidden, 1)
        self.conv3 = ConvBnAct(2 * hidden, out_ch, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut, depthwise) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (max-pools 5/9/13, stride 1) between two 1x1 convs."""

    def __init__(self, in_ch: int, out_ch: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = in_ch // 2
        self.conv1 = ConvBnAct(in_ch, hidden, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernels])
        self.conv2 = ConvBnAct(hidden * (len(kernels) + 1), out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))


class Focus(nn.Module):
    """Space-to-depth (2x2 pixel blocks → 4x channels) then a conv; YOLOX's stem."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = ConvBnAct(in_ch * 4, out_ch, kernel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channel order (top-left, bottom-left, top-right, bottom-right) as in the reference weights.
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], dim=1)
        return self.conv(x)


class CSPDarknet(nn.Module):
    """Focus stem and four CSP stages; returns the stride-8/16/32 maps (``dark3``, ``dark4``, ``dark5``)."""

    def __init__(self, depth: float, width: float, depthwise: bool = False) -> None:
        super().__init__()
        conv = _conv(depthwise)
        ch = int(width * 64)
        n = max(round(depth * 3), 1)
        self.stem = Focus(3, ch, 3)
        self.dark2 = nn.Sequential(conv(ch, ch * 2, 3, 2), CSPLayer(ch * 2, ch * 2, n, depthwise=depthwise))
        self.dark3 = nn.Sequential(conv(ch * 2, ch * 4, 3, 2), CSPLayer(ch * 4, ch * 4, n * 3, depthwise=depthwise))
        self.dark4 = nn.Sequential(conv(ch * 4, ch * 8, 3, 2), CSPLayer(ch * 8, ch * 8, n * 3, depthwise=depthwise))
        self.dark5 = nn.Sequential(
            conv(ch * 8, ch * 16, 3, 2),
            SPPBottleneck(ch * 16, ch * 16),
            CSPLayer(ch * 16, ch * 16, n, shortcut=False, depthwise=depthwise),
        )

        self.feature_channels = (ch * 4, ch * 8, ch * 16)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 8, 16 and 32."""
        c3 = self.dark3(self.dark2(self.stem(x)))
        c4 = self.dark4(c3)
        return [c3, c4, self.dark5(c4)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(x)


class PAFPN(nn.Module):
    """Backbone + top-down FPN + bottom-up PAN; outputs ``(P3, P4, P5)`` at strides 8, 16, 32.

    The backbone defaults to CSPDarknet (the reference YOLOX); any module with ``forward_features``
    returning stride-8/16/32 maps and ``feature_channels`` works (e.g. a ResNet without its ``fc``).
    Output channels are ``(256, 512, 1024) * width``; ``out_channels`` lists them.
    """

    def __init__(
        self, depth: float = 1.0, width: float = 1.0, depthwise: bool = False, backbone: nn.Module | None = None
    ) -> None:
        super().__init__()
        n3, n4, n5 = (int(c * width) for c in (256, 512, 1024))
        n = round(3 * depth)
        conv = _conv(depthwise)
        self.backbone = CSPDarknet(depth, width, depthwise) if backbone is None else backbone
        b3, b4, b5 = self.backbone.feature_channels  # equal to (n3, n4, n5) for CSPDarknet
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = ConvBnAct(b5, n4, 1)
        self.C3_p4 = CSPLayer(n4 + b4, n4, n, False, depthwise)
        self.reduce_conv1 = ConvBnAct(n4, n3, 1)
        self.C3_p3 = CSPLayer(n3 + b3, n3, n, False, depthwise)
        self.bu_conv2 = conv(n3, n3, 3, 2)
        self.C3_n3 = CSPLayer(2 * n3, n4, n, False, depthwise)
        self.bu_conv1 = conv(n4, n4, 3, 2)
        self.C3_n4 = CSPLayer(2 * n4, n5, n, False, depthwise)
        self.out_channels = (n3, n4, n5)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x3, x4, x5 = self.backbone.forward_features(x)
        fpn_out0 = self.lateral_conv0(x5)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x4], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x3], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return [pan_out2, pan_out1, pan_out0]
