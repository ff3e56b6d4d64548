"""``lanner run``: YAML and DeepStream configs, overrides, the summary table and the exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from lanner.cli.main import cli, main
from lanner.cli.run import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from test_infer import known_detector_onnx

ROOT = Path(__file__).resolve().parents[2]
video = pytest.importorskip("lanner.data.synth.video")


@pytest.fixture(autouse=True)
def registered():
    """Register ``run`` on the CLI group for these tests (the lead adds it in main.py)."""
    added = "run" not in cli.commands
    if added:
        cli.add_command(run)
    yield
    if added:
        cli.commands.pop("run")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("run_cli")
    config = video.VideoSynthConfig(cameras=1, seconds=1, fps=10, width=128, height=96, seed=5)
    (clip,) = video.generate_videos(config, root, workers=1)
    return clip, known_detector_onnx(root / "det.onnx", batch="n")


def write_config(tmp_path: Path, clip: Path, model: Path, **extra: object) -> Path:
    data = {
        "sources": [{"uri": str(clip), "name": "cam"}],
        "primary": {"model": str(model)},
        "tracker": {"type": "bytetrack"},
        "sinks": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}],
        "telemetry": {"interval_s": 0.05, "summary_path": str(tmp_path / "summary.json")},
    } | extra
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_yaml_prints_summary_and_exits_0(setup, tmp_path: Path, capsys) -> None:
    clip, model = setup
    assert main(["run", "-c", str(write_config(tmp_path, clip, model)), "--set", "mux.batch_size=1"]) == 0
    captured = capsys.readouterr()
    assert "source 0 cam" in captured.out and "stopped by eos" in captured.out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 10 and summary["sources"]["0"]["inferred"] == 10
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 10


def test_run_ends_by_naming_every_file_it_wrote(setup, tmp_path: Path, capsys) -> None:
    # the table cuts long sink names to the terminal's width; the last line names each file whole
    clip, model = setup
    deep = tmp_path / ("a_long_folder_name_" * 4)
    sinks = [{"type": "jsonl", "path": str(deep / "events.jsonl")}, {"type": "jsonl", "path": str(deep / "x.jsonl")}]
    path = write_config(tmp_path, clip, model, sinks=sinks)
    assert main(["run", "-c", str(path)]) == 0
    files = [deep / "events.jsonl", deep / "x.jsonl", tmp_path / "summary.json"]
    assert f"outputs: {', '.join(map(str, files))}\n" in capsys.readouterr().err
    assert all(f.is_file() for f in files)
    assert main(["-q", "run", "-c", str(path)]) == 0
    assert "outputs:" not in capsys.readouterr().err


def test_failed_source_exits_1(setup, tmp_path: Path, capsys) -> None:
    clip, model = setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    path = write_config(tmp_path, clip, model, sources=[{"uri": str(clip)}, {"uri": str(broken)}])
    assert main(["run", "-c", str(path)]) == 1
    assert "source 1" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 10 and "broken.mp4" in summary["sources"]["1"]["error"]


def test_duration_stops_a_looping_source(setup, tmp_path: Path) -> None:
    clip, model = setup
    path = write_config(tmp_path, clip, model, sources=[{"uri": str(clip), "loop": True}])
    assert main(["run", "-c", str(path), "--duration", "0.5"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["stopped_by"] == "duration"


def test_deepstream_import_warnings_and_check(capsys) -> None:
    # the example names a DeepStream tree's model files (models/*.onnx, not shipped): --check lists them
    assert main(["run", "--deepstream", str(ROOT / "configs" / "deepstream_app.txt"), "--check"]) == 2
    captured = capsys.readouterr()
    grouped = [
        line for line in captured.err.splitlines() if line.startswith("warning: ignored (no lanner equivalent):")
    ]
    assert len(grouped) == 1 and "[osd] text-color, " in grouped[0] and "clock-color" in grouped[0]  # one line
    assert "primary.model " in captured.err and "models/lanner_traffic_detector.onnx: not found" in captured.err
    assert "rtsp://" not in captured.err  # URLs are not probed


def test_check_lists_every_missing_file_and_passes_when_all_are_there(setup, tmp_path: Path, capsys) -> None:
    clip, model = setup
    assert main(["run", "-c", str(write_config(tmp_path, clip, model)), "--check"]) == 0
    assert "config ok: 1 sources, 1 sinks" in capsys.readouterr().out
    missing = write_config(tmp_path, clip, model, sources=[{"uri": str(tmp_path / "gone.mp4")}],
                           primary={"model": str(tmp_path / "gone.onnx")})  # fmt: skip
    assert main(["run", "-c", str(missing), "--check"]) == 2
    err = capsys.readouterr().err
    assert "sources[0] " in err and "gone.mp4: not found" in err and "primary.model" in err
    assert "gone.onnx: not found; fix these paths" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of -c/--config and --deepstream"),
        (["-c", "a.yaml", "--deepstream", "b.txt"], "exactly one of"),
        (["-c", "missing.yaml"], "config file not found"),
    ],
)
def test_usage_and_config_errors_exit_2(args: list[str], message: str, capsys) -> None:
    assert main(["run", *args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_key_exits_2_with_file_line(setup, tmp_path: Path, capsys) -> None:
    clip, model = setup
    path = write_config(tmp_path, clip, model, trackr={"type": "sort"})
    assert main(["run", "-c", str(path)]) == 2
    assert "trackr: unknown key; did you mean 'tracker'?" in capsys.readouterr().err


def test_truth_table_compares_with_synthetic_counts(setup, tmp_path: Path, capsys) -> None:
    clip, model = setup
    doc = json.loads((clip.with_suffix("") / "lines.json").read_text())
    lines = [{"name": f"cam0_{d['name']}", "p1": d["p1_xy"], "p2": d["p2_xy"]} for d in doc["lines"]]
    truth = json.loads((clip.with_suffix("") / "counts.json").read_text())
    path = write_config(tmp_path, clip, model, analytics={"lines": lines})
    assert main(["run", "-c", str(path), "--truth"]) == 0
    text = capsys.readouterr().out
    assert "line counts vs ground truth" in text and "cam0_road" in text
    true_total = sum(v["in"] + v["out"] for v in truth.values())
    assert f"0 counted, {true_total} true" in text  # the constant detector's boxes never move
