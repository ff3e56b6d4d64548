"""Ctrl-C in a command that writes a dataset: one line, exit 130, and the half-written folder is refused
by every reader until the command is run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.cli.main import main


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_an_interrupted_synth_is_refused_until_it_is_run_again(tmp_path: Path, capsys, monkeypatch) -> None:
    import lanner.cli.synth as synth_cli

    real = synth_cli.generate_images

    def half_then_ctrl_c(config, out_dir, fmt, progress=None):
        real(config.model_copy(update={"images": 2}), out_dir, fmt)  # some images and labels are on disk
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_cli, "generate_images", half_then_ctrl_c)
    out = tmp_path / "d"
    args = ["dataset", "synth", "--out", str(out), "--images", "4", "--resolution", "128x64"]
    assert main(args) == 130
    line = last_line(capsys.readouterr().err)
    assert line.startswith(f"{out}: interrupted: lanner dataset synth did not finish; the folder is marked incomplete")
    for command in (["dataset", "validate", str(out)], ["dataset", "stats", str(out)]):
        assert main(command) == 1
        assert last_line(capsys.readouterr().err) == (
            f"error: {out}: incomplete: lanner dataset synth did not finish writing it; "
            "run lanner dataset synth again (with --force where it asks), or delete the folder"
        )
    monkeypatch.setattr(synth_cli, "generate_images", real)
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert main(["dataset", "validate", str(out)]) == 0


def test_an_interrupted_augment_marks_its_output(tmp_path: Path, capsys, monkeypatch) -> None:
    import lanner.train.offline_augment as offline

    assert main(["dataset", "synth", "--out", str(tmp_path / "d"), "--images", "3", "--resolution", "128x64"]) == 0

    def ctrl_c(plan, progress):
        (plan.dst / "images").mkdir(parents=True, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(offline, "_augment_all", ctrl_c)
    assert main(["dataset", "augment", str(tmp_path / "d"), "--out", str(tmp_path / "aug")]) == 130
    assert "lanner dataset augment did not finish" in last_line(capsys.readouterr().err)
    assert main(["dataset", "stats", str(tmp_path / "aug")]) == 1
    assert "incomplete: lanner dataset augment did not finish writing it" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["convert", "split"])
def test_an_interrupted_convert_or_split_marks_its_output(tmp_path: Path, capsys, monkeypatch, command) -> None:
    import lanner.cli.dataset as dataset_cli

    assert main(["dataset", "synth", "--out", str(tmp_path / "d"), "--images", "3", "--resolution", "128x64"]) == 0
    target = "write_dataset" if command == "convert" else "write_split"

    def ctrl_c(src_or_ds, out_dir, *args, **kwargs):
        (Path(out_dir) / "labels").mkdir(parents=True, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset_cli, target, ctrl_c)
    extra = ["--to", "coco", "--out"] if command == "convert" else ["--out"]
    assert main(["dataset", command, str(tmp_path / "d"), *extra, str(tmp_path / "o")]) == 130
    assert f"lanner dataset {command} did not finish" in last_line(capsys.readouterr().err)
    assert main(["dataset", "validate", str(tmp_path / "o")]) == 1
    assert f"incomplete: lanner dataset {command} did not finish writing it" in capsys.readouterr().err
