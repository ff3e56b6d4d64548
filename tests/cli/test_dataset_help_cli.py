"""What a newcomer sees of ``lanner dataset``: whole one-line summaries, the work order, and examples that run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from lanner.cli.dataset import ORDER, dataset
from lanner.cli.main import main

OURS = [name for name in ORDER if name != "synth"]  # synth lives in cli/synth.py (test_walkthrough_cli.py)


def help_text(args: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def commands_section(text: str) -> list[str]:
    return [line for line in text.split("Commands:")[1].splitlines() if line.startswith("  ")]


def examples(text: str) -> list[str]:
    """The example lines of a ``--help``: indented under ``Examples:``, kept whole by click's ``\\b``."""
    return re.findall(r"^    (lanner dataset .+)$", text.split("Examples:")[1].split("Options:")[0], re.MULTILINE)


def test_the_dataset_summary_in_lanner_help_is_whole(capsys: pytest.CaptureFixture) -> None:
    line = next(line for line in commands_section(help_text([], capsys)) if line.split()[0] == "dataset")
    assert line.split(None, 1)[1] == "Make, inspect, convert, check, split and augment datasets."


def test_dataset_help_lists_whole_summaries_in_the_order_of_the_work(capsys: pytest.CaptureFixture) -> None:
    lines = commands_section(help_text(["dataset"], capsys))
    assert [line.split()[0] for line in lines] == list(ORDER) == sorted(dataset.commands, key=ORDER.index)
    assert all(line.rstrip().endswith(".") and not line.rstrip().endswith("...") for line in lines), lines


@pytest.mark.parametrize("args", [["dataset"], *(["dataset", name] for name in OURS)], ids=" ".join)
def test_every_dataset_help_has_examples_on_their_own_lines(args: list[str], capsys) -> None:
    text = help_text(args, capsys)
    assert re.search(r"^  Examples?:$", text, re.MULTILINE), text
    assert examples(text) and all(e.startswith(" ".join(["lanner", *args])) for e in examples(text)), text


@pytest.mark.parametrize("name", OURS)
def test_every_option_says_what_it_does(name: str) -> None:
    params = dataset.commands[name].params
    assert [p.name for p in params if isinstance(p, click.Option) and not p.help] == []


def test_every_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """On a tiny synthetic set at ``data/cars``, in the order of the work (convert's make ``data/cars_coco``)."""
    monkeypatch.chdir(tmp_path)
    assert main(["dataset", "synth", "--out", "data/cars", "--images", "8", "--resolution", "160x96"]) == 0
    capsys.readouterr()
    for name in OURS:
        for example in examples(help_text(["dataset", name], capsys)):
            assert main(shlex.split(example)[1:]) == 0, f"{example}: {capsys.readouterr().err}"
    assert Path("data/cars_yolo/data.yaml").is_file() and Path("cars_stats.png").is_file()
