"""Calibration images: preprocessing from the model metadata, fixed order, clear errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_calib_kit import tiny_classifier, write_images

from lanner.core.errors import ConfigError, DataError, UsageError
from lanner.engine import load_onnx
from lanner.engine.calibrate import Preprocess, iter_batches, list_images


def test_preprocess_follows_the_metadata():
    prep = Preprocess.from_graph(load_onnx(tiny_classifier()))
    assert (prep.height, prep.width, prep.color_order, prep.resize) == (16, 16, "RGB", "stretch")
    blue_bgr = np.zeros((30, 50, 3), np.uint8)
    blue_bgr[..., 0] = 255  # OpenCV order: blue first
    x = prep(blue_bgr)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [-123.675 / 58.395, -116.28 / 57.12, (255 - 103.53) / 57.375], rtol=1e-5)


def test_bgr_models_and_letterbox():
    model = tiny_classifier()
    props = {p.key: p.value for p in model.metadata_props}
    props.update(color_order="BGR", resize="letterbox", pad_value="114", mean="[0, 0, 0]", std="[1, 1, 1]")
    graph = load_onnx(model).replace(metadata_props=props)
    prep = Preprocess.from_graph(graph)
    wide = np.full((8, 32, 3), (10, 20, 30), np.uint8)  # 32x8 → 16x4 at the top, rows 4.. padded
    x = prep(wide)
    np.testing.assert_array_equal(x[:, 0, 0], [10, 20, 30])
    np.testing.assert_array_equal(x[:, 4:, :], 114)


def test_without_metadata_the_static_input_size_and_unit_range_are_used():
    prep = Preprocess.from_graph(load_onnx(tiny_classifier(metadata=False, size=12)))
    assert (prep.height, prep.width) == (12, 12)
    x = prep(np.full((5, 7, 3), 255, np.uint8))
    assert x.shape == (3, 12, 12) and np.allclose(x, 1.0)


def test_dynamic_size_without_metadata_is_an_error():
    graph = load_onnx(tiny_classifier(metadata=False))
    shape = ("N", 3, "H", "W")
    value = graph.values["images"]
    graph = graph.replace(values={**graph.values, "images": type(value)("images", value.dtype, shape)})
    with pytest.raises(ConfigError, match="input size is dynamic"):
        Preprocess.from_graph(graph)


def test_fixed_sorted_order_and_count(tmp_path):
    for sub, name in [("b", "1.png"), ("a", "2.png"), ("a", "10.jpg"), ("", "z.PNG")]:
        (tmp_path / sub).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / sub / name), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    rel = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, count=500)]
    assert rel == ["a/10.jpg", "a/2.png", "b/1.png", "z.PNG"]
    assert len(list_images(tmp_path, count=2)) == 2


def test_batches_resize_any_image_size(tmp_path):
    paths = write_images(tmp_path, 5, size=(40, 13))
    prep = Preprocess.from_graph(load_onnx(tiny_classifier()))
    batches = list(iter_batches(paths, prep, batch=2))
    assert [b.shape for b in batches] == [(2, 3, 16, 16), (2, 3, 16, 16), (1, 3, 16, 16)]


def test_empty_folder_missing_folder_and_bad_count(tmp_path):
    with pytest.raises(DataError, match="no images in the calibration folder") as info:
        list_images(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(UsageError, match="--count 1001 is out of range"):
        list_images(tmp_path, count=1001)


def test_unreadable_image_names_the_file(tmp_path):
    write_images(tmp_path, 2)
    (tmp_path / "img_001.png").write_bytes(b"\x89PNG garbage")
    prep = Preprocess.from_graph(load_onnx(tiny_classifier()))
    with pytest.raises(DataError, match="cannot read this calibration image") as info:
        list(iter_batches(list_images(tmp_path), prep, batch=8))
    assert "img_001.png" in str(info.value)


def test_grey_model_is_refused():
    model = tiny_classifier()
    graph = load_onnx(model)
    value = graph.values["images"]
    graph = graph.replace(values={**graph.values, "images": type(value)("images", value.dtype, ("N", 1, 16, 16))})
    with pytest.raises(ConfigError, match="has 1 channels"):
        Preprocess.from_graph(graph)
    assert json.loads(graph.metadata_props["input_size"]) == [16, 16]
