"""What a newcomer sees first: ``lanner --help``, each command's ``--help``, and the ``next:`` hints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lanner.cli import app
from lanner.cli.main import cli, main

WORKFLOW = [
    "demo",
    "dataset",
    "train",
    "evaluate",
    "infer",
    "export",
    "calibrate",
    "build",
    "bench",
    "compare",
    "run",
    "env",
]
# every command but the dataset group (cli/dataset.py has its own owner); synth is reached through it
WITH_EXAMPLES = [[name] for name in WORKFLOW if name != "dataset"] + [["dataset", "synth"]]


def help_text(args: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def test_top_help_lists_commands_in_workflow_order_and_says_where_to_start(capsys) -> None:
    text = help_text([], capsys)
    commands = text.split("Commands:")[1]
    listed = [m[1] for m in re.finditer(r"^  (\w+) ", commands, re.MULTILINE) if m[1] in cli.commands]
    assert listed == WORKFLOW
    assert "New to lanner? Start with:" in text and "lanner demo " in text
    cut = [line for line in commands.splitlines() if line.rstrip().endswith("...")]
    assert cut == []  # every summary is a whole sentence


def test_no_arguments_prints_the_help_with_the_start_here_lines(capsys) -> None:
    main([])
    assert "New to lanner? Start with:" in capsys.readouterr().err


@pytest.mark.parametrize("args", WITH_EXAMPLES, ids=" ".join)
def test_every_command_help_has_a_runnable_example(args: list[str], capsys) -> None:
    text = help_text(args, capsys)
    assert re.search(r"^  Examples?:$", text, re.MULTILINE), text
    # the example sits on its own line (\b keeps click from re-wrapping it into the paragraph)
    assert re.search(rf"^    lanner {' '.join(args)} ", text, re.MULTILINE), text


def test_synth_says_what_to_run_next_and_quiet_hides_it(tmp_path: Path, capsys) -> None:
    args = ["dataset", "synth", "--images", "2", "--resolution", "64x64"]
    assert main([*args, "--out", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    assert "wrote 2 images" in captured.out
    assert f"next: lanner dataset stats {tmp_path / 'd'}\n" in captured.err
    assert f"next: lanner dataset split {tmp_path / 'd'} --out {tmp_path / 'd'}_split --val 0.2" in captured.err
    assert main(["-q", *args, "--out", str(tmp_path / "q")]) == 0
    assert "next:" not in capsys.readouterr().err


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_a_line_per_interval_with_an_eta(capsys) -> None:
    clock = FakeClock()
    advance = app.PlainProgress("rendering", 100, clock=clock)
    advance(10)  # no time has passed: nothing
    clock.now += app.PLAIN_INTERVAL_S
    advance(10)
    clock.now += app.PLAIN_INTERVAL_S / 2
    advance(10)  # half an interval since the last line: nothing
    assert capsys.readouterr().err == f"rendering: 20/100 (20%, {app.PLAIN_INTERVAL_S:.0f} s, eta 40 s)\n"


def test_plain_progress_of_a_resumed_or_open_ended_job(capsys) -> None:
    clock = FakeClock()
    resumed = app.PlainProgress("training steps", 100, done=50, clock=clock)
    open_ended = app.PlainProgress("converting", None, clock=clock)
    clock.now += 20
    resumed(10)  # 10 steps in 20 s, 40 to go: 80 s, not the 40 s the 60 done so far would suggest
    open_ended(7)
    assert capsys.readouterr().err.splitlines() == [
        "training steps: 60/100 (60%, 20 s, eta 80 s)",
        "converting: 7 done (20 s)",
    ]


def test_without_a_terminal_long_work_prints_plain_progress_lines(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(app, "PLAIN_INTERVAL_S", 0.0)  # every step is "long": a line each
    args = ["dataset", "synth", "--images", "2", "--resolution", "64x64"]
    assert main([*args, "--out", str(tmp_path / "d")]) == 0
    assert "rendering: 2/2 (100%, " in capsys.readouterr().err
    assert main(["-q", *args, "--out", str(tmp_path / "q")]) == 0
    assert "rendering:" not in capsys.readouterr().err
