"""YOLOX detectors: anchor-free, PAFPN neck, decoupled head, SiLU (Ge et al. 2021).

Parameter names follow the YOLOX reference code (``backbone.backbone.*``, ``backbone.C3_p4.*``,
``head.stems.0``, ``head.cls_preds.0``, ...), so the released COCO checkpoints load by name
(``create_model("yolox_s", num_classes=3, pretrained="yolox_s.pth")`` keeps everything but
``head.cls_preds``). Input convention is the reference's: BGR, pixel values 0-255, no normalisation.
``yolox_resnet10/18`` and ``yolox_mobilenet_v2`` put the same neck and head on a torchvision-named
classifier backbone, so ImageNet classifier weights initialise them (RGB, ImageNet mean/std).

Outputs, by mode:

* ``model.train()``: ``forward`` returns the **raw per-level outputs** for a loss, a list over strides
  (8, 16, 32) of ``(B, 5 + C, H_l, W_l)`` tensors, channels ``[dx, dy, log_w, log_h, obj_logit,
  cls_logit_0..C-1]``. Box centre is ``(grid_xy + (dx, dy)) * stride``, size ``exp(log_wh) * stride``
  (see ``flatten_levels``, which also returns the grid and stride of every anchor point).
* ``model.eval()`` (and ONNX export): ``forward`` returns ``(boxes (B, N, 4) xyxy in input pixels,
  scores (B, N, C) = sigmoid(obj) * sigmoid(cls))``, N = sum of H_l * W_l. Grids come from
  ``arange`` over the feature shapes, so the exported graph has no per-anchor loops. NMS is not in
  the graph: use ``predict`` in Python or ``multiclass_nms`` on the outputs.

Example:
    >>> import torch
    >>> model = yolox_s(num_classes=3).eval()
    >>> boxes, scores = model(torch.zeros(1, 3, 96, 128))
    >>> boxes.shape, scores.shape
    (torch.Size([1, 252, 4]), torch.Size([1, 252, 3]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.models.csp import PAFPN
from lanner.models.layers import ConvBnAct, DWConv
from lanner.models.mobilenet import mobilenet_v2
from lanner.models.nms import multiclass_nms
from lanner.models.registry import ModelInfo, register_model
from lanner.models.resnet import resnet10, resnet18

STRIDES = (8, 16, 32)


class YOLOXHead(nn.Module):
    """Decoupled head: per level a 1x1 stem, then two 3x3 convs for classes and two for box + objectness."""

    def __init__(self, num_classes: int, width: float, in_channels: tuple[int, ...], depthwise: bool = False) -> None:
        super().__init__()
        hidden = int(256 * width)
        conv = DWConv if depthwise else ConvBnAct
        self.stems = nn.ModuleList([ConvBnAct(c, hidden, 1) for c in in_channels])
        self.cls_convs = nn.ModuleList(
            [nn.Sequential(conv(hidden, hidden, 3), conv(hidden, hidden, 3)) for _ in in_channels]
        )
        self.reg_convs = nn.ModuleList(
            [nn.Sequential(conv(hidden, hidden, 3), conv(hidden, hidden, 3)) for _ in in_channels]
        )
        self.cls_preds = nn.ModuleList([nn.Conv2d(hidden, num_classes, 1) for _ in in_channels])
        self.reg_preds = nn.ModuleList([nn.Conv2d(hidden, 4, 1) for _ in in_channels])
        self.obj_preds = nn.ModuleList([nn.Conv2d(hidden, 1, 1) for _ in in_channels])
        self.initialize_biases(prior_prob=0.01)

    def initialize_biases(self, prior_prob: float) -> None:
        """Start class and objectness at ``prior_prob`` (focal-loss prior; keeps early losses sane)."""
        for conv in [*self.cls_preds, *self.obj_preds]:
            nn.init.constant_(conv.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = []
        for k, x in enumerate(feats):
            x = self.stems[k](x)
            cls_feat = self.cls_convs[k](x)
            reg_feat = self.reg_convs[k](x)
            outputs.append(
                torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat), self.cls_preds[k](cls_feat)], 1)
            )
        return outputs


def _grid_xy(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(h * w, 2)`` cell coordinates (x, y), row-major, from ``arange`` (folds to a constant in ONNX)."""
    ys = torch.arange(h, device=like.device, dtype=like.dtype)
    xs = torch.arange(w, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def flatten_levels(
    raw: list[torch.Tensor], strides: tuple[int, ...] = STRIDES
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw per-level outputs → ``(preds (B, N, 5 + C), grids (N, 2), strides (N, 1))`` for a loss.

    ``preds[..., :4]`` are boxes ``cx, cy, w, h`` in input pixels; ``preds[..., 4:]`` stay logits.
    ``grids`` are the (x, y) cell of each anchor point; ``strides`` its level's stride.
    """
    preds, grids, level_strides = [], [], []
    for out, stride in zip(raw, strides):
        h, w = out[0, 0].shape  # a static-shaped slice: the exporter folds the grid to a constant
        grid = _grid_xy(h, w, out)
        out = out.flatten(2).transpose(1, 2)
        centre = (out[..., :2] + grid) * stride
        size = torch.exp(out[..., 2:4]) * stride
        preds.append(torch.cat([centre, size, out[..., 4:]], dim=-1))
        grids.append(grid)
        level_strides.append(torch.ones_like(grid[:, :1]) * stride)
    return torch.cat(preds, 1), torch.cat(grids, 0), torch.cat(level_strides, 0)


def decode_outputs(raw: list[torch.Tensor], strides: tuple[int, ...] = STRIDES) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw per-level outputs → ``(boxes (B, N, 4) xyxy pixels, scores (B, N, C))``; exportable."""
    preds, _, _ = flatten_levels(raw, strides)
    centre, half = preds[..., :2], preds[..., 2:4] / 2
    boxes = torch.cat([centre - half, centre + half], dim=-1)
    scores = torch.sigmoid(preds[..., 4:5]) * torch.sigmoid(preds[..., 5:])
    return boxes, scores


def backbone_from_classifier(classifier: nn.Module) -> nn.Module:
    """Turn a registered classifier into a detection backbone: its head becomes ``nn.Identity``.

    Keeps ``forward_features``/``feature_channels`` and the parameter names, so the classifier's
    ImageNet weights load into it; ``head_prefixes`` records the removed head for the loader.
    """
    head = classifier.info.head
    for prefix in head:
        classifier.set_submodule(prefix, nn.Identity())
    del classifier.info  # the detector's ModelInfo is the one that describes inputs and outputs
    classifier.head_prefixes = head
    return classifier


class YOLOX(nn.Module):
    """YOLOX = ``backbone`` (CSPDarknet or a classifier backbone, + PAFPN) + ``head`` (decoupled).

    ``backbone_prefix`` tells ``load_pretrained`` where a classifier's weights go (e.g. ImageNet
    ResNet-18 into ``yolox_resnet18``); see the module docstring for the outputs.

    Example:
        >>> YOLOX(depth=0.33, width=0.25, num_classes=2).info.postprocess
        'yolox_decoded'
    """

    backbone_prefix = "backbone.backbone."

    def __init__(
        self,
        depth: float,
        width: float,
        num_classes: int = 80,
        depthwise: bool = False,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = PAFPN(depth, width, depthwise, backbone)
        self.head = YOLOXHead(num_classes, width, self.backbone.out_channels, depthwise)
        self.strides = STRIDES
        self.backbone_head = getattr(backbone, "head_prefixes", ())
        for name, m in self.named_modules():  # the reference's BatchNorm settings (init_yolo), not on ImageNet ones
            if isinstance(m, nn.BatchNorm2d) and (backbone is None or not name.startswith("backbone.backbone.")):
                m.eps, m.momentum = 1e-3, 0.03
        # Reference YOLOX: BGR 0-255, no normalisation; an ImageNet backbone wants its own statistics.
        pixels = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "color_order": "BGR"} if backbone is None else {}
        self.info = ModelInfo(
            name="yolox",
            task="detection",
            num_classes=num_classes,
            head=("head.cls_preds",),
            input_size=(640, 640),
            resize="letterbox",
            postprocess="yolox_decoded",
            strides=STRIDES,
            outputs=("boxes", "scores"),
            **pixels,
        )

    def forward_raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Raw per-level outputs (the training-mode result), whatever the mode."""
        if not torch.jit.is_tracing() and (x.shape[-2] % STRIDES[-1] or x.shape[-1] % STRIDES[-1]):
            raise DataError(
                f"input height and width must be multiples of {STRIDES[-1]}, got {tuple(x.shape[-2:])}",
                where=self.info.name,
                fix="letterbox or resize the images to a multiple of 32",
            )
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | tuple[torch.Tensor, torch.Tensor]:
        raw = self.forward_raw(x)
        return raw if self.training else decode_outputs(raw, self.strides)

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, conf_threshold: float = 0.25, iou_threshold: float = 0.45, max_det: int = 300
    ) -> list[Detections]:
        """Boxes after class-aware NMS, one ``Detections`` per image (in network-input pixels)."""
        boxes, scores = decode_outputs(self.forward_raw(x), self.strides)
        return multiclass_nms(boxes, scores, conf_threshold, iou_threshold, max_det)


@register_model
def yolox_nano(**kwargs) -> YOLOX:
    """YOLOX-Nano: depth 0.33, width 0.25, depthwise convs (~0.9M parameters), 416x416 input."""
    model = YOLOX(depth=0.33, width=0.25, depthwise=True, **kwargs)
    model.info = model.info.replace(input_size=(416, 416))
    return model


@register_model
def yolox_tiny(**kwargs) -> YOLOX:
    """YOLOX-Tiny: depth 0.33, width 0.375 (~5M parameters), 416x416 input."""
    model = YOLOX(depth=0.33, width=0.375, **kwargs)
    model.info = model.info.replace(input_size=(416, 416))
    return model


@register_model
def yolox_s(**kwargs) -> YOLOX:
    """YOLOX-S: depth 0.33, width 0.50 (~9M parameters)."""
    return YOLOX(depth=0.33, width=0.50, **kwargs)


@register_model
def yolox_m(**kwargs) -> YOLOX:
    """YOLOX-M: depth 0.67, width 0.75 (~25M parameters)."""
    return YOLOX(depth=0.67, width=0.75, **kwargs)


@register_model
def yolox_resnet10(**kwargs) -> YOLOX:
    """ResNet-10 backbone (ImageNet weights load from a torchvision-style file) + YOLOX-S neck and head."""
    return YOLOX(depth=0.33, width=0.50, backbone=backbone_from_classifier(resnet10()), **kwargs)


@register_model
def yolox_resnet18(**kwargs) -> YOLOX:
    """ResNet-18 backbone (torchvision ImageNet weights load into it) + YOLOX-S neck and head."""
    return YOLOX(depth=0.33, width=0.50, backbone=backbone_from_classifier(resnet18()), **kwargs)


@register_model
def yolox_mobilenet_v2(**kwargs) -> YOLOX:
    """MobileNetV2 backbone (torchvision ImageNet weights load into it) + YOLOX-Nano depthwise neck and head."""
    model = YOLOX(depth=0.33, width=0.25, depthwise=True, backbone=backbone_from_classifier(mobilenet_v2()), **kwargs)
    model.info = model.info.replace(input_size=(416, 416))
    return model
