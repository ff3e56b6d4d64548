"""Registry and ModelInfo: names, errors with fixes, metadata round trip."""

import pytest

from lanner.core.errors import ConfigError
from lanner.models import ModelInfo, create_model, list_models, register_model

EXPECTED = {
    "resnet10",
    "resnet18",
    "resnet34",
    "mobilenet_v2",
    "mobilenet_v2_050",
    "mobilenet_v2_hs",
    "yolox_nano",
    "yolox_tiny",
    "yolox_s",
    "yolox_m",
    "yolox_resnet10",
    "yolox_resnet18",
    "yolox_mobilenet_v2",
}


def test_every_family_is_registered() -> None:
    assert set(list_models()) >= EXPECTED


def test_registering_a_duplicate_name_raises() -> None:
    def resnet18(**kwargs):  # same name as the registered ResNet-18
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="registered twice"):
        register_model(resnet18)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'resnet19'.*did you mean 'resnet18'"):
        create_model("resnet19")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be >= 1"),
        ({"num_classes": 3, "class_names": ["a", "b"]}, "2 class names given for 3 classes"),
    ],
)
def test_bad_class_arguments_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("resnet10", **kwargs)


def test_create_model_fills_info() -> None:
    model = create_model("resnet10", class_names=["cat", "dog"])
    info = model.info
    assert (info.name, info.task, info.num_classes) == ("resnet10", "classification", 2)
    assert info.class_names == ("cat", "dog")
    assert model.fc.out_features == 2
    assert create_model("yolox_nano", num_classes=2).info.class_names == ("0", "1")


def test_default_class_counts_are_the_pretraining_ones() -> None:
    assert create_model("resnet10").info.num_classes == 1000
    assert create_model("yolox_nano").info.num_classes == 80


def test_model_info_round_trips_through_a_dict() -> None:
    info = create_model("yolox_nano", num_classes=2).info
    assert ModelInfo.from_dict(info.to_dict()) == info


def test_model_info_rejects_unknown_keys() -> None:
    data = create_model("resnet10", num_classes=2).info.to_dict() | {"colour": "RGB"}
    with pytest.raises(ConfigError, match="unknown ModelInfo keys \\['colour'\\]"):
        ModelInfo.from_dict(data)
