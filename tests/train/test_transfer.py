"""Transfer learning: class extension keeps old head rows bit-exact, freezing, LR groups, pretrained checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lanner.core.errors import ConfigError
from lanner.models import create_model, save_checkpoint
from lanner.train.schedule import LRSchedule
from lanner.train.spec import ModelSection, TrainingSection
from lanner.train.transfer import backbone_blocks, build_model, param_groups, set_train_mode

OLD = ["car", "person", "road_sign"]
NEW = ["car", "bicycle", "person", "road_sign"]


@pytest.fixture
def old_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    model = create_model("yolox_nano", len(OLD), class_names=OLD)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the fresh initialisation, so a copy is visible
    return save_checkpoint(tmp_path / "old.safetensors", model, {"epoch": 5})


def test_extension_keeps_old_rows_bit_exact_and_starts_new_rows_fresh(old_checkpoint: Path) -> None:
    from lanner.models import load_checkpoint

    old, _ = load_checkpoint(old_checkpoint)
    model = build_model(ModelSection(name="yolox_nano", extend_from=old_checkpoint), NEW)
    new = model.state_dict()
    rows = [NEW.index(c) for c in OLD]
    for name, value in new.items():
        if name.startswith("head.cls_preds."):
            assert torch.equal(value[rows], old[name]), name
            if name.endswith(".bias"):
                assert torch.allclose(value[NEW.index("bicycle")], torch.tensor(-math.log(99.0)))
        else:
            assert torch.equal(value, old[name]), name
    assert model.info.class_names == tuple(NEW)


def test_extension_errors(old_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match=r"classes \['road_sign'\] of the extended model are missing"):
        build_model(ModelSection(name="yolox_nano", extend_from=old_checkpoint), ["car", "person", "bicycle"])
    with pytest.raises(ConfigError, match=r"extend_from weights do not fit 'yolox_tiny'.*yolox_nano"):
        build_model(ModelSection(name="yolox_tiny", extend_from=old_checkpoint), NEW)


def test_pretrained_of_another_architecture_names_the_mismatch(old_checkpoint: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(ModelSection(name="yolox_tiny", pretrained=old_checkpoint), OLD)
    assert "shape mismatches" in str(info.value) and "yolox_nano" in str(info.value)


def test_pretrained_with_other_class_names_gets_a_new_head(old_checkpoint: Path) -> None:
    from lanner.models import load_checkpoint

    old, _ = load_checkpoint(old_checkpoint)
    same = build_model(ModelSection(name="yolox_nano", pretrained=old_checkpoint), OLD).state_dict()
    other = build_model(ModelSection(name="yolox_nano", pretrained=old_checkpoint), ["a", "b", "c"]).state_dict()
    key = "head.cls_preds.0.weight"
    assert torch.equal(same[key], old[key]) and not torch.equal(other[key], old[key])
    assert torch.equal(other["head.stems.0.conv.weight"], old["head.stems.0.conv.weight"])


def test_frozen_blocks_and_bn_do_not_change_after_a_step() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSection(name="yolox_nano", freeze_blocks=2, input_size=(64, 64)), OLD)
    names = [n for n, _ in backbone_blocks(model)]
    assert names[:2] == ["backbone.backbone.stem", "backbone.backbone.dark2"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9)
    set_train_mode(model)
    sum(o.abs().mean() for o in model(torch.rand(2, 3, 64, 64) * 255)).backward()
    optimizer.step()
    after = model.state_dict()
    for name in before:
        frozen = name.startswith(("backbone.backbone.stem.", "backbone.backbone.dark2."))
        if frozen:
            assert torch.equal(before[name], after[name]), name  # weights and BN statistics
    assert not torch.equal(
        before["backbone.backbone.dark3.0.dconv.conv.weight"], after["backbone.backbone.dark3.0.dconv.conv.weight"]
    )
    with pytest.raises(ConfigError, match="freeze_blocks=9"):
        build_model(ModelSection(name="yolox_nano", freeze_blocks=9), OLD)


def test_freeze_bn_fixes_every_norm() -> None:
    model = build_model(ModelSection(name="yolox_nano", freeze_bn=True), OLD)
    set_train_mode(model)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.training and not m.weight.requires_grad for m in norms)


def test_backbone_lr_multiplier_and_no_decay_groups() -> None:
    model = build_model(ModelSection(name="yolox_nano", freeze_blocks=1), OLD)
    groups = param_groups(model, 5e-4, backbone_lr_mult=0.1)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"backbone_decay", "backbone_no_decay", "head_decay", "head_no_decay"}
    assert by_name["backbone_decay"]["lr_mult"] == 0.1 and by_name["head_decay"]["lr_mult"] == 1.0
    assert by_name["head_no_decay"]["weight_decay"] == 0.0 and by_name["head_decay"]["weight_decay"] == 5e-4
    grouped = {id(p) for g in groups for p in g["params"]}
    stem = {id(p) for p in model.backbone.backbone.stem.parameters()}
    assert not grouped & stem  # frozen tensors are not optimised
    optimizer = torch.optim.SGD(groups, lr=1.0)
    LRSchedule(TrainingSection(lr=0.02, warmup_epochs=0), steps_per_epoch=10).apply(optimizer, 0)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["backbone_decay"] == pytest.approx(0.002) and lrs["head_decay"] == pytest.approx(0.02)


def test_input_size_must_fit_the_strides() -> None:
    with pytest.raises(ConfigError, match=r"model.input_size: input_size \[100, 96\] must be positive multiples of 32"):
        build_model(ModelSection(name="yolox_nano", input_size=(100, 96)), OLD)
