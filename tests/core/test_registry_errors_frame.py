import numpy as np
import pytest

from lanner.core import Batch, ConfigError, DataError, Detections, Frame, LannerError, Registry, UsageError


def test_registry_registers_and_finds():
    reg: Registry[type] = Registry("tracker")

    @reg.register("bytetrack")
    class ByteTrack:
        pass

    assert reg.get("bytetrack") is ByteTrack
    assert "bytetrack" in reg and reg.names() == ["bytetrack"] and len(reg) == 1


def test_registry_duplicate_raises():
    reg: Registry[int] = Registry("model")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)


def test_registry_unknown_name_suggests():
    reg: Registry[int] = Registry("model")
    reg.register("resnet18")(1)
    with pytest.raises(ConfigError, match="unknown model 'resnet19'; did you mean 'resnet18'"):
        reg.get("resnet19")
    with pytest.raises(ConfigError, match=r"choose one of \['resnet18'\]"):
        reg.get("zzz")


@pytest.mark.parametrize(
    ("error", "expected", "code"),
    [
        (LannerError("broke"), "broke", 1),
        (DataError("box outside image", where="labels/1.txt:3"), "labels/1.txt:3: box outside image", 1),
        (
            ConfigError("unknown key", where="a.yaml:2 x", fix="did you mean 'y'?"),
            "a.yaml:2 x: unknown key; did you mean 'y'?",
            2,
        ),
        (UsageError("bad", fix="pass --out"), "bad; pass --out", 2),
    ],
)
def test_error_format_and_exit_codes(error, expected, code):
    assert str(error) == expected
    assert error.exit_code == code


def test_frame_validates_image_and_batch_collects():
    image = np.zeros((4, 6, 3), np.uint8)
    frame = Frame(source_id=2, frame_idx=7, pts_ns=1_000, image=image)
    assert frame.hw == (4, 6) and len(frame.detections) == 0
    batch = Batch(frames=[frame, Frame(source_id=3, frame_idx=0, pts_ns=0, image=image)])
    assert len(batch) == 2 and batch.source_ids == [2, 3]
    with pytest.raises(DataError, match="source 1 frame 0"):
        Frame(source_id=1, frame_idx=0, pts_ns=0, image=np.zeros((4, 6), np.uint8))


def test_frame_detections_are_independent():
    a = Frame(0, 0, 0, np.zeros((2, 2, 3), np.uint8))
    b = Frame(0, 1, 0, np.zeros((2, 2, 3), np.uint8))
    a.detections = Detections.from_arrays([[0, 0, 1, 1]], [0])
    assert len(b.detections) == 0
