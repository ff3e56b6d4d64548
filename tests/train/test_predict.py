"""predict.py: torch and ONNX paths give the same boxes, in original-image pixels; numpy NMS = torch NMS."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from torch import nn

from lanner.core import Detections
from lanner.core.errors import DataError, UsageError
from lanner.models import ModelInfo, create_model, export_onnx, multiclass_nms, save_checkpoint
from lanner.train import predict as predict_module
from lanner.train.predict import (
    OnnxModel,
    PlanModel,
    check_device,
    load_model,
    multiclass_nms_numpy,
    predict_classes,
    predict_detections,
)


@pytest.fixture(autouse=True)
def _one_thread_seeded():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def tiny_detector(size=(64, 96)) -> nn.Module:
    """A random YOLOX-nano whose scores spread out: fresh BatchNorm statistics from one batch of noise
    (with the init statistics the deep features vanish and every anchor scores the same to 1e-7)."""
    model = create_model("yolox_nano", class_names=["person", "car"])
    # normalised input (also checks that mean/std/colour order travel in the ONNX metadata)
    model.info = model.info.replace(
        input_size=size, mean=(120.0, 110.0, 100.0), std=(70.0, 60.0, 50.0), color_order="RGB"
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1)))
        for layer in [*model.head.obj_preds, *model.head.cls_preds, *model.head.reg_preds]:
            layer.weight.mul_(0.0005)  # logits of a few units: scores spread over (0, 1) without ties at 1.0
            layer.bias.zero_()
    return model.eval()


def images(seed=0, shapes=((60, 100), (96, 64), (64, 96))):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (*s, 3), dtype=np.uint8) for s in shapes]


def assert_same_detections(a: Detections, b: Detections, box_atol=1e-2, conf_atol=1e-4):
    """Same boxes up to order (pairs found by optimal assignment on box distance and score)."""
    from scipy.optimize import linear_sum_assignment

    assert len(a) == len(b)
    cost = np.abs(a.xyxy[:, None] - b.xyxy[None]).max(-1) + 1e3 * np.abs(a.confidence[:, None] - b.confidence[None])
    cost += 1e6 * (a.class_id[:, None] != b.class_id[None])
    rows, cols = linear_sum_assignment(cost)
    np.testing.assert_allclose(a.xyxy[rows], b.xyxy[cols], atol=box_atol)
    np.testing.assert_allclose(a.confidence[rows], b.confidence[cols], atol=conf_atol)
    np.testing.assert_array_equal(a.class_id[rows], b.class_id[cols])


def test_numpy_nms_matches_torch_multiclass_nms():
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(2, 400, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(2, 400, 2, generator=gen) * 40], -1)
    scores = torch.rand(2, 400, 3, generator=gen)
    expected = multiclass_nms(boxes, scores, 0.2, 0.5, 100)
    for b, s, ref in zip(boxes.numpy(), scores.numpy(), expected):
        got = multiclass_nms_numpy(b, s, 0.2, 0.5, 100)
        assert len(got) == len(ref) > 10
        assert sorted(zip(got.confidence.tolist(), got.class_id.tolist())) == sorted(
            zip(ref.confidence.tolist(), ref.class_id.tolist())
        )


def test_boxes_come_back_in_original_pixels():
    """A stub detector that always finds the whole letterboxed image: boxes must map to the full image."""

    class WholeImage(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))
            self.info = ModelInfo(
                name="stub", task="detection", num_classes=1, head=(), input_size=(64, 64), resize="letterbox"
            )

        def predict(self, x, conf, iou, max_det):
            h, w = x.shape[-2:]
            box = np.array([[0, 0, w, h]], np.float32)
            return [Detections.from_arrays(box, [0], confidence=[0.9]) for _ in range(x.shape[0])]

    dets = predict_detections(WholeImage(), [np.zeros((100, 200, 3), np.uint8), np.zeros((50, 25, 3), np.uint8)])
    # letterbox to 64x64: 200x100 scales by .32 (pad below), box (0,0,64,64) -> (0,0,200,200) clipped to the image
    np.testing.assert_allclose(dets[0].xyxy, [[0, 0, 200, 100]])
    np.testing.assert_allclose(dets[1].xyxy, [[0, 0, 25, 50]])


def test_torch_and_onnx_give_the_same_boxes(tmp_path, batch="dynamic"):
    model = tiny_detector()
    path = tmp_path / "det.onnx"
    export_onnx(model, path, batch=batch)
    onnx_model = load_model(path)
    assert isinstance(onnx_model, OnnxModel) and onnx_model.class_names == ("person", "car")
    imgs = images()
    torch_dets = predict_detections(model, imgs, conf=0.3, iou=0.5, batch_size=2)
    onnx_dets = predict_detections(onnx_model, imgs, conf=0.3, iou=0.5, batch_size=2)
    assert sum(len(d) for d in torch_dets) > 5
    for a, b, img in zip(torch_dets, onnx_dets, imgs):
        assert_same_detections(a, b)
        assert a.xyxy[:, 2].max(initial=0) <= img.shape[1] and a.xyxy[:, 3].max(initial=0) <= img.shape[0]


@pytest.mark.parametrize("profile", ["4:4:4", "1:2:2"])  # a batch of 3 padded to 4; split into 2 + 1
def test_a_plan_predicts_the_onnx_boxes(tmp_path, profile):
    from lanner.engine.build import BuildConfig, build_engine
    from lanner.engine.plan import write_plan

    path = tmp_path / "det.onnx"
    export_onnx(tiny_detector(), path, batch="dynamic")
    plan = write_plan(build_engine(str(path), BuildConfig(tune=False, batch=[profile])), tmp_path / "det.plan")
    model = load_model(plan)
    assert isinstance(model, PlanModel) and (model.task, model.class_names) == ("detection", ("person", "car"))
    imgs = images()
    got = predict_detections(model, imgs, conf=0.3, iou=0.5, batch_size=3)
    want = predict_detections(load_model(path), imgs, conf=0.3, iou=0.5, batch_size=3)
    assert sum(len(d) for d in want) > 5
    for a, b in zip(got, want, strict=True):
        assert_same_detections(a, b)
    with pytest.raises(UsageError, match=r"lanner plans run on the CPU backend only \(got --device cuda\)"):
        PlanModel.load(plan, "cuda")


def test_checkpoint_roundtrip_predicts_the_same(tmp_path):
    model = tiny_detector()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = load_model(path)
    imgs = images(1)
    for a, b in zip(predict_detections(model, imgs, conf=0.3), predict_detections(loaded, imgs, conf=0.3)):
        assert a == b


def test_a_ddp_style_wrapper_is_unwrapped():
    class Wrapper(nn.Module):  # DistributedDataParallel keeps the model in .module and has no .info
        def __init__(self, module):
            super().__init__()
            self.module = module

    model = tiny_detector()
    imgs = images()[:2]
    for a, b in zip(predict_detections(Wrapper(model), imgs, conf=0.3), predict_detections(model, imgs, conf=0.3)):
        assert a == b


def test_training_mode_is_restored():
    model = tiny_detector().train()
    predict_detections(model, images()[:1], conf=0.5)
    assert model.training


def test_classifier_torch_and_onnx_logits_agree(tmp_path):
    model = create_model("resnet10", class_names=["a", "b", "c"]).eval()
    model.info = model.info.replace(input_size=(32, 32))
    export_onnx(model, tmp_path / "cls.onnx")  # static batch 1: run() chunks the batch of 3
    imgs = images(2)
    torch_logits = predict_classes(model, imgs, batch_size=2)
    onnx_logits = predict_classes(load_model(tmp_path / "cls.onnx"), imgs, batch_size=3)
    assert torch_logits.shape == (3, 3)
    np.testing.assert_allclose(torch_logits, onnx_logits, atol=1e-3)


def test_wrong_task_is_a_clear_error():
    with pytest.raises(UsageError, match="this is a detection model"):
        predict_classes(tiny_detector(), images()[:1])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.safetensors", None, "model file not found"),
        ("weights.pt", b"x", "unsupported model file type '.pt'"),
        ("bad.safetensors", b"\x00garbage" * 10, "cannot read checkpoint"),
        ("bad.onnx", b"\x00garbage" * 10, "cannot load ONNX model"),
        ("bad.plan", b"\x00garbage" * 10, "not a lanner plan file"),
    ],
)
def test_bad_model_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value) and name in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_requested_without_gpu():
    with pytest.raises(UsageError, match=r"GPU requested \(--device cuda\)"):
        check_device("cuda")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        check_device("tpu")


def test_doctests():
    assert doctest.testmod(predict_module).failed == 0


def test_onnx_without_lanner_metadata_is_named(tmp_path):
    import onnx

    model = create_model("resnet10", num_classes=2).eval()
    export_onnx(model, tmp_path / "m.onnx", input_size=32)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "plain.onnx"))
    with pytest.raises(DataError, match=r"plain.onnx: the model has no 'input_size' in its metadata_props"):
        load_model(tmp_path / "plain.onnx")
