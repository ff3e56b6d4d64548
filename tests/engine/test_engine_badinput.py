"""Bad input on the engine side: damaged plan files and re-calibrating an already quantized model.

Each case must end in one ``LannerError`` line, never a raw ``KeyError`` or a silently wrong result.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from test_calib_kit import save_model, tiny_classifier, write_images

from lanner.core.errors import DataError, UsageError
from lanner.engine.build import BuildConfig, build_engine
from lanner.engine.calibrate import calibrate_model
from lanner.engine.plan import FORMAT_VERSION, MAGIC, Plan, read_plan

_HEADER = struct.Struct("<8sIQ")


@pytest.fixture(scope="module")
def plan_bytes() -> bytes:
    return build_engine(tiny_classifier(), BuildConfig(batch=["1:2:4"], tune=False)).to_bytes()


def split(data: bytes) -> tuple[dict, bytes]:
    """A plan file's manifest (parsed) and its weights (safetensors bytes)."""
    _, _, length = _HEADER.unpack_from(data)
    return json.loads(data[_HEADER.size : _HEADER.size + length]), data[_HEADER.size + length :]


def canonical(manifest: object) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def join(manifest: object, weights: bytes) -> bytes:
    """A plan file from ``manifest`` and ``weights``; a manifest checksum present is recomputed (so an edit
    reaches the manifest's own checks, as from a tool that writes plans)."""
    if isinstance(manifest, dict) and "manifest_sha256" in manifest:
        del manifest["manifest_sha256"]
        manifest["manifest_sha256"] = hashlib.sha256(canonical(manifest)).hexdigest()
    text = canonical(manifest)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(text)) + text + weights


def test_plan_records_a_checksum_of_its_weights(plan_bytes: bytes) -> None:
    manifest, _ = split(plan_bytes)
    assert len(manifest["weights_sha256"]) == 64
    assert Plan.from_bytes(plan_bytes).to_bytes() == plan_bytes  # still deterministic and round-trips


def test_a_flipped_weight_byte_is_a_corrupt_plan_not_wrong_numbers(plan_bytes: bytes, tmp_path: Path) -> None:
    damaged = bytearray(plan_bytes)
    damaged[-1] ^= 0x40  # the last byte of the last weight tensor: safetensors still parses it
    (tmp_path / "flip.plan").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"flip.plan: corrupt plan file \(its weights do not match their checksum\)"):
        read_plan(tmp_path / "flip.plan")


def test_a_plan_without_a_checksum_still_loads(plan_bytes: bytes) -> None:
    manifest, weights = split(plan_bytes)
    del manifest["weights_sha256"], manifest["manifest_sha256"]  # plans written before the checksums existed
    plan = Plan.from_bytes(join(manifest, weights))
    assert [(p.min, p.opt, p.max) for p in plan.profiles] == [(1, 2, 4)]


def test_a_changed_digit_in_the_manifest_is_a_corrupt_plan(plan_bytes: bytes, tmp_path: Path) -> None:
    manifest, _ = split(plan_bytes)
    assert len(manifest["manifest_sha256"]) == 64
    text = plan_bytes[_HEADER.size : _HEADER.size + len(canonical(manifest))]
    at = text.index(b'"max":4') + len(b'"max":')  # a profile's max batch: 4 -> 5, still valid JSON
    damaged = bytearray(plan_bytes)
    damaged[_HEADER.size + at] = ord("5")
    (tmp_path / "edit.plan").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"edit\.plan: corrupt plan file \(its manifest does not match its checksum\)"):
        read_plan(tmp_path / "edit.plan")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("profiles"), "missing field 'profiles'"),
        (lambda m: m["graph"].pop("nodes"), "missing field 'nodes'"),
        (lambda m: m.__setitem__("profiles", [{"min": "one", "opt": 1, "max": 1, "tactics": {}}]), "ValueError"),
        (lambda m: m.__setitem__("layers", 7), "TypeError"),
    ],
)
def test_a_malformed_manifest_is_a_corrupt_plan(plan_bytes: bytes, edit, message: str) -> None:
    manifest, weights = split(plan_bytes)
    edit(manifest)
    with pytest.raises(DataError, match=rf"p.plan: corrupt plan file \(malformed manifest: .*{message}"):
        Plan.from_bytes(join(manifest, weights), where="p.plan")


def test_a_manifest_that_is_not_an_object_is_a_corrupt_plan(plan_bytes: bytes) -> None:
    _, weights = split(plan_bytes)
    with pytest.raises(DataError, match="corrupt plan file"):
        Plan.from_bytes(join([1, 2, 3], weights))


def test_calibrating_an_already_quantized_model_is_refused(tmp_path: Path) -> None:
    """Its DequantizeLinear outputs would get a second Q/DQ pair: a doubly quantized model, silently."""
    model = save_model(tmp_path / "tiny.onnx", tiny_classifier())
    write_images(tmp_path / "images", 4)
    report = calibrate_model(model, tmp_path / "images", tmp_path / "int8", count=4, batch=4)
    with pytest.raises(UsageError, match=r"tiny_int8.onnx: the model is already quantized \(\d+ Quantize") as info:
        calibrate_model(report.onnx_path, tmp_path / "images", tmp_path / "again", count=4, batch=4)
    assert "calibrate the FP32 model it came from" in str(info.value)
    with pytest.raises(UsageError, match="already quantized"):  # ranges from a cache change nothing
        calibrate_model(report.onnx_path, None, tmp_path / "again", cache=report.cache_path)
    assert not (tmp_path / "again").exists()


def test_engine_infer_rejects_feeds_that_are_not_a_mapping(plan_bytes: bytes) -> None:
    from lanner.engine.runtime import Engine

    engine = Engine(Plan.from_bytes(plan_bytes))
    with pytest.raises(DataError, match=r"feeds must be a mapping of input name to array, got list"):
        engine.infer([np.zeros((1, 3, 16, 16), np.float32)])  # type: ignore[arg-type]


def test_an_unwritable_plan_path_is_a_data_error(plan_bytes: bytes, tmp_path: Path) -> None:
    from lanner.engine.plan import write_plan

    plan = Plan.from_bytes(plan_bytes)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"file/m.plan: cannot write the plan file: .*; choose a writable file path"):
        write_plan(plan, tmp_path / "file" / "m.plan")  # a file where a folder should be
    with pytest.raises(DataError, match="cannot write the plan file"):
        write_plan(plan, tmp_path)  # a folder


def test_a_timing_cache_path_that_is_a_folder_fails_before_tuning(tmp_path: Path) -> None:
    from lanner.engine.timing_cache import TimingCache

    with pytest.raises(DataError, match="the timing cache path is a folder; pass a file path"):
        TimingCache.load(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"cannot write the timing cache: .*; pass a writable file path"):
        TimingCache().save(tmp_path / "file" / "t.json")


def test_a_file_given_as_the_calibration_folder_is_named_as_a_file(tmp_path: Path) -> None:
    from lanner.engine.calibrate.images import list_images

    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"a.png: the calibration image folder is a file, not a folder of images"):
        list_images(tmp_path / "a.png", 10)
    with pytest.raises(DataError, match=r"nope: the calibration image folder does not exist"):
        list_images(tmp_path / "nope", 10)
