"""Bad input on the pipeline side: broken deepstream-app files, analytics that name what does not exist.

Each case ends in one ``ConfigError`` line (file:line where known) or a warning, never a raw traceback, a
hang, or a line that silently counts nothing.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_infer import colour_classifier_onnx, known_detector_onnx

from lanner.core.errors import ConfigError
from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.deepstream import import_deepstream, load_deepstream_config
from lanner.pipeline.runner import Pipeline


def write(tmp_path: Path, text: str | bytes, name: str = "app.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("[source0]\nuri=a.mp4\nthis line has no equals\n", "app.txt:3", "'this line has no equals' is neither"),
        ("[source0]\nuri=a.mp4\nbad one\nbad two\n", "app.txt:3", "'bad one' is neither .* \\(and 1 more bad lines\\)"),
        ("uri=a.mp4\n[source0]\n", "app.txt:1", "'uri=a.mp4' comes before any \\[group\\] header"),
    ],
)
def test_a_garbage_line_is_named_with_its_line_number(tmp_path: Path, text: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError, match=rf"{where}: not a key-file \(INI\): {what}"):
        load_deepstream_config(write(tmp_path, text))


def test_a_binary_file_is_a_config_error_not_a_unicode_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"app.txt: not a text file \(byte 2 is not UTF-8\)"):
        load_deepstream_config(write(tmp_path, b"\x00\x01\xff\xfe[source0]\n"))


@pytest.mark.parametrize("count", [0, -1, 100_000_000])
def test_num_sources_out_of_range_is_an_error(tmp_path: Path, count: int) -> None:
    """-1 used to leave no sources ("no sources" error, the group unnamed); 1e8 built 1e8 source dicts."""
    text = f"[source0]\ntype=3\nuri=file://a.mp4\nnum-sources={count}\n"
    with pytest.raises(ConfigError, match=rf"\[source0\] num-sources={count} is out of range; give 1 to 1024"):
        import_deepstream(write(tmp_path, text))


def test_a_repeated_key_is_a_warning_naming_the_value_used(tmp_path: Path) -> None:
    text = "[source0]\nuri=a.mp4\n[osd]\nenable=1\n[source0]\nuri=b.mp4\n"
    result = import_deepstream(write(tmp_path, text))
    assert "[source0] uri: given more than once (line 6 is the value used)" in result.warnings
    assert result.data["sources"][0]["uri"].endswith("b.mp4")


@pytest.mark.parametrize(
    ("analytics", "match"),
    [
        ({"lines": [{"name": "a", "p1": [0, 0], "p2": [9, 9], "sources": [2]}]}, r"analytics.lines.a.sources: source"),
        ({"rois": [{"name": "r", "polygon": [[0, 0], [9, 0], [9, 9]], "sources": [-1]}]}, r"analytics.rois.r.sources"),
        ({"lines": [{"name": "a", "p1": [0, 0], "p2": [9, 9], "class_ids": [-3]}]}, r"class id\(s\) \[-3\] do not"),
    ],
)
def test_analytics_naming_a_missing_source_is_a_config_error(analytics: dict, match: str) -> None:
    data = {"sources": [{"uri": "a.mp4"}, {"uri": "b.mp4"}], "analytics": analytics}
    with pytest.raises(ConfigError, match=match) as info:
        load_pipeline_config(data=data)
    assert "do not exist" in str(info.value)


def test_analytics_may_name_sources_added_later_through_control_port() -> None:
    data = {"sources": [], "control_port": 0, "analytics": {"lines": [{"name": "a", "p1": [0, 0], "p2": [9, 9]}]}}
    data["analytics"]["lines"][0]["sources"] = [5]
    assert load_pipeline_config(data=data).analytics.lines[0].sources == [5]


def test_analytics_naming_a_class_the_detector_lacks_is_a_config_error(tmp_path: Path) -> None:
    model = known_detector_onnx(tmp_path / "det.onnx")  # labels: car, person
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "0.png"), np.zeros((64, 64, 3), np.uint8))
    polygon = [[0, 0], [9, 0], [9, 9]]
    data = {
        "sources": [{"uri": str(tmp_path / "frames")}],
        "primary": {"model": str(model)},
        "analytics": {"rois": [{"name": "lot", "polygon": polygon, "class_ids": [0, 7]}]},
    }
    config = load_pipeline_config(data=data)  # the labels are only known once the model is read
    with pytest.raises(ConfigError, match=r"analytics.rois.lot.class_ids: class id\(s\) \[7\] do not exist") as info:
        Pipeline(config)
    assert "there are 2 classes (ids 0..1); the detector's classes are 0=car, 1=person" in str(info.value)


def test_nvdsanalytics_groups_for_streams_the_app_lacks_are_dropped_with_a_warning(tmp_path: Path) -> None:
    """deepstream-app ignores them; a YAML line naming a missing source is an error instead (above)."""
    write(tmp_path, "[property]\nenable=1\nconfig-width=100\nconfig-height=100\n"
          "[line-crossing-stream-0]\nenable=1\nline-crossing-Gate=50;60;50;40;0;50;100;50\n"
          "[line-crossing-stream-3]\nenable=1\nline-crossing-Far=50;60;50;40;0;50;100;50\n", "an.txt")  # fmt: skip
    app = write(tmp_path, "[source0]\nuri=a.mp4\n[nvds-analytics]\nenable=1\nconfig-file=an.txt\n")
    config, warnings = load_deepstream_config(app)
    assert [line.name for line in config.analytics.lines] == ["Gate"]
    assert "nvdsanalytics line 'Far': no source for stream(s) [3] (1 sources); ignored" in warnings


def test_a_secondary_on_a_class_the_detector_lacks_is_a_config_error(tmp_path: Path) -> None:
    model = known_detector_onnx(tmp_path / "det.onnx")  # labels: car, person
    classifier = colour_classifier_onnx(tmp_path / "colour.onnx")
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "0.png"), np.zeros((64, 64, 3), np.uint8))
    data = {
        "sources": [{"uri": str(tmp_path / "frames")}],
        "primary": {"model": str(model)},
        "secondary": [{"model": str(classifier), "operate_on_class_ids": [1, 5]}],
    }
    with pytest.raises(ConfigError, match=r"secondary.0.operate_on_class_ids: class id\(s\) \[5\] do not exist"):
        Pipeline(load_pipeline_config(data=data))


@pytest.mark.parametrize("text", ["", "[osd]\nenable=1\n", "[source0]\nenable=0\nuri=a.mp4\n"])
def test_a_file_without_an_enabled_source_says_so(tmp_path: Path, text: str) -> None:
    """It used to fail in validation as "config: : Value error, no sources ... (got {...})", no file named."""
    with pytest.raises(ConfigError, match=r"app.txt: no enabled source: the file has no \[sourceN\] group"):
        load_deepstream_config(write(tmp_path, text))


def test_a_value_refused_after_the_import_names_the_ini_file(tmp_path: Path) -> None:
    text = "[source0]\nenable=1\ntype=3\nuri=file:///tmp/a.mp4\n[streammux]\nbatch-size=-4\n"
    with pytest.raises(ConfigError, match=r"app\.txt \(as imported\): mux\.batch_size: batch_size=-4 is invalid"):
        load_deepstream_config(write(tmp_path, text))


def test_a_video_sink_path_that_cannot_be_a_file_fails_at_construction(tmp_path: Path) -> None:
    """It used to open at the first frame and end the sink mid-run with "write failed: Is a directory"."""
    from lanner.pipeline.sinks.config import VideoSinkConfig
    from lanner.pipeline.sinks.video import VideoSink

    with pytest.raises(ConfigError, match="the video sink path is a folder; give a writable file path"):
        VideoSink(VideoSinkConfig(path=str(tmp_path)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot create the video sink's folder"):
        VideoSink(VideoSinkConfig(path=str(tmp_path / "file" / "out.mp4")))
    VideoSink(VideoSinkConfig(path=str(tmp_path / "new" / "out.mp4"))).close()  # a new folder is fine
    assert (tmp_path / "new").is_dir()


def test_a_bare_camera_index_in_yaml_is_a_v4l2_uri() -> None:
    """YAML reads ``uri: 0`` as an int; it used to be "Input should be a valid string"."""
    config = load_pipeline_config(data={"sources": [{"uri": 0}]})
    assert config.sources[0].uri == "0" and config.sources[0].kind == "v4l2"


def test_an_http_url_is_opened_by_ffmpeg_not_looked_up_as_a_file() -> None:
    """It used to say "file not found; check the path" for any http:// URL."""
    from lanner.core.errors import SourceError
    from lanner.pipeline.sources import SourceConfig
    from lanner.pipeline.sources.file import FileSource

    with pytest.raises(SourceError, match=r"http://127.0.0.1:1/clip.mp4\): cannot open: ") as info:
        FileSource(SourceConfig(uri="http://127.0.0.1:1/clip.mp4"), source_id=0)  # port 1: refused at once
    assert "file not found" not in str(info.value)
