"""``lanner infer`` on a video: annotated H.264 copy, JSON lines per frame, broken and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanner.cli.main import main
from lanner.core.errors import DataError
from lanner.train import video_infer
from lanner.train.predict import load_model
from lanner.train.video_infer import infer_video

DETECTOR = Path(__file__).parents[2] / "src" / "lanner" / "assets" / "traffic_detector.onnx"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video_infer")
    args = ["-q", "dataset", "synth", "--video", "--cameras", "1", "--seconds", "1", "--resolution", "160x96"]
    assert main([*args, "--out", str(root / "v")]) == 0
    return root / "v" / "cam0.mp4"


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_every_frame_is_annotated_and_has_a_json_line(clip: Path, tmp_path: Path) -> None:
    report = infer_video(load_model(DETECTOR), clip, tmp_path / "out", batch_size=4)
    assert report.frames == _frames(clip) == _frames(report.video) and report.error is None
    lines = [json.loads(line) for line in report.predictions.read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(report.frames))
    assert lines[1]["time_s"] == pytest.approx(1 / report.fps, abs=1e-3)
    assert any(r["detections"] for r in lines) and {"class", "class_id", "confidence", "xyxy"} == set(
        next(r for r in lines if r["detections"])["detections"][0]
    )


def test_a_stream_that_breaks_keeps_the_frames_before_the_break(clip: Path, tmp_path: Path, monkeypatch) -> None:
    real = video_infer._frames

    def breaks_after_five(container, stream):
        for k, item in enumerate(real(container, stream)):
            if k == 5:
                raise video_infer._BrokenStream("Invalid data found when processing input")
            yield item

    monkeypatch.setattr(video_infer, "_frames", breaks_after_five)
    report = infer_video(load_model(DETECTOR), clip, tmp_path / "out", batch_size=2)
    assert report.frames == 5 and "breaks after frame 5" in report.error  # the half-full last batch is kept too
    assert _frames(report.video) == 5 and len(report.predictions.read_text().splitlines()) == 5


def test_bad_videos_and_options_are_one_line_errors(clip: Path, tmp_path: Path, capsys) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(DataError, match="cannot open video"):
        infer_video(load_model(DETECTOR), fake, tmp_path / "out")
    assert main(["infer", "-m", str(DETECTOR), "-i", str(clip), "-o", str(tmp_path / "o"), "--format", "kitti"]) == 2
    assert "--format kitti is for images; a video's predictions are JSON lines" in capsys.readouterr().err


def test_the_cli_says_where_the_video_went(clip: Path, tmp_path: Path, capsys) -> None:
    assert main(["infer", "-m", str(DETECTOR), "-i", str(clip), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert (
        f"annotated in {tmp_path / 'o' / 'cam0_annotated.mp4'}, predictions in {tmp_path / 'o' / 'cam0.jsonl'}" in out
    )


def test_odd_sizes_are_cut_to_even_for_h264() -> None:
    assert video_infer._even(np.zeros((97, 161, 3), np.uint8)).shape == (96, 160, 3)


def test_ctrl_c_keeps_a_playable_video_of_the_frames_done(clip: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    real, calls = video_infer.predict_detections, []

    def second_batch_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video_infer, "predict_detections", second_batch_interrupted)
    out = tmp_path / "o"
    assert main(["infer", "-m", str(DETECTOR), "-i", str(clip), "-o", str(out), "--batch-size", "4"]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"{clip}: interrupted after frame 4; {out / 'cam0_annotated.mp4'} (closed, it plays)")
    assert _frames(out / "cam0_annotated.mp4") == 4 and len((out / "cam0.jsonl").read_text().splitlines()) == 4
