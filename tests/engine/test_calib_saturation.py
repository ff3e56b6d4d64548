"""The saturation guard of entropy calibration: activations that pile up at a bound keep their max.

``fixtures/relu6_saturated_hist.npz`` is a real histogram (3073 bins of |x|, 20.5 M values): the first
depthwise ReLU6 output of a trained MobileNetV2 (``bench/calib_agreement.py``, 6000 steps, seed 0) over 500
synthetic vehicle crops. 63 % of it is exact zeros and 0.14 % sits at exactly 6. TensorRT's entropy method
cuts it at 2.71; with that cut alone the model's top-1 agreement with FP32 fell from 100 % to 97.2 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_calib_kit import save_model, tiny_classifier, write_images

from lanner.engine.calibrate import calibrate_model
from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.calibrate.methods import METHODS, compute_amax, saturated

FIXTURE = Path(__file__).parent / "fixtures" / "relu6_saturated_hist.npz"


def relu6_histogram() -> Histogram:
    data = np.load(FIXTURE)
    h = Histogram()
    h.counts, h.width, h.absmax = data["counts"].astype(np.int64), float(data["width"]), float(data["absmax"])
    return h


def one_shot(x: np.ndarray) -> Histogram:
    h = Histogram()
    h.add(x)
    return h


def test_saturated_relu6_output_keeps_its_max_under_entropy():
    h = relu6_histogram()
    assert h.absmax == 6.0 and saturated(h)
    assert compute_amax(h, "entropy", saturation_guard=False) == pytest.approx(2.7109375)  # TensorRT's cut
    assert compute_amax(h, "entropy") == 6.0


@pytest.mark.parametrize("method", [m for m in METHODS if m != "entropy"])
def test_the_guard_changes_entropy_only(method):
    h = relu6_histogram()
    assert compute_amax(h, method) == compute_amax(h, method, saturation_guard=False)


RNG = np.random.default_rng(0)
SMOOTH = {
    "normal": RNG.standard_normal(300_000),
    "uniform": RNG.uniform(-1, 1, 300_000),
    "relu(normal)": np.maximum(RNG.standard_normal(300_000), 0),
    "exponential": RNG.exponential(1.0, 300_000),
    "far outliers": np.concatenate([RNG.uniform(-1, 1, 100_000), [10.0, -10.0, 10.0]]),
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_tails_are_not_saturated_and_keep_tensorrts_threshold(name):
    h = one_shot(SMOOTH[name])
    assert not saturated(h)
    assert compute_amax(h, "entropy") == compute_amax(h, "entropy", saturation_guard=False)


def test_a_bound_reached_by_many_values_is_saturated():
    x = np.minimum(RNG.exponential(1.0, 300_000), 6.0)  # 0.25 % at exactly 6
    assert saturated(one_shot(x))
    assert not saturated(one_shot(np.minimum(RNG.exponential(1.0, 300_000), 20.0)))  # the bound is never reached


def test_calibration_records_the_guard_in_the_scale_table(tmp_path):
    model = save_model(tmp_path / "tiny.onnx", tiny_classifier())
    write_images(tmp_path / "images", 8)
    for guard in (True, False):
        calibrate_model(model, tmp_path / "images", tmp_path / f"g{guard}", count=8, batch=4, saturation_guard=guard)
        assert json.loads((tmp_path / f"g{guard}" / "scales.json").read_text())["saturation_guard"] is guard
    calibrate_model(model, tmp_path / "images", tmp_path / "mm", method="minmax", count=8, batch=4)
    assert json.loads((tmp_path / "mm" / "scales.json").read_text())["saturation_guard"] is None


def test_the_report_notes_how_far_tensorrt_would_have_clipped():
    from lanner.engine import load_onnx
    from lanner.engine.calibrate import prepare_graph
    from lanner.engine.calibrate.calibration import _saturation_notes
    from lanner.engine.calibrate.qdq import activations_to_quantize

    graph = prepare_graph(load_onnx(tiny_classifier()))
    quantized = activations_to_quantize(graph, set())
    stats = {"r1": relu6_histogram(), "r2": one_shot(SMOOTH["relu(normal)"])}
    amax = {name: compute_amax(h, "entropy") for name, h in stats.items()}
    notes = _saturation_notes(stats, amax, quantized)
    assert notes == [
        "1 saturated activation(s) kept their max; TensorRT's entropy would clip them to 0.45-0.45 x "
        "(--no-saturation-guard gives its thresholds)"
    ]
    assert _saturation_notes({"r2": stats["r2"]}, amax, quantized) == []
