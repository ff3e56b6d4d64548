"""Checkpoints: safetensors + JSON round trip, extra tensors, optimizer state without pickle."""

import json
import struct
from pathlib import Path

import pytest
import torch

from lanner.core.errors import ConfigError, DataError
from lanner.models import (
    create_model,
    flatten_state,
    load_checkpoint,
    load_extra_tensors,
    model_from_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def test_round_trip_restores_weights_metadata_and_outputs(tmp_path) -> None:
    model = create_model("resnet10", class_names=["cat", "dog", "bird"]).eval()
    meta = {"epoch": 7, "metrics": {"top1": 0.5}, "spec": {"lr": 0.01}}
    path = save_checkpoint(
        tmp_path / "ckpt" / "last.safetensors", model, meta, extra_tensors={"ema.fc.weight": torch.ones(3)}
    )

    state_dict, doc = load_checkpoint(path)
    assert doc["format"] == "lanner.checkpoint" and doc["version"] == 1
    assert doc["meta"] == meta
    assert doc["model"]["class_names"] == ["cat", "dog", "bird"]
    assert doc["extra_tensors"] == ["ema.fc.weight"]
    assert set(state_dict) == set(model.state_dict())
    assert all(torch.equal(state_dict[k], v) for k, v in model.state_dict().items())
    assert torch.equal(load_extra_tensors(path)["ema.fc.weight"], torch.ones(3))

    restored = model_from_checkpoint(path).eval()
    assert restored.info == model.info
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(restored(images), model(images))


def test_file_is_safetensors_with_a_json_header(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", create_model("resnet10", num_classes=2), {"epoch": 1})
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert json.loads(header["__metadata__"]["lanner"])["meta"] == {"epoch": 1}
    assert not list(tmp_path.glob("*.partial"))


def test_meta_must_be_json(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"not JSON-serialisable.*put tensors in extra_tensors"):
        save_checkpoint(tmp_path / "c.safetensors", create_model("resnet10", num_classes=2), {"t": torch.ones(1)})


def test_plain_safetensors_is_not_a_checkpoint(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(DataError, match="not a lanner checkpoint"):
        load_checkpoint(path)


def test_optimizer_state_round_trips_through_a_checkpoint(tmp_path) -> None:
    model = create_model("mobilenet_v2_050", num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    tensors, skeleton = flatten_state(optimizer.state_dict(), "optimizer")
    path = save_checkpoint(tmp_path / "c.safetensors", model, {"optimizer": skeleton}, extra_tensors=tensors)

    _, doc = load_checkpoint(path)
    state = unflatten_state(doc["meta"]["optimizer"], load_extra_tensors(path))
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(state)
    original = optimizer.state_dict()
    loaded = fresh.state_dict()
    assert loaded["param_groups"] == original["param_groups"]
    assert original["state"].keys() == loaded["state"].keys()
    for key, value in original["state"].items():
        for name, tensor in value.items():
            assert torch.equal(loaded["state"][key][name], tensor)


class Wrapper(torch.nn.Module):
    """Stands in for DistributedDataParallel: the real model under ``.module``."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module


def test_wrapped_models_are_saved_unwrapped(tmp_path) -> None:
    model = create_model("resnet10", num_classes=2)
    path = save_checkpoint(tmp_path / "c.safetensors", Wrapper(model))
    state_dict, doc = load_checkpoint(path)
    assert set(state_dict) == set(model.state_dict()) and doc["model"]["name"] == "resnet10"


def test_a_model_without_info_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="Linear carries no ModelInfo"):
        save_checkpoint(tmp_path / "c.safetensors", torch.nn.Linear(2, 2))


def test_constructor_options_survive_a_checkpoint(tmp_path) -> None:
    model = create_model("mobilenet_v2_050", num_classes=2, dropout=0.5)
    assert model.info.extra == {"create_kwargs": {"dropout": 0.5}}
    path = save_checkpoint(tmp_path / "c.safetensors", model)
    restored = model_from_checkpoint(path)
    assert restored.classifier[0].p == 0.5 and restored.info == model.info


def _damaged(tmp_path, how: str):
    """A checkpoint broken one way: cut in half, or its lanner header replaced by bad JSON / a JSON list."""
    from safetensors.torch import save_file

    path = save_checkpoint(tmp_path / "c.safetensors", create_model("resnet10", num_classes=2))
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "renamed_text":
        path.write_text("dataset:\n  train: data/\n")
    else:
        save_file({"w": torch.zeros(2)}, str(path), metadata={"lanner": "{not json" if how == "bad_json" else "[1]"})
    return path


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "cannot read checkpoint: not a valid safetensors file"),
        ("renamed_text", "cannot read checkpoint: not a valid safetensors file"),
        ("bad_json", "header is not valid JSON"),
        ("json_list", "not a lanner checkpoint"),
    ],
)
def test_damaged_checkpoints_are_one_line_data_errors(tmp_path, how: str, message: str) -> None:
    path = _damaged(tmp_path, how)
    readers = [load_checkpoint, model_from_checkpoint]
    readers += [load_extra_tensors] if how in ("truncated", "renamed_text") else []  # it reads no header
    for read in readers:
        with pytest.raises(DataError, match=message) as info:
            read(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    import errno

    import safetensors.torch

    model = create_model("resnet10", num_classes=2)
    path = save_checkpoint(tmp_path / "last.safetensors", model, {"epoch": 1})

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)  # some bytes made it before the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(DataError) as info:
        save_checkpoint(path, model, {"epoch": 2})
    assert str(info.value) == (
        f"{path}: cannot write the checkpoint: No space left on device; "
        "free disk space, or write to another folder (-r/--results, -o)"
    )
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["meta"]["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == [path.name]
