"""The TensorRT calibration cache: writing, reading back, hand-written caches, malformed ones."""

from __future__ import annotations

import numpy as np
import pytest

from lanner.core.errors import DataError
from lanner.engine.calibrate.cache import format_cache, hex_to_scale, parse_cache, read_cache, scale_to_hex, write_cache


def test_hex_is_the_big_endian_float32_bit_pattern():
    assert scale_to_hex(1.0) == "3f800000"
    assert scale_to_hex(2.0) == "40000000"
    assert scale_to_hex(-0.5) == "bf000000"
    assert hex_to_scale("3f800000") == 1.0
    assert hex_to_scale("800000") == np.float32(2.0**-126)  # printf("%x") drops leading zeros


def test_write_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    scales = {f"/layer{i}/Conv_output_0": float(np.float32(s)) for i, s in enumerate(rng.uniform(1e-4, 3, 50))}
    scales["(Unnamed Layer* 8) [Constant]_output"] = 0.25
    path = write_cache(tmp_path / "calibration.cache", scales, algorithm="MinMaxCalibration", version="100300")
    cache = read_cache(path)
    assert (cache.version, cache.algorithm) == ("100300", "MinMaxCalibration")
    assert cache.scales == scales  # exact: float32 values survive the hex round trip
    assert list(cache.scales) == list(scales)  # and the order too
    assert path.read_text().splitlines()[0] == "TRT-100300-MinMaxCalibration"


def test_reads_the_caches_quoted_by_onnxruntime_and_tensorrt_users():
    cache = parse_cache("TRT-7103-EntropyCalibration2\ndata_0: 4000889d\n")
    assert cache.version == "7103" and cache.algorithm == "EntropyCalibration2"
    assert cache.scales["data_0"] == pytest.approx(2.0083382)
    assert cache.amax()["data_0"] == pytest.approx(255.06, abs=0.01)  # ORT: dynamic range = scale * 127
    text = (
        "TRT-8510-EntropyCalibration2\n"
        "x: 4000890a\n"
        "/conv1/Conv_output_0: 3f9db09c\n"
        "(Unnamed Layer* 8) [Constant]_output: 3c010a14\n"
    )
    cache = parse_cache(text)
    assert list(cache.scales) == ["x", "/conv1/Conv_output_0", "(Unnamed Layer* 8) [Constant]_output"]
    assert cache.scales["/conv1/Conv_output_0"] == pytest.approx(1.2319522)
    assert format_cache(cache.scales, algorithm="EntropyCalibration2", version="8510") == text


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("", 1, "not a TensorRT calibration cache"),
        ("x: 3f800000\n", 1, "not a TensorRT calibration cache"),
        ("TRT-8601-EntropyCalibration2\nx: 3f800000\ny 3f800000\n", 3, "expected 'tensor_name: <hex"),
        ("TRT-8601-EntropyCalibration2\nx: 3f80000g\n", 2, "expected 'tensor_name: <hex"),
        ("TRT-8601-EntropyCalibration2\nx: 13f800000\n", 2, "expected 'tensor_name: <hex"),
        ("TRT-8601-EntropyCalibration2\n: 3f800000\n", 2, "expected 'tensor_name: <hex"),
        ("TRT-8601-EntropyCalibration2\nx: 0\n", 2, "not a positive number"),
        ("TRT-8601-EntropyCalibration2\nx: bf800000\n", 2, "not a positive number"),
        ("TRT-8601-EntropyCalibration2\nx: 7fc00000\n", 2, "not a positive number"),
        ("TRT-8601-EntropyCalibration2\nx: 3f800000\n\nx: 3f800000\n", 4, "listed twice"),
    ],
)
def test_malformed_cache_is_one_error_with_the_line(text, line, what):
    with pytest.raises(DataError, match=what) as info:
        parse_cache(text, where="my.cache")
    assert str(info.value).startswith(f"my.cache:{line}: ")


def test_unreadable_file_and_bad_header_arguments(tmp_path):
    with pytest.raises(DataError, match="cannot read the calibration cache"):
        read_cache(tmp_path / "missing.cache")
    with pytest.raises(DataError, match="unknown TensorRT calibration algorithm"):
        format_cache({"x": 1.0}, algorithm="Entropy3")
    with pytest.raises(DataError, match="is not a number"):
        format_cache({"x": 1.0}, version="8.6")
