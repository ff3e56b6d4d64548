"""Every registered model: create -> forward -> export -> ONNX Runtime; and weight-name compatibility."""

import numpy as np
import pytest
import torch

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.models import create_model, decode_outputs, export_onnx, flatten_levels, list_models, run_onnx

DETECTOR_INPUT = (96, 128)  # (height, width), multiples of the largest stride 32
CLASSIFIER_INPUT = (64, 64)


@pytest.mark.parametrize("name", list_models())
def test_every_model_creates_runs_and_exports(name: str, tmp_path) -> None:
    model = create_model(name, num_classes=3)
    is_detector = model.info.task == "detection"
    size = DETECTOR_INPUT if is_detector else CLASSIFIER_INPUT
    images = torch.randn(2, 3, *size)

    model.train()
    out = model(images)
    if is_detector:  # raw per-level outputs for a loss: (B, 5 + C, H / s, W / s)
        assert [tuple(o.shape) for o in out] == [(2, 8, size[0] // s, size[1] // s) for s in model.info.strides]
    else:
        assert out.shape == (2, 3)

    report = export_onnx(model, tmp_path / f"{name}.onnx", input_size=size)
    assert model.training, "export must restore the caller's mode"
    assert report.input_shape == (1, 3, *size)
    assert all(diff < 1e-3 for diff in report.max_abs_diff.values()), report.max_abs_diff

    model.eval()
    with torch.no_grad():
        expected = model(images[:1])
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    got = run_onnx(report.path, images[:1].numpy())
    for out_name, ref in zip(model.info.outputs, expected):
        np.testing.assert_allclose(got[out_name], ref.numpy(), rtol=1e-3, atol=1e-4)


def torchvision_resnet_keys(layers: tuple[int, ...]) -> list[str]:
    """state_dict keys of torchvision.models.resnet{18,34} (BasicBlock), written from its source layout."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["conv1.weight", *(f"bn1.{k}" for k in bn)]
    for stage, depth in enumerate(layers, start=1):
        for block in range(depth):
            p = f"layer{stage}.{block}"
            keys += [f"{p}.conv1.weight", *(f"{p}.bn1.{k}" for k in bn), f"{p}.conv2.weight"]
            keys += [f"{p}.bn2.{k}" for k in bn]
            if block == 0 and stage > 1:
                keys += [f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{k}" for k in bn)]
    return [*keys, "fc.weight", "fc.bias"]


@pytest.mark.parametrize(
    ("name", "layers"), [("resnet10", (1, 1, 1, 1)), ("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))]
)
def test_resnet_state_dict_keys_are_torchvision_s(name: str, layers: tuple[int, ...]) -> None:
    assert list(create_model(name).state_dict()) == torchvision_resnet_keys(layers)


def test_resnet18_keys_spelled_out() -> None:
    keys = list(create_model("resnet18").state_dict())
    assert len(keys) == 122
    assert keys[:8] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
        "layer1.0.bn1.weight",
    ]
    assert "layer2.0.downsample.0.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize(
    ("name", "params"),
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("mobilenet_v2", 3_504_872)],  # torchvision's counts
)
def test_parameter_counts_match_torchvision(name: str, params: int) -> None:
    assert sum(p.numel() for p in create_model(name).parameters()) == params


def test_mobilenet_v2_keys_are_torchvision_s() -> None:
    shapes = {k: tuple(v.shape) for k, v in create_model("mobilenet_v2").state_dict().items()}
    assert shapes["features.0.0.weight"] == (32, 3, 3, 3)
    assert shapes["features.1.conv.0.0.weight"] == (32, 1, 3, 3)  # t=1: depthwise first
    assert shapes["features.1.conv.1.weight"] == (16, 32, 1, 1)
    assert shapes["features.2.conv.0.0.weight"] == (96, 16, 1, 1)  # expand
    assert shapes["features.2.conv.1.0.weight"] == (96, 1, 3, 3)
    assert shapes["features.2.conv.3.running_var"] == (24,)
    assert shapes["features.18.0.weight"] == (1280, 320, 1, 1)
    assert shapes["classifier.1.weight"] == (1000, 1280)


def test_yolox_keys_are_the_reference_s() -> None:
    shapes = {k: tuple(v.shape) for k, v in create_model("yolox_s").state_dict().items()}
    assert shapes["backbone.backbone.stem.conv.conv.weight"] == (32, 12, 3, 3)
    assert shapes["backbone.backbone.dark2.1.m.0.conv2.conv.weight"] == (32, 32, 3, 3)
    assert shapes["backbone.backbone.dark5.1.conv2.conv.weight"] == (512, 1024, 1, 1)  # SPP
    assert shapes["backbone.lateral_conv0.conv.weight"] == (256, 512, 1, 1)
    assert shapes["backbone.C3_n4.conv3.bn.running_mean"] == (512,)
    assert shapes["head.stems.2.conv.weight"] == (128, 512, 1, 1)
    assert shapes["head.cls_convs.0.1.conv.weight"] == (128, 128, 3, 3)
    assert shapes["head.cls_preds.0.weight"] == (80, 128, 1, 1)
    assert shapes["head.obj_preds.1.bias"] == (1,)
    assert shapes["head.reg_preds.2.weight"] == (4, 128, 1, 1)
    nano = create_model("yolox_nano").state_dict()
    assert "backbone.backbone.dark2.0.dconv.conv.weight" in nano
    assert "head.cls_convs.0.0.pconv.bn.weight" in nano


def test_detector_eval_output_is_the_decoded_raw_output() -> None:
    model = create_model("yolox_nano", num_classes=2).eval()
    images = torch.randn(1, 3, *DETECTOR_INPUT)
    with torch.no_grad():
        raw = model.forward_raw(images)
        boxes, scores = model(images)
    n = sum(o.shape[2] * o.shape[3] for o in raw)
    assert boxes.shape == (1, n, 4) and scores.shape == (1, n, 2)
    ref_boxes, ref_scores = decode_outputs(raw)
    torch.testing.assert_close(boxes, ref_boxes)
    torch.testing.assert_close(scores, ref_scores)
    assert bool(((scores >= 0) & (scores <= 1)).all())
    assert bool((boxes[..., 2:] >= boxes[..., :2]).all())


def test_flatten_levels_gives_grid_and_stride_per_anchor_point() -> None:
    raw = [torch.zeros(1, 7, 2, 3), torch.zeros(1, 7, 1, 2)]  # dx = dy = log_wh = 0
    preds, grids, strides = flatten_levels(raw, (8, 16))
    assert preds.shape == (1, 8, 7)
    assert grids.tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 0], [1, 0]]
    assert strides.flatten().tolist() == [8] * 6 + [16] * 2
    # box centre = grid * stride, size = stride (exp(0) * stride)
    assert preds[0, 4, :4].tolist() == [8.0, 8.0, 8.0, 8.0]
    assert preds[0, 7, :4].tolist() == [16.0, 0.0, 16.0, 16.0]


def test_detector_predict_returns_detections_per_image() -> None:
    model = create_model("yolox_nano", num_classes=2).eval()
    dets = model.predict(torch.randn(2, 3, *DETECTOR_INPUT), conf_threshold=0.0, max_det=5)
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    assert all(len(d) <= 5 for d in dets)


def test_detector_rejects_sizes_that_are_not_multiples_of_32() -> None:
    model = create_model("yolox_nano", num_classes=2)
    with pytest.raises(DataError, match="multiples of 32, got \\(100, 128\\)"):
        model(torch.zeros(1, 3, 100, 128))
