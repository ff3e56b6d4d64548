"""``lanner demo``: renders the cameras once, runs the bundled config on them, prints counts vs truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lanner.cli.main import main
from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.demo import bundled_config, demo_config

pytest.importorskip("av")
ROOT = Path(__file__).resolve().parents[2]
# small and quick: the detector at its native size, no secondary classifier
SMALL = ["--cameras", "1", "--seconds", "1", "--resolution", "320x192", "--set", "primary.input_size=null",
         "--set", "primary.extra_input_sizes=[]", "--set", "secondary=[]"]  # fmt: skip


def fake_cameras(root: Path, cameras: int) -> Path:
    for i in range(cameras):
        (root / f"cam{i}").mkdir(parents=True)
        lines = [{"name": "road", "p1_xy": [10.0 + i, 20.0], "p2_xy": [30.0, 40.0 + i]}]
        (root / f"cam{i}" / "lines.json").write_text(json.dumps({"lines": lines}))
    return root


def test_bundled_config_is_valid_and_names_the_default_cameras() -> None:
    config = load_pipeline_config(data=bundled_config())
    assert [s.uri for s in config.sources] == [f"demo_data/cam{i}.mp4" for i in range(4)]
    assert config.primary.model == "builtin:traffic_detector" and config.tracker.type == "bytetrack"


def test_demo_config_points_at_the_rendered_cameras(tmp_path: Path) -> None:
    data = fake_cameras(tmp_path / "data", 3)
    config = load_pipeline_config(data=demo_config(data, tmp_path / "o", 3))
    assert [s.uri for s in config.sources] == [str(data / f"cam{i}.mp4") for i in range(3)]
    lines = {line.name: line for line in config.analytics.lines}
    assert set(lines) == {"cam0_road", "cam1_road", "cam2_road"}
    assert list(lines["cam2_road"].p1) == [12.0, 20.0] and lines["cam2_road"].sources == [2]
    assert all(line.once_per_track for line in lines.values())
    assert {Path(s.path).parent for s in config.sinks} == {tmp_path / "o"}
    assert Path(config.telemetry.summary_path) == tmp_path / "o" / "summary.json"
    assert (config.tiler.rows, config.tiler.columns) == (2, 2)  # 3 cameras fit a 2x2 grid


def test_demo_renders_once_runs_and_compares_with_truth(tmp_path: Path, capsys) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["demo", "--data", str(data), "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "line counts vs ground truth" in printed and "counted" in printed and "true" in printed
    assert (out / "tiled.mp4").stat().st_size > 0 and (out / "events.jsonl").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 30 and summary["stopped_by"] == "eos"
    rendered = (data / "cam0.mp4").stat().st_mtime_ns
    assert main(["demo", "--data", str(data), "--out", str(out), *SMALL]) == 0  # the same cameras: reused
    assert (data / "cam0.mp4").stat().st_mtime_ns == rendered
    other = [*SMALL[:4], "--seed", "3", *SMALL[4:]]
    assert main(["demo", "--data", str(data), "--out", str(out), "--print-config", *other]) == 0  # re-rendered
    assert json.loads((data / "manifest.json").read_text())["config"]["seed"] == 3


def test_print_config_runs_as_is_with_lanner_run(tmp_path: Path, capsys) -> None:
    data = fake_cameras(tmp_path / "data", 2)
    (data / "manifest.json").write_text(json.dumps({"config": {"cameras": 2, "seconds": 10.0, "width": 1280,
                                                               "height": 720, "seed": 0}}))  # fmt: skip
    for i in range(2):
        (data / f"cam{i}.mp4").write_bytes(b"")  # present: not rendered again
    args = ["demo", "--data", str(data), "--cameras", "2", "--print-config", "--set", "primary.interval=2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    config = load_pipeline_config(data=yaml.safe_load(printed))
    assert config.primary.interval == 2 and len(config.sources) == 2
    assert [s.type for s in config.sinks] == ["video", "jsonl"]


def test_a_foreign_data_folder_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--data", str(tmp_path), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "holds no demo cameras" in err and "--data" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_module_example_runs() -> None:
    import doctest

    import lanner.pipeline.demo

    assert doctest.testmod(lanner.pipeline.demo).failed == 0


def test_the_demo_runs_without_the_training_and_engine_extras(tmp_path: Path) -> None:
    """What `pip install "lanner[pipeline]"` has: no torch, safetensors, albumentations, tensorboard."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for m in ('torch', 'safetensors', 'albumentations', 'tensorboard', 'pycocotools'): sys.modules[m] = None\n"
        "from lanner.cli.main import main\n"
        f"sys.exit(main(['-q', 'demo', '--data', 'd', '--out', 'o', *{SMALL!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "line counts vs ground truth" in done.stdout and (tmp_path / "o" / "summary.json").is_file()


def test_an_interrupted_render_is_rendered_again(tmp_path: Path) -> None:
    from lanner.pipeline.demo import cameras_ready

    data = tmp_path / "data"
    (data / "cam0").mkdir(parents=True)
    (data / "cam0.mp4").write_bytes(b"half a video")  # stopped before manifest.json was written
    assert not cameras_ready(data, {"cameras": 1, "seconds": 1.0, "width": 320, "height": 192, "seed": 0})


def test_a_camera_without_its_lines_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    from lanner.core.errors import DataError

    data = fake_cameras(tmp_path / "data", 2)
    (data / "cam1" / "lines.json").unlink()
    with pytest.raises(DataError, match=r"cam1/lines.json: cannot read the camera's counting lines .*; delete "):
        demo_config(data, tmp_path / "o", 2)
