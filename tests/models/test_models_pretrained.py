"""Pretrained weights from .pth / .safetensors / lanner checkpoints; head re-init; clear misfit errors."""

import logging

import pytest
import torch
from safetensors.torch import save_file

from lanner.core.errors import ConfigError, DataError
from lanner.models import create_model, load_pretrained, read_state_dict, save_checkpoint


class NotATensor:
    """A custom object: pickling it makes a file that ``weights_only=True`` must refuse."""


def same(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.fixture(scope="module")
def imagenet_resnet18() -> dict:
    """A stand-in for torchvision's ImageNet resnet18 state dict (1000 classes, random values)."""
    torch.manual_seed(1)
    return create_model("resnet18").state_dict()


def test_pth_with_another_class_count_reinitialises_the_head(imagenet_resnet18, tmp_path, caplog) -> None:
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet_resnet18, path)
    with caplog.at_level(logging.WARNING):
        model = create_model("resnet18", num_classes=5, pretrained=path)
    own = model.state_dict()
    body = [k for k in own if not k.startswith("fc.")]
    assert same(own, imagenet_resnet18, body)
    assert model.fc.weight.shape == (5, 512)
    assert "head re-initialised for 5 classes (fc.weight, fc.bias)" in caplog.text
    assert model.info.pretrained == str(path)


def test_report_lists_loaded_and_reinitialised(imagenet_resnet18, tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(imagenet_resnet18, path)
    report = load_pretrained(create_model("resnet18", num_classes=7), path)
    assert report.ok
    assert report.reinitialised == ["fc.weight", "fc.bias"]
    assert len(report.loaded) == 120


def test_same_class_count_loads_everything(imagenet_resnet18, tmp_path) -> None:
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet_resnet18.items()}, str(path))
    model = create_model("resnet18", pretrained=path)
    assert same(model.state_dict(), imagenet_resnet18, imagenet_resnet18)


def test_wrapped_and_ddp_prefixed_pth_loads(imagenet_resnet18, tmp_path) -> None:
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "model": {f"module.{k}": v for k, v in imagenet_resnet18.items()}}, path)
    assert set(read_state_dict(path)) == set(imagenet_resnet18)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("resnet34", ["pretrained weights do not fit 'resnet34'", "missing (layer1.2.conv1.weight, layer1.2.bn1"]),
        ("resnet10", ["pretrained weights do not fit 'resnet10'", "unexpected (layer1.1.conv1.weight"]),
        ("mobilenet_v2", ["missing (features.0.0.weight", "unexpected (conv1.weight", "the file holds 122 tensors"]),
    ],
)
def test_wrong_architecture_lists_the_misfit_tensors(imagenet_resnet18, tmp_path, target, expected) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet_resnet18, path)
    with pytest.raises(ConfigError) as err:
        create_model(target, pretrained=path)
    for text in expected:
        assert text in str(err.value)
    assert ", ...)" in str(err.value)  # only the first few names are listed


def test_shape_mismatch_outside_the_head_is_an_error(imagenet_resnet18, tmp_path) -> None:
    tensors = dict(imagenet_resnet18)
    tensors["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(tensors, path)
    with pytest.raises(
        ConfigError, match=r"1 shape mismatches \(conv1.weight: file \(64, 3, 3, 3\) vs model \(64, 3, 7, 7\)\)"
    ):
        create_model("resnet18", pretrained=path)


def test_lanner_checkpoint_of_another_model_names_it(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "r10.safetensors", create_model("resnet10", num_classes=2), {})
    with pytest.raises(ConfigError, match="lanner checkpoint of 'resnet10': create that model instead"):
        create_model("resnet18", pretrained=path)


def test_lanner_checkpoint_is_a_pretrained_source(tmp_path) -> None:
    source = create_model("mobilenet_v2_050", num_classes=4)
    path = save_checkpoint(tmp_path / "m.safetensors", source, {}, extra_tensors={"ema.x": torch.ones(2)})
    model = create_model("mobilenet_v2_050", num_classes=2, pretrained=path)
    body = [k for k in source.state_dict() if not k.startswith("classifier.1.")]
    assert same(model.state_dict(), source.state_dict(), body)


def test_detector_head_reinitialised_on_class_change(tmp_path) -> None:
    coco = create_model("yolox_nano")  # 80 classes, like the released COCO weights
    path = tmp_path / "yolox_nano.pth"
    torch.save({"start_epoch": 300, "model": coco.state_dict()}, path)  # the reference's checkpoint layout
    model = create_model("yolox_nano", num_classes=3)
    report = load_pretrained(model, path)
    assert sorted(report.reinitialised) == sorted(
        f"head.cls_preds.{i}.{p}" for i in range(3) for p in ("weight", "bias")
    )
    kept = [k for k in coco.state_dict() if not k.startswith("head.cls_preds.")]
    assert same(model.state_dict(), coco.state_dict(), kept)


def test_pickled_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": NotATensor()}, path)
    with pytest.raises(DataError, match="cannot read torch weights safely") as info:
        read_state_dict(path)
    message = str(info.value)
    assert "NotATensor besides tensors" in message and "so it is refused" in message
    assert (
        "weights_only" not in message and "\x1b[" not in message and "\n" not in message
    )  # torch's advice is not ours


@pytest.mark.parametrize("content", [b"", b"dataset:\n  train: data/\n", "cut"], ids=["empty", "yaml", "truncated"])
def test_a_non_torch_or_truncated_file_is_named_as_such(tmp_path, content) -> None:
    path = tmp_path / "weights.pth"
    if content == "cut":
        torch.save({"weight": torch.zeros(64)}, path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(DataError, match="not a torch weights file, or a truncated one") as info:
        read_state_dict(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_missing_file_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="weights file not found"):
        create_model("resnet10", pretrained=tmp_path / "nope.pth")


def test_imagenet_classifier_initialises_a_detector_backbone(imagenet_resnet18, tmp_path, caplog) -> None:
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet_resnet18, path)
    with caplog.at_level(logging.INFO):
        model = create_model("yolox_resnet18", num_classes=3, pretrained=path)
    own = model.state_dict()
    body = [k for k in imagenet_resnet18 if not k.startswith("fc.")]
    assert all(torch.equal(own[f"backbone.backbone.{k}"], imagenet_resnet18[k]) for k in body)
    assert "ignored the classifier's fc.weight, fc.bias" in caplog.text
    report = load_pretrained(model, path)
    assert len(report.loaded) == len(body) and report.ignored == ["fc.weight", "fc.bias"]
    assert "head.cls_preds.0.weight" in report.fresh and "backbone.C3_p4.conv1.conv.weight" in report.fresh
    assert not any(k.startswith("backbone.backbone.") for k in report.fresh)


def test_mobilenet_classifier_initialises_its_detector_backbone(tmp_path) -> None:
    source = create_model("mobilenet_v2").state_dict()
    path = tmp_path / "mobilenet_v2.safetensors"
    save_file({k: v.contiguous() for k, v in source.items()}, str(path))
    report = load_pretrained(create_model("yolox_mobilenet_v2", num_classes=2), path)
    assert sorted(report.ignored) == ["classifier.1.bias", "classifier.1.weight"]
    assert len(report.loaded) == len(source) - 2


def test_classifier_of_another_family_does_not_fit_the_detector_backbone(imagenet_resnet18, tmp_path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet_resnet18, path)
    with pytest.raises(
        ConfigError, match=r"do not fit 'yolox_s': \d+ missing \(backbone.backbone.stem.conv.conv.weight"
    ):
        create_model("yolox_s", pretrained=path)


def test_a_full_detector_checkpoint_is_not_taken_for_a_backbone(tmp_path) -> None:
    source = create_model("yolox_resnet10", num_classes=2)
    path = save_checkpoint(tmp_path / "det.safetensors", source)
    report = load_pretrained(create_model("yolox_resnet10", num_classes=2), path)
    assert not report.fresh and not report.reinitialised and len(report.loaded) == len(source.state_dict())
