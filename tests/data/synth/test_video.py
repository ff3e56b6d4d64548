"""Synthetic videos: config validation, determinism, decodable H.264, consistent MOT ground truth and counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanner.core.errors import ConfigError
from lanner.data.synth.lines import count_crossings, read_lines
from lanner.data.synth.mot import read_gt, read_seqinfo
from lanner.data.synth.video import VideoSynthConfig, generate_videos
from lanner.data.synth.world import CLASSES

CONFIG = VideoSynthConfig(cameras=2, seconds=2, fps=30, width=320, height=192, seed=3, density=2.5)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list[Path], list[int]]:
    """One two-camera clip made by a two-process pool, with the progress it reported."""
    out = tmp_path_factory.mktemp("videos")
    progress: list[int] = []
    paths = generate_videos(CONFIG, out, progress=progress.append, workers=2)
    return out, paths, progress


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"width": 321}, "video.width"),
        ({"height": 191}, "video.height"),
        ({"width": 3840, "height": 2160}, "video.width/height"),
        ({"fps": 0}, "video.fps"),
        ({"fps": 61}, "video.fps"),
        ({"cameras": 0}, "video.cameras"),
        ({"preset": "turbo"}, "video.preset"),
        ({"density": -1}, "video.density"),
    ],
)
def test_bad_config_is_one_clear_line(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        VideoSynthConfig(**overrides)
    message = str(info.value)
    assert message.startswith(field) and "\n" not in message
    assert "use" in message  # says how to fix it


def test_outputs_and_progress(generated) -> None:
    out, paths, progress = generated
    assert [p.name for p in paths] == ["cam0.mp4", "cam1.mp4"]
    assert sum(progress) == CONFIG.cameras * CONFIG.frames
    for i in range(CONFIG.cameras):
        for name in ("gt/gt.txt", "seqinfo.ini", "lines.json", "counts.json"):
            assert (out / f"cam{i}" / name).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == CONFIG.model_dump(mode="json")
    assert manifest["totals"]["frames"] == CONFIG.cameras * CONFIG.frames
    assert [c["time_of_day"] for c in manifest["cameras"]] == ["day", "dusk"]


def test_same_seed_same_bytes_whatever_the_worker_count(generated, tmp_path) -> None:
    out, _, _ = generated
    progress: list[int] = []
    generate_videos(CONFIG, tmp_path, progress=progress.append, workers=1)
    assert sum(progress) == CONFIG.cameras * CONFIG.frames
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_videos_decode(generated) -> None:
    import av

    _, paths, _ = generated
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.average_rate == CONFIG.fps
            assert "creation_time" not in container.metadata
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        assert len(frames) == CONFIG.frames
        assert frames[0].shape == (CONFIG.height, CONFIG.width, 3)
        assert frames[0].std() > 10  # a picture, not a flat colour


@pytest.mark.parametrize("cam", [0, 1])
def test_ground_truth_is_consistent(generated, cam: int) -> None:
    out, _, _ = generated
    seq = out / f"cam{cam}"
    info = read_seqinfo(seq / "seqinfo.ini")
    assert (info.seqLength, info.frameRate, info.imWidth, info.imHeight) == (60, 30, 320, 192)
    assert info.classes == CLASSES
    frames = read_gt(seq / "gt" / "gt.txt", num_frames=info.seqLength)
    assert len(frames) == info.seqLength and sum(len(f) for f in frames) > 0
    for f in frames:
        xyxy = f.xyxy
        assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 1] >= 0).all()
        assert (xyxy[:, 2] <= info.imWidth).all() and (xyxy[:, 3] <= info.imHeight).all()
        assert (xyxy[:, 2] > xyxy[:, 0]).all() and (xyxy[:, 3] > xyxy[:, 1]).all()
        assert set(f.confidence.tolist()) <= {0.0, 1.0}
        assert ((f.data["visibility"] >= 0) & (f.data["visibility"] <= 1)).all()
        assert ((f.class_id >= 0) & (f.class_id < len(CLASSES))).all()
    _check_track_continuity(frames, max_gap=info.frameRate)


def _check_track_continuity(frames, max_gap: int) -> None:
    """Our rule: an id is in every frame of its span, except after holes longer than ``max_gap`` frames
    (shorter holes, where it was hidden, are filled by interpolation with conf 0 / visibility 0)."""
    seen: dict[int, list[int]] = {}
    for k, f in enumerate(frames):
        for tid in f.tracker_id.tolist():
            seen.setdefault(tid, []).append(k)
    assert seen
    for tid, ks in seen.items():
        holes = np.diff(ks) - 1
        assert ((holes == 0) | (holes > max_gap)).all(), tid


@pytest.mark.parametrize("cam", [0, 1])
def test_counts_match_the_mot_file(generated, cam: int) -> None:
    out, _, _ = generated
    seq = out / f"cam{cam}"
    counts = json.loads((seq / "counts.json").read_text())
    frames = read_gt(seq / "gt" / "gt.txt", num_frames=CONFIG.frames)
    assert counts == count_crossings(frames, read_lines(seq / "lines.json"), CLASSES)
    assert "road" in counts


def test_vehicles_cross_the_road_line(generated) -> None:
    out, _, _ = generated
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(c["counts"]["road"]["in"] + c["counts"]["road"]["out"] for c in manifest["cameras"]) > 0


def test_bitrate_cap_keeps_noisy_video_small(tmp_path):
    # sensor noise is incompressible: uncapped CRF makes huge files; the cap behaves like a camera's encoder
    # (x264's VBV overshoots on pure noise at this small size, hence the factor 2)
    from lanner.data.synth.video import H264Writer

    def kbps(max_kbps: int) -> float:
        rng = np.random.default_rng(0)
        path = tmp_path / f"noise{max_kbps}.mp4"
        with H264Writer(path, 320, 240, 30, max_kbps=max_kbps) as video:
            for _ in range(60):
                noisy = 128 + rng.normal(0, 20, (240, 320, 3))  # night-time sensor noise, as effects.py adds it
                video.write(noisy.clip(0, 255).astype(np.uint8))
        return path.stat().st_size * 8 / 2 / 1000

    assert kbps(0) > 5 * 400 and kbps(400) < 2 * 400


def test_auto_bitrate_cap_scales_with_pixels_and_fps():
    assert VideoSynthConfig().bitrate_cap_kbps == 4000
    assert VideoSynthConfig(width=1920, height=1080, fps=15).bitrate_cap_kbps == 4500
    assert VideoSynthConfig(max_kbps=1234).bitrate_cap_kbps == 1234
