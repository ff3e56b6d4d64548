"""The clipping report of calibration: fractions from the histograms, the order, the PNG and the CLI lines."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_calib_kit import save_model, tiny_classifier, write_images

from lanner.engine.calibrate import calibrate_model
from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.calibrate.report import clipped_fraction, clipping_table, plot_clipping

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hist_of(values) -> Histogram:
    h = Histogram()
    h.add(np.asarray(values, np.float32))
    return h


@pytest.mark.parametrize(
    ("values", "amax", "expected"),
    [
        ([1.0] * 99 + [10.0], 5.0, 0.01),  # one value of 100 above the threshold
        ([1.0] * 99 + [10.0], 10.0, 0.0),  # minmax clips nothing
        ([0.0] * 50 + [2.0] * 50, 1.0, 0.5),  # exact zeros count below
        ([-3.0, 3.0, 0.5, -0.5], 2.0, 0.5),  # |x|: the sign does not matter
    ],
)
def test_clipped_fraction_counts_the_values_above_amax(values, amax, expected) -> None:
    assert clipped_fraction(hist_of(values), amax) == pytest.approx(expected, abs=1e-3)


def test_a_threshold_inside_a_bin_counts_that_bin_in_proportion() -> None:
    h = hist_of(np.linspace(0, 1, 100_001))  # uniform: the fraction above t is 1 - t
    for t in (0.1, 0.37, 0.9):
        assert clipped_fraction(h, t) == pytest.approx(1 - t, abs=1e-4)


def test_the_table_lists_the_named_tensors_most_clipped_first(tmp_path) -> None:
    stats = {"a": hist_of([1.0] * 9 + [8.0]), "b": hist_of([1.0] * 3 + [8.0]), "c": hist_of([1.0, 2.0])}
    rows = clipping_table(stats, {"a": 4.0, "b": 4.0, "c": 2.0})
    assert [r.name for r in rows] == ["b", "a", "c"]
    assert rows[0].clipped == pytest.approx(0.25) and rows[0].ratio == pytest.approx(0.5)
    assert rows[0].describe() == "b: amax 0.50x of its max, 25% of values clipped"
    assert [r.name for r in clipping_table(stats, {"a": 4.0, "b": 4.0, "c": 2.0}, names=["c", "a"])] == ["a", "c"]
    path = plot_clipping(stats, rows, tmp_path / "sub" / "c.png", top=2)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_calibrating_from_images_writes_the_plot_and_a_cache_does_not(tmp_path) -> None:
    model = save_model(tmp_path / "tiny.onnx", tiny_classifier())
    write_images(tmp_path / "images", 8)
    report = calibrate_model(model, tmp_path / "images", tmp_path / "out", method="entropy", count=8, batch=4)
    assert report.plot_path == tmp_path / "out" / "calibration.png"
    assert report.plot_path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(r.name for r in report.clipping) == sorted(report.quantized.quantized)
    assert [r.clipped for r in report.clipping] == sorted((r.clipped for r in report.clipping), reverse=True)
    again = calibrate_model(model, None, tmp_path / "again", cache=report.cache_path)
    assert again.plot_path is None and again.clipping == [] and not (tmp_path / "again" / "calibration.png").exists()


def test_the_cli_names_the_most_clipped_tensors_and_the_plot(tmp_path) -> None:
    from lanner.cli.main import cli

    model = save_model(tmp_path / "tiny.onnx", tiny_classifier())
    write_images(tmp_path / "images", 8)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["calibrate", str(model), "--images", str(tmp_path / "images"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'calibration.png'}" in result.output
    assert "most clipped: " in result.output and "of its max" in result.output


def test_the_module_example_runs() -> None:
    import doctest

    from lanner.engine.calibrate import report

    assert doctest.testmod(report).failed == 0
