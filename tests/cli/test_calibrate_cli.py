"""``lanner calibrate``: arguments, outputs, --cache, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lanner.cli.calibrate import calibrate
from lanner.core.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_calib_kit import save_model, tiny_classifier, write_images


@click.group()
def cli() -> None:
    """Stands in for the main group until the command is registered there."""


cli.add_command(calibrate)


def invoke(*args: str):
    return CliRunner().invoke(cli, ["calibrate", *args])


@pytest.fixture
def model(tmp_path):
    return save_model(tmp_path / "tiny.onnx", tiny_classifier())


def test_calibrate_writes_qdq_onnx_scales_and_cache(model, tmp_path):
    write_images(tmp_path / "images", 12)
    out = tmp_path / "out"
    result = invoke(str(model), "--images", str(tmp_path / "images"), "--method", "percentile", "--count", "10",
                    "--batch", "4", "--exclude", "fc", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 activations and 2 weights quantized (1 nodes kept in FP32)" in result.output  # fc pinned
    assert "from 10 images in batches of 4" in result.output
    for name in ("tiny_int8.onnx", "scales.json", "calibration.cache"):
        assert (out / name).is_file() and f"wrote {out / name}" in result.output
    qdq = out / "tiny_int8.onnx"
    assert f"next: lanner build {qdq} --precision int8 -o {qdq.with_suffix('.plan')}" in result.output
    header = (out / "calibration.cache").read_text().splitlines()[0]
    assert header == "TRT-8601-EntropyCalibration2"
    again = invoke(str(model), "--cache", str(out / "calibration.cache"), "--exclude", "fc", "-o", str(tmp_path / "o2"))
    assert again.exit_code == 0, again.output
    assert "from 9 cached ranges" in again.output
    assert (tmp_path / "o2" / "tiny_int8.onnx").read_bytes() == (out / "tiny_int8.onnx").read_bytes()


def test_minmax_header_and_trt_version(model, tmp_path):
    write_images(tmp_path / "images", 3)
    result = invoke(str(model), "--images", str(tmp_path / "images"), "--method", "minmax", "--trt-version", "100300",
                    "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "calibration.cache").read_text().startswith("TRT-100300-MinMaxCalibration\n")


def test_no_saturation_guard_reaches_the_scale_table(model, tmp_path):
    import json

    write_images(tmp_path / "images", 4)
    result = invoke(
        str(model), "--images", str(tmp_path / "images"), "--no-saturation-guard", "-o", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "scales.json").read_text())["saturation_guard"] is False


@pytest.mark.parametrize(
    ("setup", "args", "error", "message"),
    [
        ("empty", ["--images", "{tmp}/images"], DataError, "no images in the calibration folder"),
        ("images", ["--images", "{tmp}/images", "--exclude", "Conv2d"], ConfigError, "did you mean 'Conv'"),
        ("bad-cache", ["--cache", "{tmp}/bad.cache"], DataError, "bad.cache:2: expected 'tensor_name"),
        ("images", ["--images", "{tmp}/images", "--percentile", "0"], ConfigError, "percentile must be in"),
    ],
)
def test_errors_are_lanner_errors(model, tmp_path, setup, args, error, message):
    (tmp_path / "images").mkdir()
    if setup == "images":
        write_images(tmp_path / "images", 2)
    (tmp_path / "bad.cache").write_text("TRT-8601-EntropyCalibration2\nimages 3c010a14\n")
    result = invoke(str(model), *[a.format(tmp=tmp_path) for a in args], "-o", str(tmp_path / "out"))
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)


def test_usage_errors(model, tmp_path):
    result = invoke(str(model), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "give --images DIR" in result.output
    result = invoke(str(model), "--images", str(tmp_path), "--count", "1001", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "1001" in result.output
    result = invoke(str(model), "--images", str(tmp_path), "--method", "kl", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
