"""Statistics collection and the end-to-end ``calibrate_model``."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_calib_kit import run_ort, save_model, tiny_classifier, write_images

from lanner.core.errors import ConfigError, DataError
from lanner.engine import load_onnx
from lanner.engine.calibrate import (
    activation_names,
    calibrate_model,
    collect_statistics,
    prepare_graph,
    read_cache,
    read_scales,
)


@pytest.fixture(scope="module")
def graph():
    return prepare_graph(load_onnx(tiny_classifier()))


def batches(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 3, 16, 16)).astype(np.float32) for _ in range(n)]


def test_activation_names_are_every_runtime_float_tensor(graph):
    assert activation_names(graph) == ["images", "c1", "r1", "c2", "r2", "sum", "pool", "flat", "logits"]


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("cpu", marks=pytest.mark.slow)])
def test_every_backend_collects_the_statistics_of_the_reference(graph, backend):
    progress: list[int] = []
    ref = collect_statistics(graph, batches(), backend="reference", progress=progress.append)
    ort = collect_statistics(graph, batches(), backend=backend)
    assert progress == [4, 4, 4]
    assert ref.keys() == ort.keys()
    for name in ref:
        assert ref[name].total == ort[name].total == 12 * np.prod(graph.values[name].shape[1:])
        assert ref[name].absmax == pytest.approx(ort[name].absmax, rel=1e-5)
    assert ref["images"].absmax == max(np.abs(b).max() for b in batches())


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")
def test_nan_activation_is_an_error_naming_the_tensor():
    nodes = [helper.make_node("Sqrt", ["x"], ["root"], name="sqrt")]
    g = helper.make_graph(
        nodes,
        "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("root", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(DataError, match="tensor 'root' has NaN or infinite values on calibration images 0-1"):
        collect_statistics(load_onnx(model), [-np.ones((2, 3), np.float32)], backend="reference")


def test_unknown_backend_and_no_batches(graph):
    with pytest.raises(ConfigError, match="unknown calibration backend"):
        collect_statistics(graph, batches(), backend="tensorrt")
    with pytest.raises(DataError, match="no calibration batches"):
        collect_statistics(graph, [], backend="reference")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    model = save_model(root / "tiny.onnx", tiny_classifier())
    write_images(root / "images", 20)
    report = calibrate_model(model, root / "images", root / "out", method="entropy", count=16, batch=4)
    return root, model, report


def test_calibrate_model_writes_the_three_outputs(calibrated):
    root, _, report = calibrated
    assert report.onnx_path == root / "out" / "tiny_int8.onnx"
    assert (report.num_images, report.batch, report.method) == (16, 4, "entropy")
    qdq = onnx.load(str(report.onnx_path))
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) == 3
    assert run_ort(qdq, np.zeros((2, 3, 16, 16), np.float32)).shape == (2, 4)
    cache, table = read_cache(report.cache_path), read_scales(report.scales_path)
    assert cache.algorithm == "EntropyCalibration2" and cache.version == "8601"
    assert list(cache.scales) == list(table) == activation_names(prepare_graph(load_onnx(root / "tiny.onnx")))
    for name, amax in table.items():
        assert cache.scales[name] == np.float32(amax / 127)


def test_cache_reproduces_the_same_qdq_model(calibrated, tmp_path):
    _root, model, report = calibrated
    again = calibrate_model(model, None, tmp_path, cache=report.cache_path)
    assert again.method == "cache (EntropyCalibration2)"
    assert again.onnx_path.read_bytes() == report.onnx_path.read_bytes()
    assert again.cache_path.read_bytes() == report.cache_path.read_bytes()


def test_calibration_is_deterministic(calibrated, tmp_path):
    root, model, report = calibrated
    again = calibrate_model(model, root / "images", tmp_path, method="entropy", count=16, batch=4)
    assert again.cache_path.read_bytes() == report.cache_path.read_bytes()


def test_cache_of_another_model_is_refused(calibrated, tmp_path):
    _root, model, _ = calibrated
    (tmp_path / "other.cache").write_text("TRT-8601-EntropyCalibration2\ndata_0: 3c010a14\n")
    with pytest.raises(DataError, match="no calibration range for 3 tensor"):
        calibrate_model(model, None, tmp_path / "out", cache=tmp_path / "other.cache")


def test_static_batch_model_uses_its_batch_and_drops_the_rest(tmp_path):
    model = save_model(tmp_path / "b4.onnx", tiny_classifier(batch=4))
    write_images(tmp_path / "images", 10)
    report = calibrate_model(
        model, tmp_path / "images", tmp_path / "out", method="minmax", batch=8, backend="reference"
    )
    assert (report.batch, report.num_images) == (4, 8)
    assert report.notes == ["the model's batch size is fixed at 4: the last 2 image(s) were left out"]


def test_unknown_exclude_fails_before_reading_images(tmp_path):
    model = save_model(tmp_path / "tiny.onnx", tiny_classifier())
    with pytest.raises(ConfigError, match="--exclude 'Softmax'"):
        calibrate_model(model, tmp_path / "no_such_folder", tmp_path / "out", exclude=["Softmax"])
