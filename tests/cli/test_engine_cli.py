"""``lanner build / bench / compare`` (cli/engine.py) through a click group wired like ``cli/main.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lanner.cli import engine as engine_cli
from lanner.cli.app import CliState
from lanner.core.errors import LannerError
from lanner.engine.runtime import Engine

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.obj = CliState()


for command in (engine_cli.build, engine_cli.bench, engine_cli.compare):
    cli.add_command(command)


def run(args: list[str]) -> int:
    """Like ``lanner.cli.main.main``: 0 ok, the error's exit code after one ``error:`` line."""
    try:
        cli.main(args=args, prog_name="lanner", standalone_mode=False)
    except LannerError as exc:
        print(f"error: {exc}")
        return exc.exit_code
    return 0


def write_model(path: Path, op: str = "Relu") -> Path:
    """Conv(3→4, 3x3) + bias → ``op`` → GlobalAveragePool → Flatten → Gemm, dynamic batch, 8x8 images."""
    rng = np.random.default_rng(0)
    inits = {
        "w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "fc": rng.standard_normal((2, 4)).astype(np.float32),
        "fcb": rng.standard_normal(2).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node(op, ["c"], ["a"], name="act"),
        helper.make_node("GlobalAveragePool", ["a"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["output"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_build_writes_a_plan_and_prints_layer_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = write_model(tmp_path / "m.onnx")
    args = [
        "build",
        str(model),
        "--batch",
        "1:2:4",
        "-o",
        str(tmp_path / "m.plan"),
        "--timing-cache",
        str(tmp_path / "t.json"),
    ]
    assert run(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "Original: 5 layers → after fusion: 4" in text and "profile 1:2:4: tactics" in text
    assert f"next: lanner bench {tmp_path / 'm.plan'}\n" in captured.err
    assert f"wrote {tmp_path / 'm.plan'}" in text
    engine = Engine.load(tmp_path / "m.plan")
    assert engine.infer({"images": np.zeros((3, 3, 8, 8), np.float32)})["output"].shape == (3, 2)
    assert run([*args, "--cache-mode", "replay", "-o", str(tmp_path / "r1.plan")]) == 0
    assert run([*args, "--cache-mode", "replay", "-o", str(tmp_path / "r2.plan")]) == 0
    assert (tmp_path / "r1.plan").read_bytes() == (tmp_path / "r2.plan").read_bytes()


def test_build_check_lists_coverage(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["build", "--check", str(write_model(tmp_path / "ok.onnx"))]) == 0
    out = capsys.readouterr().out
    assert "opset 17: 5 ops, 0 unsupported" in out and "ok    Conv" in out
    assert run(["build", "--check", str(write_model(tmp_path / "bad.onnx", op="FancyAct"))]) == 1
    out = capsys.readouterr().out
    assert "FAIL  FancyAct" in out and "error: " in out and "1 unsupported op type(s)" in out


def test_build_int8_without_calibration_data_says_what_to_pass(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["build", str(write_model(tmp_path / "m.onnx")), "--precision", "int8"]) == 2
    assert "needs calibration data" in capsys.readouterr().out and not (tmp_path / "m.plan").exists()


def _calibration_images(folder: Path, n: int = 24) -> Path:
    import cv2

    rng = np.random.default_rng(1)
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return folder


def test_build_int8_calibrates_then_builds_quantized_convs(tmp_path: Path) -> None:
    model, images = write_model(tmp_path / "m.onnx"), _calibration_images(tmp_path / "calib")
    plan = tmp_path / "m_int8.plan"
    args = ["build", str(model), "--precision", "int8", "--calib", str(images), "--no-tune", "-o", str(plan)]
    assert run(args) == 0
    calib = tmp_path / "m_int8_calib"
    qdq, cache = calib / "m_int8.onnx", calib / "calibration.cache"
    assert qdq.is_file() and cache.is_file() and (calib / "scales.json").is_file()
    engine = Engine.load(plan)
    assert "QConv" in {node.op_type for node in engine.plan.graph.nodes}  # the Q/DQ pairs were folded
    x = np.random.default_rng(2).uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    fp32 = Engine.load(_fp32_plan(model, tmp_path)).infer({"images": x})["output"]
    int8 = engine.infer({"images": x})["output"]
    assert np.linalg.norm(int8 - fp32) / np.linalg.norm(fp32) < 0.1  # 8-bit ranges over [0, 1] inputs
    # the cache (TensorRT format) and the QDQ model each rebuild the same plan without images
    for again in (["--calib-cache", str(cache)], []):
        source = str(model) if again else str(qdq)
        other = tmp_path / f"again{len(again)}.plan"
        assert run(["build", source, "--precision", "int8", *again, "--no-tune", "-o", str(other)]) == 0
        np.testing.assert_allclose(Engine.load(other).infer({"images": x})["output"], int8, rtol=1e-5, atol=1e-6)


def _fp32_plan(model: Path, tmp_path: Path) -> Path:
    assert run(["build", str(model), "--no-tune", "-o", str(tmp_path / "fp32.plan")]) == 0
    return tmp_path / "fp32.plan"


@pytest.mark.parametrize("source", ["plan", "onnx"])
def test_bench_prints_trtexec_metrics(tmp_path: Path, capsys: pytest.CaptureFixture, source: str) -> None:
    model = write_model(tmp_path / "m.onnx")
    target = model
    if source == "plan":
        assert run(["build", str(model), "--batch", "2", "--no-tune", "-o", str(tmp_path / "m.plan")]) == 0
        target = tmp_path / "m.plan"
    capsys.readouterr()
    assert run(["bench", str(target), "--batch", "2", "--iterations", "5", "--warmup", "1", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "Throughput: " in out and "images/s at batch 2" in out
    for metric in ("min = ", "mean = ", "median = ", "percentile(90%)", "percentile(95%)", "percentile(99%)"):
        assert metric in out
    assert "=== Profile" in out and "conv + act [FusedConv]" in out and "total" in out


def test_bench_outside_the_profiles_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = write_model(tmp_path / "m.onnx")
    assert run(["build", str(model), "--batch", "1:1:2", "--no-tune", "-o", str(tmp_path / "m.plan")]) == 0
    assert run(["bench", str(tmp_path / "m.plan"), "--batch", "8", "--iterations", "1"]) == 1
    assert "batch 8 is outside the plan's optimization profiles (1..2)" in capsys.readouterr().out


def test_compare_passes_per_output_and_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = write_model(tmp_path / "m.onnx")
    assert run(["compare", str(model), "--against", "onnxruntime", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "ok    output [2, 2]: max abs" in out and "PASSED: 1/1 tensors" in out
    assert run(["compare", str(model), "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "per layer: 4 tensors computed by both sides" in out and "ok    a [1, 4, 8, 8]" in out


def test_compare_reports_a_mismatch_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    model = write_model(tmp_path / "m.onnx")
    real = engine_cli._run_onnxruntime

    def perturbed(*args):
        result = real(*args)
        return {k: v + 1.0 for k, v in result.items()}

    monkeypatch.setattr(engine_cli, "_run_onnxruntime", perturbed)
    assert run(["compare", str(model)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  output" in out and "FAILED: 0/1 tensors" in out and "1 tensor(s) differ from onnxruntime" in out


def test_no_spin_sets_the_openmp_wait_policy_only_before_torch_loads(monkeypatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh `lanner` process, where torch loads lazily
    engine_cli.passive_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.undo()
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    engine_cli.passive_threads()  # torch is loaded in the test process: too late, and it says so
    assert "OMP_WAIT_POLICY" not in os.environ


def test_build_int8_prints_the_calibration_notes(tmp_path: Path, monkeypatch, capsys) -> None:
    import dataclasses

    from lanner.engine.calibrate import calibration

    real = calibration.calibrate_model

    def with_note(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), notes=["3 saturated activation(s) kept their max"])

    monkeypatch.setattr(calibration, "calibrate_model", with_note)
    model, images = write_model(tmp_path / "m.onnx"), _calibration_images(tmp_path / "calib")
    args = [
        "build",
        str(model),
        "--precision",
        "int8",
        "--calib",
        str(images),
        "--no-tune",
        "-o",
        str(tmp_path / "m.plan"),
    ]
    assert run(args) == 0
    captured = capsys.readouterr()
    assert "note: 3 saturated activation(s) kept their max" in captured.out + captured.err  # info() writes to stderr


def test_dynamic_image_size_needs_input_size_on_every_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = onnx.load(str(write_model(tmp_path / "m.onnx")))
    for i, name in ((2, "H"), (3, "W")):  # height and width symbolic, as Ultralytics' dynamic=True exports them
        model.graph.input[0].type.tensor_type.shape.dim[i].dim_param = name
    onnx.save(model, str(tmp_path / "dyn.onnx"))
    source = str(tmp_path / "dyn.onnx")
    assert run(["build", source, "--no-tune", "-o", str(tmp_path / "x.plan")]) == 2
    assert "build it at one size with --input-size HxW" in capsys.readouterr().out
    assert run(["build", source, "--no-tune", "--input-size", "16x24", "-o", str(tmp_path / "d.plan")]) == 0
    assert Engine.load(tmp_path / "d.plan").inputs[0].shape[1:] == (3, 16, 24)
    assert run(["bench", source, "--input-size", "16x24", "--iterations", "2", "--warmup", "0"]) == 0
    assert run(["compare", source, "--input-size", "12"]) == 0
    assert "PASSED: 1/1" in capsys.readouterr().out
    assert run(["bench", str(tmp_path / "d.plan"), "--input-size", "16x24"]) == 2
    assert "a plan runs at the size it was built for" in capsys.readouterr().out
