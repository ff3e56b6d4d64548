"""The fit loop: resume is exact, the results folder holds what it promises, device errors are clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_spec

from lanner.core.errors import ConfigError, DataError, UsageError
from lanner.models import load_checkpoint, load_extra_tensors
from lanner.train.spec import load_spec
from lanner.train.trainer import train


def all_tensors(path: Path) -> dict[str, torch.Tensor]:
    state, _ = load_checkpoint(path)
    return {**state, **{f"extra.{k}": v for k, v in load_extra_tensors(path).items()}}


def test_two_epochs_equal_one_then_resume_one(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    data = tiny_spec(synth_sets["train"], augmentation={"mosaic": 0.5}, training={"ema_decay": 0.99})
    straight = train(load_spec(data=data), tmp_path / "straight")
    first = train(load_spec(data=data), tmp_path / "stopped", stop_after_epochs=1)
    assert first.epochs_done == 1
    resumed = train(load_spec(data=data, overrides=[f"training.resume={first.last}"]), tmp_path / "resumed")
    assert resumed.epochs_done == 2
    a, b = all_tensors(straight.last), all_tensors(resumed.last)
    assert a.keys() == b.keys() and any(k.startswith("extra.optimizer.") for k in a)
    for name in a:
        if not name.startswith("extra.rng."):
            assert torch.equal(a[name], b[name]), name
    _, doc = load_checkpoint(resumed.last)
    assert doc["meta"]["epoch"] == 2 and doc["meta"]["step"] == 4 and doc["meta"]["ema_updates"] == 4


def test_results_folder(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    data = tiny_spec(synth_sets["train"], synth_sets["val"], training={"epochs": 2, "checkpoint_interval": 2})
    events: list[dict] = []
    result = train(load_spec(data=data), tmp_path / "run", on_log=events.append)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"spec.yaml", "metrics.jsonl", "tensorboard", "last.safetensors", "best.safetensors"} <= names
    assert {"epoch_002.safetensors", "summary.json", "plots"} <= names and "epoch_001.safetensors" not in names
    assert {p.name for p in (tmp_path / "run" / "plots").iterdir()} == {"curves.png", "pr_curves.png", "confusion.png"}
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in logged] == [1, 2] and all("mAP50" in e and "loss" in e for e in logged)
    start = {k: v for k, v in events[0].items() if k not in ("boxes", "ignore_regions")}
    assert [e["event"] for e in events].count("step") == 4 and start == {
        "event": "start",
        "total_steps": 4,
        "done_steps": 0,
        "classes": ["car", "bicycle", "person", "road_sign"],
        "images": 12,
    }
    assert events[0]["boxes"] > 0 and events[0]["ignore_regions"] == 0  # the synthetic world has no DontCare
    assert load_spec(tmp_path / "run" / "spec.yaml") == load_spec(data=data)
    assert result.metrics is not None and "mAP50" in result.metrics
    assert list((tmp_path / "run" / "tensorboard").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_one_clear_error(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    data = tiny_spec(synth_sets["train"], training={"device": "cuda"})
    with pytest.raises(ConfigError, match=r"training.device: device 'cuda' was requested but no CUDA GPU"):
        train(load_spec(data=data), tmp_path / "run")


def test_classes_missing_from_the_spec(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    data = tiny_spec(synth_sets["train"], dataset={"classes": ["car", "person"]})
    with pytest.raises(Exception, match=r"dataset classes \['bicycle', 'road_sign'\] are not in the spec's classes"):
        train(load_spec(data=data), tmp_path / "run")


def test_a_training_set_without_any_box_is_refused(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    root = shutil.copytree(synth_sets["train"], tmp_path / "train")
    for label in (root / "labels").glob("*.txt"):
        label.write_text("")
    with pytest.raises(DataError, match=r"the training set has no boxes in its 12 images"):
        train(load_spec(data=tiny_spec(root)), tmp_path / "run")


def test_a_results_path_that_is_a_file_fails_before_reading_data(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    data = tiny_spec(tmp_path / "no_data_needed")  # the results folder is checked first
    with pytest.raises(UsageError, match="taken: the results path is a file"):
        train(load_spec(data=data), tmp_path / "taken")
    with pytest.raises(DataError, match="cannot create the results folder: a parent of it is a file"):
        train(load_spec(data=data), tmp_path / "taken" / "run")


def test_a_fresh_run_does_not_report_an_old_runs_best(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    val = shutil.copytree(synth_sets["val"], tmp_path / "val")
    for label in (val / "labels").glob("*.txt"):
        label.write_text("")  # no boxes: no mAP, so this run never saves a best checkpoint
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.safetensors").write_bytes(b"from an earlier run")
    data = tiny_spec(synth_sets["train"], val, training={"epochs": 1, "max_steps_per_epoch": 1})
    assert train(load_spec(data=data), tmp_path / "run").best is None


@pytest.mark.parametrize("finished", [0, 1])
def test_ctrl_c_keeps_the_finished_epochs_and_says_how_to_resume(
    synth_sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finished: int
) -> None:
    from lanner.core.errors import Interrupted
    from lanner.train.trainer import Fit

    real, calls = Fit.train_epoch, []

    def stop_in_epoch(self, progress, on_log):  # the (finished+1)-th epoch is where the user presses Ctrl-C
        calls.append(1)
        if len(calls) > finished:
            raise KeyboardInterrupt
        return real(self, progress, on_log)

    monkeypatch.setattr(Fit, "train_epoch", stop_in_epoch)
    data = tiny_spec(synth_sets["train"], synth_sets["val"], training={"epochs": 3})
    with pytest.raises(Interrupted) as info:
        train(load_spec(data=data), tmp_path / "run")
    message, run = str(info.value), tmp_path / "run"
    assert info.value.exit_code == 130 and "\n" not in message
    assert f"interrupted during epoch {finished + 1} of 3" in message
    if not finished:
        assert "no epoch had finished: run the same command again" in message
        assert not (run / "last.safetensors").exists()
        return
    assert f"{run / 'last.safetensors'} holds epoch 1" in message
    assert f"lanner train -e {run / 'spec.yaml'} -r {run} --set training.resume={run / 'last.safetensors'}" in message
    assert load_checkpoint(run / "last.safetensors")[1]["meta"]["epoch"] == 1
    assert (run / "plots" / "curves.png").is_file() and json.loads((run / "summary.json").read_text())["epochs"] == 1
    monkeypatch.setattr(Fit, "train_epoch", real)  # the printed command's resume works as said
    resumed = train(load_spec(run / "spec.yaml", overrides=[f"training.resume={run / 'last.safetensors'}"]), run)
    assert resumed.epochs_done == 3


def test_sigterm_ends_training_like_ctrl_c(
    synth_sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from lanner.core.errors import Interrupted
    from lanner.train.trainer import Fit

    real, calls = Fit.train_epoch, []

    def preempted_in_second_epoch(self, progress, on_log):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the cluster preempts the job
        return real(self, progress, on_log)

    monkeypatch.setattr(Fit, "train_epoch", preempted_in_second_epoch)
    before = signal.getsignal(signal.SIGTERM)
    data = tiny_spec(synth_sets["train"], training={"epochs": 3})
    with pytest.raises(Interrupted, match=r"interrupted during epoch 2 of 3; .*holds epoch 1"):
        train(load_spec(data=data), tmp_path / "run")
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (
            "oom",
            r"training.batch_size: out of GPU memory in epoch 1 \(Tried to allocate 2.00 GiB\) at batch size 2 "
            r"at input 64x96; lower training.batch_size \(now 2; try 1\), or lower model.input_size",
        ),
        (
            "worker",
            r"training.workers: a data-loading worker was killed in epoch 1 \(out of host memory\?\); "
            r"lower training.workers \(now 0\) or training.batch_size$",
        ),
    ],
)
def test_out_of_memory_is_one_line_with_the_knobs(
    synth_sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: str, message: str
) -> None:
    from lanner.train.trainer import Fit

    def fail(self, progress, on_log):
        if raised == "oom":
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.1 GiB of which 1 GiB"
            )
        raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. ")

    monkeypatch.setattr(Fit, "train_epoch", fail)
    data = tiny_spec(synth_sets["train"], model={"input_size": [64, 96]}, training={"batch_size": 2})
    with pytest.raises(DataError, match=message) as info:
        train(load_spec(data=data), tmp_path / "run")
    assert "\n" not in str(info.value)


def test_other_runtime_errors_pass_through(synth_sets: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    from lanner.train.trainer import Fit

    def fail(self, progress, on_log):
        raise RuntimeError("shape mismatch in some layer")

    monkeypatch.setattr(Fit, "train_epoch", fail)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(load_spec(data=tiny_spec(synth_sets["train"])), tmp_path / "run")
