"""``lanner train -e spec.yaml -r results/``: a run, and each bad input as one clear error line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lanner.cli import app
from lanner.cli.main import cli, main
from lanner.cli.train import train
from lanner.models import create_model, save_checkpoint

if "train" not in cli.commands:  # the lead registers it in main.py; until then the test does
    cli.add_command(train)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lanner.data.synth import SynthConfig, generate_images

    root = tmp_path_factory.mktemp("train_cli")
    config = SynthConfig(images=4, width=128, height=64, seed=5, actors_min=1, actors_max=3)
    generate_images(config, root / "train")
    return root / "train"


def write_spec(tmp_path: Path, data: Path, extra: str = "") -> Path:
    text = f"""dataset:
  train: {data}
model:
  name: yolox_nano
  input_size: [64, 96]
training:
  epochs: 1
  batch_size: 2
  workers: 0
  device: cpu
  max_steps_per_epoch: 1
{extra}"""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_writes_results(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    spec = write_spec(tmp_path, data)
    code, out, _ = run(
        ["-q", "train", "-e", str(spec), "-r", str(tmp_path / "res"), "--set", "training.lr=0.002"], capsys
    )
    assert code == 0 and f"wrote {tmp_path / 'res'}" in out
    assert "lr: 0.002" in (tmp_path / "res" / "spec.yaml").read_text()
    assert (tmp_path / "res" / "last.safetensors").is_file()


def test_train_says_how_to_evaluate_and_export_the_result(tmp_path: Path, data: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(app, "PLAIN_INTERVAL_S", 0.0)  # no terminal here: step lines, one per step
    spec = write_spec(tmp_path, data)
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "res"), "--set", f"dataset.val={data}"], capsys)
    best = tmp_path / "res" / "best.safetensors"
    assert code == 0 and best.is_file()
    assert f"next: lanner evaluate -m {best} -d {data}\n" in err
    assert f"next: lanner export -m {best} -o model.onnx\n" in err
    assert "training steps: 1/1 (100%, " in err and "epoch 1: loss " in err


def test_spec_typo(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    spec = write_spec(tmp_path, data, "  bach_size: 4\n")
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "res")], capsys)
    assert code == 2
    assert "spec.yaml:12: training.bach_size: unknown key; did you mean 'batch_size'?" in err
    assert len(err.strip().splitlines()) == 1


def test_override_typo(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    spec = write_spec(tmp_path, data)
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "r"), "--set", "training.epohcs=2"], capsys)
    assert code == 2 and "did you mean 'epochs'?" in err


def test_classes_missing_from_spec(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    spec = write_spec(tmp_path, data)
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "r"), "--set", "dataset.classes=[car]"], capsys)
    assert code == 1 and "are not in the spec's classes ['car']" in err and "add them to dataset.classes" in err
    assert len(err.strip().splitlines()) == 1


def test_empty_dataset(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    spec = write_spec(tmp_path, tmp_path / "empty")
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "r")], capsys)
    assert code == 1 and "empty" in err and len(err.strip().splitlines()) == 1


def test_pretrained_of_the_wrong_architecture(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    other = save_checkpoint(tmp_path / "tiny.safetensors", create_model("yolox_tiny", 4), {})
    spec = write_spec(tmp_path, data)
    code, _, err = run(
        ["train", "-e", str(spec), "-r", str(tmp_path / "r"), "--set", f"model.pretrained={other}"], capsys
    )
    assert code == 2 and "pretrained weights do not fit 'yolox_nano'" in err and "shape mismatches" in err
    assert "checkpoint of 'yolox_tiny'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_gpu(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    spec = write_spec(tmp_path, data)
    code, _, err = run(["train", "-e", str(spec), "-r", str(tmp_path / "r"), "--set", "training.device=cuda"], capsys)
    assert code == 2 and "training.device: device 'cuda' was requested but no CUDA GPU" in err


def test_train_says_what_it_trains_on_including_ignore_regions(tmp_path: Path, data: Path, capsys) -> None:
    from lanner.data.io import read_dataset, write_dataset

    ds = read_dataset(data)
    ds.samples[0].ignore_regions = np.array([[0, 0, 20, 20], [30, 0, 50, 20]], np.float32)  # DontCare
    with_dc = write_dataset(ds, tmp_path / "dc", "kitti")
    boxes = sum(len(s.boxes) for s in ds.samples)
    code, _, err = run(["train", "-e", str(write_spec(tmp_path, with_dc)), "-r", str(tmp_path / "res")], capsys)
    assert code == 0, err
    assert f"training on 4 images ({boxes} boxes, 2 ignore regions spared from the loss), 1 step to go" in err


def test_ctrl_c_prints_what_was_kept_and_exits_130(tmp_path: Path, data: Path, capsys, monkeypatch) -> None:
    from lanner.train.trainer import Fit

    real, calls = Fit.train_epoch, []

    def second_epoch_interrupted(self, progress, on_log):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, progress, on_log)

    monkeypatch.setattr(Fit, "train_epoch", second_epoch_interrupted)
    spec, res = write_spec(tmp_path, data), tmp_path / "res"
    code, _, err = run(["train", "-e", str(spec), "-r", str(res), "--set", "training.epochs=3"], capsys)
    line = err.strip().splitlines()[-1]
    assert code == 130 and not line.startswith("error")
    assert line.startswith(f"{res}: interrupted during epoch 2 of 3; {res / 'last.safetensors'} holds epoch 1")
    assert line.endswith(f"--set training.resume={res / 'last.safetensors'}")
