"""Bad input through the real ``lanner`` entry point (engine side): one clear line, the user's text intact."""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lanner.cli.main import cli, main
from lanner.core.errors import ConfigError

pytest.importorskip("torch")


def write_conv(path: Path, batch: int | str) -> Path:
    """Conv(3→4, 3x3) + Relu on 8x8 images, with a fixed (int) or dynamic (str) batch."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def failing_command():
    """A throwaway sub-command that raises what the test asks for."""
    holder: dict[str, BaseException] = {}

    @click.command("boom_b")
    def boom() -> None:
        raise holder["error"]

    cli.add_command(boom)
    yield holder
    cli.commands.pop("boom_b")


@pytest.mark.parametrize(
    "text",
    [
        "[source0] type='abc' is not a number",  # DeepStream group names look like rich markup tags
        "cannot open /data/[/]/cam.mp4",  # a closing tag with nothing to close used to crash the error printer
        "bad batch profile 'a:b:c'",  # ':b:' is an emoji code
    ],
)
def test_error_lines_print_the_message_verbatim(failing_command, capsys, text: str) -> None:
    failing_command["error"] = ConfigError(text, where="x.txt")
    assert main(["boom_b"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: x.txt: {text}"


@pytest.mark.parametrize("command", ["bench", "compare"])
def test_a_batch_other_than_the_fixed_one_is_refused(tmp_path: Path, capsys, command: str) -> None:
    """bench used to run batch 1 and report 4x the throughput; compare compared batch 1 and said PASSED."""
    model = write_conv(tmp_path / "fixed.onnx", 1)
    extra = ["--iterations", "1", "--warmup", "0"] if command == "bench" else []
    assert main([command, str(model), "--batch", "4", *extra]) == 2
    err = capsys.readouterr().err
    assert "fixed.onnx: --batch 4: the model has a fixed batch of 1; use --batch 1" in err
    assert main([command, str(model), *extra]) == 0  # the default is the model's own batch
    assert main([command, str(model), "--batch", "1", *extra]) == 0


def test_bench_defaults_to_the_fixed_batch_of_the_model(tmp_path: Path, capsys) -> None:
    model = write_conv(tmp_path / "fixed2.onnx", 2)
    assert main(["bench", str(model), "--iterations", "1", "--warmup", "0"]) == 0
    assert "images/s at batch 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "--batch", "-3"],  # was a raw "ValueError: negative dimensions are not allowed"
        ["bench", "--batch", "0"],
        ["bench", "--threads", "-1"],  # was a raw RuntimeError from torch.set_num_threads
        ["bench", "--threads", "0"],
        ["bench", "--iterations", "0"],
        ["compare", "--batch", "0"],  # compared empty tensors and said PASSED
    ],
)
def test_out_of_range_numbers_are_usage_errors(tmp_path: Path, capsys, args: list[str]) -> None:
    model = write_conv(tmp_path / "dyn.onnx", "N")
    assert main([args[0], str(model), *args[1:]]) == 2
    assert "Invalid value for" in capsys.readouterr().err


def test_a_bracketed_path_is_printed_as_is(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "[cam]"
    folder.mkdir()
    (folder / "m.onnx").write_bytes(b"not onnx")
    assert main(["build", str(folder / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert f"building {folder / 'm.onnx'}" in err and f"error: {folder / 'm.onnx'}: not a valid ONNX model" in err


def test_build_into_a_folder_fails_before_building(tmp_path: Path, capsys) -> None:
    model = write_conv(tmp_path / "dyn.onnx", "N")
    assert main(["build", str(model), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"-o {tmp_path} is a folder; give a plan file path" in err and "building" not in err


def test_the_run_summary_table_shows_bracketed_names_and_errors_verbatim() -> None:
    """A source named "[/]" used to crash the table (MarkupError) after the whole run; "[cam]" vanished."""
    from types import SimpleNamespace

    from rich.console import Console

    from lanner.cli.run import summary_table

    error = "source 0 'cam' (/data/[cam]/a.mp4): file not found"
    summary = SimpleNamespace(
        frames=3, duration_s=1.0, fps=3.0, stopped_by="eos", stages={},
        analytics={"lines": {"[b]": {"in": 1, "out": 0}}},
        sources={0: {"name": "[/]", "frames": 3, "inferred": 3, "fps": 3.0, "error": error}},
        sinks={"jsonl:[x].jsonl": {"written": 3, "dropped": 0, "failed": 0, "error": None}},
    )  # fmt: skip
    with open(os.devnull, "w") as sink:
        console = Console(width=300, record=True, file=sink)
        console.print(summary_table(summary))
    text = console.export_text()
    for shown in ("source 0 [/]", error, "sink jsonl:[x].jsonl", "line [b]"):
        assert shown in text
