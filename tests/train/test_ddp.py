"""DDP: two CPU processes (gloo) with batch 2 each end with the weights of one process with batch 4."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from conftest import CLASSES, tiny_spec

from lanner.models import load_checkpoint, load_extra_tensors
from lanner.train.spec import ModelSection, load_spec
from lanner.train.trainer import train
from lanner.train.transfer import build_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world_size: int, port: int, data: dict, out: str) -> None:
    """One torchrun-like process: the environment torchrun would set, then the ordinary ``train``."""
    import torch.distributed as dist

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        train(load_spec(data=data), out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(synth_sets: dict[str, Path], tmp_path: Path) -> None:
    # BatchNorm statistics are per process on the CPU (SyncBatchNorm needs a GPU), so BN is frozen here;
    # on GPUs training.sync_bn makes them global. Everything else (sampler, loss normalisation) is exact.
    sections = {"model": {"freeze_bn": True}, "augmentation": {"mosaic": 0.5}}
    single = tiny_spec(
        synth_sets["train"], training={"batch_size": 4, "epochs": 1, "max_steps_per_epoch": 3}, **sections
    )
    ddp = tiny_spec(synth_sets["train"], training={"batch_size": 2, "epochs": 1, "max_steps_per_epoch": 3}, **sections)
    train(load_spec(data=single), tmp_path / "single")
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), ddp, str(tmp_path / "ddp")), nprocs=2, join=True)
    a, b = (weights(tmp_path / run / "last.safetensors") for run in ("single", "ddp"))
    assert a.keys() == b.keys() and any(k.startswith("train_model.") for k in a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    torch.manual_seed(0)
    fresh = build_model(ModelSection(name="yolox_nano", input_size=(64, 96), freeze_bn=True), CLASSES)
    changed = [k for k, v in fresh.state_dict().items() if not torch.equal(v, a["train_model." + k])]
    assert len(changed) > 100  # training moved the weights, so the match above is not trivial


def weights(path: Path) -> dict[str, torch.Tensor]:
    """EMA weights, training weights and optimizer momentum of a checkpoint."""
    state, _ = load_checkpoint(path)
    extra = {k: v for k, v in load_extra_tensors(path).items() if not k.startswith("rng.")}
    return {**state, **extra}
