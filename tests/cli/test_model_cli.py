"""``lanner evaluate / infer / export`` through ``lanner.cli.main.main``: outputs, files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from lanner.cli.main import cli, main
from lanner.cli.model import evaluate_cmd, export_cmd, infer_cmd
from lanner.core import Detections
from lanner.data import DetectionDataset, Sample, read_dataset, write_dataset
from lanner.models import create_model, save_checkpoint

for _command in (evaluate_cmd, infer_cmd, export_cmd):  # until the lead registers them in cli/main.py
    if _command.name not in cli.commands:
        cli.add_command(_command)

CLASSES = ["car", "person"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    """A tiny random YOLOX-nano (64x96 input) with BatchNorm statistics that give spread-out scores."""
    model = create_model("yolox_nano", class_names=CLASSES)
    model.info = model.info.replace(input_size=(64, 96), mean=(120.0,) * 3, std=(60.0,) * 3, color_order="RGB")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)))
        for layer in [*model.head.obj_preds, *model.head.cls_preds, *model.head.reg_preds]:
            layer.weight.mul_(0.0005)
            layer.bias.zero_()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "det.safetensors", model.eval())


def make_images(folder: Path, n: int, size=(64, 96)) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"{i:03d}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return paths


def make_kitti(root: Path, classes=CLASSES) -> Path:
    samples = []
    for i, path in enumerate(make_images(root / "src", 3)):
        boxes = Detections.from_arrays([[10, 10, 40, 40], [50, 5, 90, 60]], [0, len(classes) - 1])
        samples.append(Sample(f"{i:03d}", path, 96, 64, boxes))
    return write_dataset(DetectionDataset(root, list(classes), samples), root / "ds", "kitti")


def test_evaluate_prints_a_table_and_writes_files(detector_ckpt, tmp_path, capsys):
    ds = make_kitti(tmp_path)
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds), "-o", "out"]) == 0
    text = capsys.readouterr().out
    assert "AP@[.5:.95]" in text and "mAP@.5" in text and "person" in text
    doc = json.loads(Path("out/metrics.json").read_text())
    assert doc["task"] == "detection" and doc["num_images"] == 3
    assert set(doc["metrics"]["per_class"]) == set(CLASSES)
    assert Path("out/pr_curves.png").is_file() and Path("out/confusion_matrix.png").is_file()


def test_evaluate_scores_a_plan_like_its_onnx(detector_ckpt, tmp_path, capsys):
    ds = make_kitti(tmp_path)
    assert main(["export", "-m", str(detector_ckpt), "-o", "det.onnx", "--dynamic-batch"]) == 0
    assert main(["build", "det.onnx", "--batch", "4:4:4", "--no-tune", "-o", "det.plan"]) == 0  # 3 images: padded
    maps = {}
    for model in ("det.onnx", "det.plan"):
        assert main(["evaluate", "-m", model, "-d", str(ds), "-o", f"out_{model}"]) == 0
        metrics = json.loads(Path(f"out_{model}/metrics.json").read_text())["metrics"]
        per_class = [value for name in CLASSES for value in metrics["per_class"][name].values()]
        maps[model] = [metrics["mAP"], metrics["mAP50"], *per_class]  # best_f1_confidence: the scores themselves
    assert maps["det.plan"] == pytest.approx(maps["det.onnx"], abs=1e-5)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["-m", "missing.safetensors"], "missing.safetensors: model file not found", 1),
        (["-m", "corrupt.safetensors"], "corrupt.safetensors: cannot read checkpoint", 1),
        (["--device", "cuda"], "GPU requested (--device cuda)", 2),
    ],
)
def test_evaluate_errors_are_one_line(detector_ckpt, tmp_path, capsys, args, message, code):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("checks the no-GPU error")
    Path("corrupt.safetensors").write_bytes(b"not a checkpoint at all")
    ds = make_kitti(tmp_path)
    argv = ["evaluate", "-m", str(detector_ckpt), "-d", str(ds), *args]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_evaluate_names_classes_the_model_does_not_know(detector_ckpt, tmp_path, capsys):
    ds = make_kitti(tmp_path, classes=["car", "tesla"])
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds)]) == 1
    err = capsys.readouterr().err.strip()
    assert "classes the model does not know: tesla" in err and len(err.splitlines()) == 1


def test_evaluate_empty_dataset(detector_ckpt, tmp_path, capsys):
    ds = write_dataset(DetectionDataset(tmp_path, CLASSES, []), tmp_path / "empty", "coco")
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no images" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["json", "kitti", "coco"])
def test_infer_writes_annotated_images_and_predictions(detector_ckpt, capsys, fmt):
    make_images(Path("imgs"), 2)
    Path("imgs/sub").mkdir()
    make_images(Path("imgs/sub"), 1, size=(128, 80))
    argv = ["infer", "-m", str(detector_ckpt), "-i", "imgs", "-o", "pred", "--format", fmt, "--conf", "0.3"]
    assert main(argv) == 0
    assert "3 images" in capsys.readouterr().out
    for name in ("000.png", "001.png", "sub/000.png"):
        assert cv2.imread(f"pred/annotated/{name}") is not None
    if fmt == "json":
        doc = json.loads(Path("pred/predictions.json").read_text())
        assert len(doc) == 3 and sum(len(r["detections"]) for r in doc) > 0
        assert {d["class"] for r in doc for d in r["detections"]} <= set(CLASSES)
    else:
        ds = read_dataset("pred", fmt)
        assert len(ds) == 3 and ds.box_count() > 0 and ds.classes == CLASSES
        assert ds.samples[0].boxes.confidence.min() < 1.0  # scores are kept


def test_infer_reports_an_unreadable_image_and_continues(detector_ckpt, capsys):
    make_images(Path("imgs"), 2)
    Path("imgs/broken.png").write_bytes(b"not a png")
    assert main(["infer", "-m", str(detector_ckpt), "-i", "imgs", "-o", "pred"]) == 1
    captured = capsys.readouterr()
    assert "broken.png: cannot read image" in captured.err
    assert "1 of 3 images could not be read" in captured.err
    assert len(json.loads(Path("pred/predictions.json").read_text())) == 2


def test_infer_missing_input(detector_ckpt, capsys):
    assert main(["infer", "-m", str(detector_ckpt), "-i", "nothing", "-o", "pred"]) == 1
    assert "nothing: no such image or folder" in capsys.readouterr().err


def test_export_detector_prints_the_difference_and_writes_metadata(detector_ckpt, capsys):
    assert main(["export", "-m", str(detector_ckpt), "-o", "m.onnx", "--input-size", "64x128", "--dynamic-batch"]) == 0
    captured = capsys.readouterr()
    assert "max |onnxruntime - pytorch|: boxes" in captured.out
    assert "next: lanner build m.onnx -o m.plan\nnext: lanner compare m.onnx\n" in captured.err
    proto = onnx.load("m.onnx")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["input_size"]) == [64, 128] and json.loads(meta["labels"]) == CLASSES
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize(("flags", "batch"), [([], 1), (["--batch", "3"], 3)])
def test_export_static_batch(tmp_path, capsys, flags, batch):
    model = create_model("resnet10", class_names=["a", "b"])
    ckpt = save_checkpoint(tmp_path / "cls.safetensors", model)
    assert main(["export", "-m", str(ckpt), "-o", "c.onnx", "--input-size", "32", "--opset", "18", *flags]) == 0
    assert "max |onnxruntime - pytorch|: logits" in capsys.readouterr().out
    proto = onnx.load("c.onnx")
    assert proto.opset_import[0].version == 18
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [batch, 3, 32, 32]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_value == batch
    assert {p.key: p.value for p in proto.metadata_props}["batch"] == "static"
    from lanner.models import run_onnx

    assert run_onnx("c.onnx", np.zeros((batch, 3, 32, 32), np.float32))["logits"].shape == (batch, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-size", "64xabc"], "--input-size must be HxW"),
        (["--dynamic-batch", "--batch", "2"], "exclude each other"),
        (["--input-size", "60x90"], "not a multiple of the largest stride 32"),
        (["--batch", "0"], "--batch must be >= 1"),
    ],
)
def test_export_bad_arguments(detector_ckpt, capsys, args, message):
    assert main(["export", "-m", str(detector_ckpt), "-o", "m.onnx", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_export_needs_a_checkpoint(tmp_path, capsys):
    Path("m.onnx").write_bytes(b"x")
    assert main(["export", "-m", "m.onnx", "-o", "out.onnx"]) == 2
    assert "export needs a lanner checkpoint (.safetensors)" in capsys.readouterr().err


def test_classifier_evaluate_and_infer(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        Path(f"set/{name}").mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(f"set/{name}/{i}.png", rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    model = create_model("resnet10", class_names=["cat", "dog"])
    model.info = model.info.replace(input_size=(32, 32))
    ckpt = save_checkpoint(tmp_path / "cls.safetensors", model.eval())
    assert main(["evaluate", "-m", str(ckpt), "-d", "set", "-o", "out"]) == 0
    assert "top-1" in capsys.readouterr().out
    assert json.loads(Path("out/metrics.json").read_text())["task"] == "classification"
    assert main(["infer", "-m", str(ckpt), "-i", "set", "-o", "pred"]) == 0
    doc = json.loads(Path("pred/predictions.json").read_text())
    assert len(doc) == 4 and {c["class"] for c in doc[0]["classes"]} == {"cat", "dog"}
    assert cv2.imread("pred/annotated/cat/0.png") is not None
    assert main(["infer", "-m", str(ckpt), "-i", "set", "-o", "pred", "--format", "kitti"]) == 2
    assert "a classifier's predictions are written as json" in capsys.readouterr().err


def test_infer_on_one_image_file(detector_ckpt, capsys):
    make_images(Path("imgs"), 2)
    assert main(["infer", "-m", str(detector_ckpt), "-i", "imgs/001.png", "-o", "pred", "--conf", "0.3"]) == 0
    assert "1 image: annotated" in capsys.readouterr().out
    assert [r["image"].endswith("001.png") for r in json.loads(Path("pred/predictions.json").read_text())] == [True]
    assert Path("pred/annotated/001.png").is_file()


def test_infer_ctrl_c_writes_the_predictions_of_the_images_done(detector_ckpt, capsys, monkeypatch):
    import lanner.train.predict as predict

    real, calls = predict.predict_detections, []

    def third_batch_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(predict, "predict_detections", third_batch_interrupted)
    make_images(Path("imgs"), 5)
    assert main(["infer", "-m", str(detector_ckpt), "-i", "imgs", "-o", "pred", "--batch-size", "1"]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    done = "imgs: interrupted with 2 of 5 images done"
    assert line == f"{done}; their predictions are in pred/predictions.json; run again for all"
    doc = json.loads(Path("pred/predictions.json").read_text())
    assert [Path(r["image"]).name for r in doc] == ["000.png", "001.png"]


def test_export_to_safetensors_writes_the_weights_without_the_training_state(capsys):
    from lanner.models import load_checkpoint
    from lanner.train.checkpointing import save_training

    model = create_model("resnet10", class_names=["a", "b"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    full = save_training(Path("last.safetensors"), model, optimizer, None, epoch=2, step=4)
    assert main(["export", "-m", str(full), "-o", "w.safetensors"]) == 0
    assert "wrote w.safetensors (weights only" in capsys.readouterr().out
    _, doc = load_checkpoint("w.safetensors")
    assert "optimizer" not in doc["meta"] and doc["extra_tensors"] == []
    assert Path("w.safetensors").stat().st_size < full.stat().st_size
    assert main(["export", "-m", str(full), "-o", "w2.safetensors", "--batch", "2"]) == 2
    assert "are ONNX options" in capsys.readouterr().err
    assert main(["export", "-m", str(full), "-o", str(full)]) == 2
    assert "the output is the checkpoint itself" in capsys.readouterr().err


def test_evaluate_class_map_renames_and_leaves_classes_unscored(detector_ckpt, tmp_path, capsys):
    root = tmp_path / "k"
    samples = []
    for i, path in enumerate(make_images(root / "src", 3)):  # KITTI-style names the model (car, person) lacks
        boxes = Detections.from_arrays([[10, 10, 40, 40], [50, 5, 90, 60], [0, 0, 8, 8]], [0, 1, 2])
        samples.append(Sample(f"{i:03d}", path, 96, 64, boxes))
    ds = write_dataset(DetectionDataset(root, ["Car", "Pedestrian", "Van"], samples), root / "ds", "kitti")
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds)]) == 1
    assert "classes the model does not know: Car, Pedestrian, Van" in capsys.readouterr().err
    mapped = ["--class-map", "Car=car", "--class-map", "Pedestrian=person", "--class-map", "Van="]
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds), "-o", "out", *mapped]) == 0
    doc = json.loads(Path("out/metrics.json").read_text())
    assert {k: v["num_gt"] for k, v in doc["metrics"]["per_class"].items()} == {"car": 3, "person": 3}
    assert doc["settings"]["class_map"] == {"Car": "car", "Pedestrian": "person", "Van": ""}
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds), "--class-map", "Truck=car"]) == 2
    assert "--class-map names classes the dataset does not have: Truck" in capsys.readouterr().err
    assert main(["evaluate", "-m", str(detector_ckpt), "-d", str(ds), "--class-map", "Car"]) == 2
    assert "is not DATASET_CLASS=MODEL_CLASS" in capsys.readouterr().err
