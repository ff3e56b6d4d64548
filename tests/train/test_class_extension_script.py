"""``experiments/class_extension.py`` refuses arguments it cannot apply, before rendering anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "class_extension.py"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "3"], "--epochs is ambiguous here: use --base-epochs and --extend-epochs"),
        (["--base-checkpoint", "missing.safetensors"], "--base-checkpoint missing.safetensors: no such file"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(tmp_path, args, message) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "run"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1]
    assert not (tmp_path / "run").exists()  # nothing rendered or trained
