"""The primary detector's network input size (``primary.input_size``, DeepStream's ``infer-dims``).

The grid rewrite is checked against the truth: a random-weight YOLOX exported by torch straight at the new
size must give the same outputs as the same model exported at another size and resized here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_infer import colour_classifier_onnx, known_detector_onnx

from lanner.core.errors import ConfigError, DataError, LannerError
from lanner.data.synth.images import SynthConfig, render_sample
from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.deepstream import load_deepstream_config
from lanner.pipeline.infer import Detector, DetectorConfig
from lanner.pipeline.infer.input_size import resize_detector_onnx
from lanner.pipeline.infer.runtime import open_runtime
from lanner.pipeline.track.matching import box_iou

STRIDES = (8, 16, 32)


def export_yolox(path: Path, size_hw: tuple[int, int]) -> Path:
    """The same seeded random-weight yolox_nano, exported by torch at ``size_hw``."""
    torch = pytest.importorskip("torch")
    from lanner.models import create_model, export_onnx

    torch.manual_seed(0)
    model = create_model("yolox_nano", num_classes=3)
    with torch.no_grad():  # the head starts at a constant prior: spread the outputs
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    export_onnx(model, path, batch="dynamic", input_size=size_hw)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Path]:
    folder = tmp_path_factory.mktemp("yolox_sizes")
    return {size: export_yolox(folder / f"m{size[0]}x{size[1]}.onnx", size) for size in [(64, 96), (96, 160)]}


def run(model: onnx.ModelProto | Path, nchw: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"images": nchw})))


def test_resized_model_matches_a_model_exported_at_that_size(exported: dict[tuple[int, int], Path]) -> None:
    resized = resize_detector_onnx(onnx.load(str(exported[(64, 96)])), (96, 160))
    onnx.checker.check_model(resized)
    meta = {p.key: p.value for p in resized.metadata_props}
    assert json.loads(meta["input_size"]) == [96, 160]
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 96, 160)).astype(np.float32)
    got, want = run(resized, x), run(exported[(96, 160)], x)
    anchors = sum((96 // s) * (160 // s) for s in STRIDES)
    assert got["boxes"].shape == (2, anchors, 4) and got["scores"].shape == (2, anchors, 3)
    np.testing.assert_allclose(got["boxes"], want["boxes"], rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-4, atol=1e-5)


def test_resizing_there_and_back_gives_the_original(exported: dict[tuple[int, int], Path]) -> None:
    original = onnx.load(str(exported[(64, 96)]))
    back = resize_detector_onnx(resize_detector_onnx(original, (128, 224)), (64, 96))
    assert back.SerializeToString() == original.SerializeToString()


@pytest.mark.parametrize(
    ("size", "match"),
    [((100, 160), r"multiples of 32.*use e.g. \[128, 160\]"), ((96, 150), r"multiples of 32.*\[96, 160\]")],
)
def test_sizes_off_the_stride_are_one_clear_error(
    exported: dict[tuple[int, int], Path], size: tuple[int, int], match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        Detector(DetectorConfig(model=str(exported[(64, 96)]), input_size=size))
    assert "primary.input_size" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["[0, 512]", "[-32, 512]", "[288]", "[288, 512, 3]", "[288.5, 512]"])
def test_config_rejects_bad_input_sizes(value: str) -> None:
    with pytest.raises(ConfigError, match="input_size"):
        load_pipeline_config(data={"sources": [{"uri": "a.mp4"}], "primary": {"model": "m.onnx"}},
                             overrides=[f"primary.input_size={value}"])  # fmt: skip


def test_models_without_known_grids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot change the input size.*'softmax'"):
        resize_detector_onnx(onnx.load(str(colour_classifier_onnx(tmp_path / "c.onnx"))), (64, 64))
    no_grid = known_detector_onnx(tmp_path / "d.onnx", strides="[8, 16, 32]")  # constant outputs, no grids
    with pytest.raises(DataError, match="found 0 anchor grids"):
        resize_detector_onnx(onnx.load(str(no_grid)), (96, 96))


def test_detector_runs_at_the_configured_size(exported: dict[tuple[int, int], Path]) -> None:
    native = Detector(DetectorConfig(model=str(exported[(64, 96)]), conf_threshold=1e-4))
    bigger = Detector(DetectorConfig(model=str(exported[(64, 96)]), conf_threshold=1e-4, input_size=(96, 160)))
    assert native.input_spec.size_hw == (64, 96) and bigger.input_spec.size_hw == (96, 160)
    image = np.random.default_rng(1).integers(0, 255, (180, 320, 3), np.uint8)
    raw = bigger.runtime.run(np.zeros((1, 3, 96, 160), np.float32))
    assert raw["boxes"].shape[1] == sum((96 // s) * (160 // s) for s in STRIDES)
    for dets in (native.detect([image])[0], bigger.detect([image])[0]):  # boxes come back in image pixels
        assert len(dets) and (dets.xyxy >= 0).all() and (dets.xyxy[:, [2, 3]] <= [320, 180]).all()


def test_starter_detector_finds_the_same_cars_at_another_input() -> None:
    """Boxes map back to the same image pixels at another input size (a wrong grid or scale would shift them):
    every confident car at 288x512 is found again, in place, at the model's native 448x800."""
    small = Detector(DetectorConfig(model="builtin:traffic_detector", conf_threshold=0.6, input_size=(288, 512)))
    native = Detector(DetectorConfig(model="builtin:traffic_detector", conf_threshold=0.2))
    assert native.input_spec.size_hw == (448, 800) and small.input_spec.size_hw == (288, 512)
    config = SynthConfig(images=8, width=1280, height=720, seed=999, time_of_day={"day": 1.0})
    matched = total = 0
    for index in range(8):
        image = render_sample(config, index)[0]
        a, b = (d.detect([image])[0] for d in (small, native))
        a, b = a[a.class_id == 0], b[b.class_id == 0]
        if len(a) and len(b):
            matched += int((box_iou(a.xyxy, b.xyxy).max(axis=1) >= 0.6).sum())
        total += len(a)
    assert total >= 5 and matched / total >= 0.8, f"{matched} of {total} cars found at both sizes"


def test_a_plan_must_match_the_configured_size(tmp_path: Path, exported: dict[tuple[int, int], Path]) -> None:
    build = pytest.importorskip("lanner.engine.build")
    plan_module = pytest.importorskip("lanner.engine.plan")
    plan = build.build_engine(str(exported[(64, 96)]), build.BuildConfig(tune=False, batch=["1:1:2"]))
    plan_path = plan_module.write_plan(plan, tmp_path / "m.plan")
    assert open_runtime(plan_path, input_size=(64, 96)).metadata["input_size"] == "[64, 96]"
    with pytest.raises(ConfigError, match=r"plan was built for input 64x96.*asks for 96x160"):
        open_runtime(plan_path, input_size=(96, 160))


def test_a_runtime_of_another_size_is_refused(exported: dict[tuple[int, int], Path]) -> None:
    runtime = open_runtime(exported[(64, 96)])
    with pytest.raises(LannerError, match=r"takes \[64, 96\], primary.input_size is \[96, 160\]"):
        Detector(DetectorConfig(model=str(exported[(64, 96)]), input_size=(96, 160)), runtime=runtime)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_deepstream_infer_dims_maps_to_input_size(tmp_path: Path) -> None:
    write(tmp_path, "m.onnx", "")
    write(tmp_path, "pgie.txt", "[property]\nonnx-file=m.onnx\ninfer-dims=3;448;800\n")
    app = write(tmp_path, "app.txt", "[source0]\nuri=a.mp4\n[primary-gie]\nconfig-file=pgie.txt\n")
    config, warnings = load_deepstream_config(app)
    assert config.primary.input_size == (448, 800)
    assert not any("infer-dims" in w for w in warnings)


@pytest.mark.parametrize("dims", ["448;800", "1;448;800", "3;448;wide", "3;448;800;1"])
def test_deepstream_bad_infer_dims_are_one_clear_error(tmp_path: Path, dims: str) -> None:
    write(tmp_path, "pgie.txt", f"[property]\nonnx-file=m.onnx\ninfer-dims={dims}\n")
    app = write(tmp_path, "app.txt", "[source0]\nuri=a.mp4\n[primary-gie]\nconfig-file=pgie.txt\n")
    with pytest.raises(ConfigError, match=r"infer-dims=.* is not 3;H;W"):
        load_deepstream_config(app)


def test_pipeline_batches_at_the_configured_size(exported: dict[tuple[int, int], Path], tmp_path: Path) -> None:
    """The muxer letterboxes to the size the detector runs at, and every frame is inferred."""
    from lanner.data.synth.video import VideoSynthConfig, generate_videos
    from lanner.pipeline.runner import Pipeline

    (clip,) = generate_videos(VideoSynthConfig(cameras=1, seconds=1, fps=10, width=320, height=180, seed=3),
                              tmp_path / "clip", workers=1)  # fmt: skip
    data = {
        "sources": [{"uri": str(clip)}],
        "primary": {"model": str(exported[(64, 96)]), "conf_threshold": 1e-4, "input_size": [96, 160]},
        "telemetry": {"interval_s": 0, "summary_path": str(tmp_path / "summary.json")},
    }
    pipeline = Pipeline(load_pipeline_config(data=data))
    assert pipeline.mux.input_spec.size_hw == (96, 160)
    summary = pipeline.run()
    assert summary.stopped_by == "eos" and summary.errors == []
    assert summary.sources["0"]["inferred"] == summary.frames > 0


def test_extra_input_sizes_merge_boxes_from_every_size(exported: dict[tuple[int, int], Path]) -> None:
    """A box found at any size is kept; the same object found at two sizes is one box (NMS across sizes)."""
    model = str(exported[(64, 96)])
    small = Detector(DetectorConfig(model=model, conf_threshold=1e-4, max_det=1000, input_size=(64, 96)))
    large = Detector(DetectorConfig(model=model, conf_threshold=1e-4, max_det=1000, input_size=(96, 160)))
    both = Detector(DetectorConfig(model=model, conf_threshold=1e-4, max_det=1000, extra_input_sizes=[(96, 160)]))
    assert [spec.size_hw for spec, _ in both.extra] == [(96, 160)]
    image = np.random.default_rng(2).integers(0, 255, (180, 320, 3), np.uint8)
    a, b, merged = (d.detect([image])[0] for d in (small, large, both))
    assert len(a) and len(b) and len(merged) <= len(a) + len(b)
    for part in (a, b):  # every box of either size is in the merge, or suppressed by a better one of its class
        iou = box_iou(part.xyxy, merged.xyxy)
        same = part.class_id[:, None] == merged.class_id[None, :]
        better = merged.confidence[None, :] >= part.confidence[:, None] - 1e-6
        assert ((iou >= 0.45 - 1e-6) & same & better).any(axis=1).all()
    kept = box_iou(merged.xyxy, merged.xyxy)[np.triu_indices(len(merged), 1)]
    pairs = (merged.class_id[:, None] == merged.class_id[None, :])[np.triu_indices(len(merged), 1)]
    assert not (kept[pairs] > 0.45).any()  # no two boxes of one class overlap past the NMS threshold


def test_extra_input_sizes_must_not_repeat(exported: dict[tuple[int, int], Path]) -> None:
    with pytest.raises(ConfigError, match=r"sizes repeat.*\[64, 96\].*\[64, 96\]"):
        Detector(DetectorConfig(model=str(exported[(64, 96)]), extra_input_sizes=[(64, 96)]))
    with pytest.raises(ConfigError, match=r"primary.extra_input_sizes.*\[80, 96\] does not fit.*multiples of 32"):
        Detector(DetectorConfig(model=str(exported[(64, 96)]), extra_input_sizes=[(80, 96)]))
