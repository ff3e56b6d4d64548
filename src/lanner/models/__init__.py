"""L1: the model zoo (torch): a registry of classifiers and detectors, checkpoints, ONNX export.

* ``create_model(name, num_classes, pretrained=path)`` builds a registered model (``list_models()``);
  ``model.info`` (``ModelInfo``) carries task, input size/layout, mean/std, colour order, classes and
  the postprocess kind. ResNet-10/18/34 and MobileNetV2 use torchvision's parameter names; YOLOX
  (nano/tiny/s/m) uses the YOLOX reference names, so released weights load from a local file;
  ``yolox_resnet10/18`` and ``yolox_mobilenet_v2`` take ImageNet classifier weights for their backbone.
* ``save_checkpoint``/``load_checkpoint``: safetensors + JSON metadata, never pickle.
* ``export_onnx``: ONNX (opset >= 17) with ``metadata_props``, checked with ONNX Runtime.
* ``batched_nms``/``multiclass_nms``: pure-torch NMS (no torchvision).

Example:
    >>> import torch
    >>> from lanner.models import create_model
    >>> model = create_model("yolox_s", num_classes=2, class_names=["person", "car"]).eval()
    >>> detections = model.predict(torch.zeros(1, 3, 128, 128))  # one lanner.core.Detections per image
"""

from lanner.models import mobilenet, resnet, yolox  # noqa: F401  (importing registers the families)
from lanner.models.checkpoint import (
    LoadReport,
    flatten_state,
    load_checkpoint,
    load_extra_tensors,
    load_pretrained,
    match_state_dict,
    model_from_checkpoint,
    read_state_dict,
    save_checkpoint,
    save_weights_only,
    unflatten_state,
    unwrap_model,
)
from lanner.models.export import ExportReport, export_onnx, onnx_metadata, run_onnx
from lanner.models.mobilenet import MobileNetV2
from lanner.models.nms import batched_nms, box_iou, multiclass_nms, nms
from lanner.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, create_model, list_models, register_model
from lanner.models.resnet import ResNet
from lanner.models.yolox import YOLOX, backbone_from_classifier, decode_outputs, flatten_levels

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "YOLOX",
    "ExportReport",
    "LoadReport",
    "MobileNetV2",
    "ModelInfo",
    "ResNet",
    "backbone_from_classifier",
    "batched_nms",
    "box_iou",
    "create_model",
    "decode_outputs",
    "export_onnx",
    "flatten_levels",
    "flatten_state",
    "list_models",
    "load_checkpoint",
    "load_extra_tensors",
    "load_pretrained",
    "match_state_dict",
    "model_from_checkpoint",
    "multiclass_nms",
    "nms",
    "onnx_metadata",
    "read_state_dict",
    "register_model",
    "run_onnx",
    "save_checkpoint",
    "save_weights_only",
    "unflatten_state",
    "unwrap_model",
]
