"""``lanner evaluate``, ``lanner infer`` and ``lanner export``: use a trained model.

Each command parses its arguments, calls ``lanner.train`` / ``lanner.models`` and prints the result.

Example:
    lanner evaluate -m results/best.safetensors -d data/val -o results/eval
    lanner infer -m model.onnx -i street.jpg -o preds --format kitti
    lanner export -m results/best.safetensors -o model.onnx --dynamic-batch --input-size 384x640
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from lanner.cli.app import err, info, next_steps, out, progress_bar
from lanner.core.errors import ConfigError, DataError, Interrupted, UsageError
from lanner.core.folders import make_folder, replacing
from lanner.data.images import jpeg_cut_short

_path = click.Path(path_type=Path)  # existence is checked by the library, with a one-line error
_UNIT = click.FloatRange(0.0, 1.0)  # a score threshold
_IOU = click.FloatRange(0.0, 1.0, min_open=True)  # NMS at IoU 0 would keep one box per class
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
INFER_FORMATS = ("json", "kitti", "coco")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@click.command("evaluate", short_help="Score a model on a labelled set: COCO mAP or top-1/top-5.")
@click.option("-m", "--model", "model_path", type=_path, required=True, help="Checkpoint, .onnx or .plan.")
@click.option("-d", "--dataset", "dataset_path", type=_path, required=True, help="KITTI/COCO/YOLO or ImageFolder set.")
@click.option("-o", "--output", type=_path, help="Folder for metrics.json, pr_curves.png, confusion_matrix.png.")
@click.option("--conf", type=_UNIT, default=0.001, show_default=True, help="Score threshold (keep low for mAP).")
@click.option("--iou", type=_IOU, default=0.65, show_default=True, help="NMS IoU threshold.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--class-map",
    "class_maps",
    multiple=True,
    help="DATASET_CLASS=MODEL_CLASS (repeat): score a model trained on other names, e.g. Pedestrian=person; "
    "DATASET_CLASS= leaves that class unscored (its boxes become ignore regions).",
)
def evaluate_cmd(
    model_path: Path,
    dataset_path: Path,
    output: Path | None,
    conf: float,
    iou: float,
    batch_size: int,
    device: str,
    class_maps: tuple[str, ...],
) -> None:
    """Score a model on a labelled dataset: COCO mAP for detectors, top-1/top-5 for classifiers.

    \b
    Example:
      lanner evaluate -m results/best.safetensors -d d_split/val -o eval/
      lanner evaluate -m det_int8.plan -d d_split/val -o eval_int8/   # what INT8 costs in mAP
      lanner evaluate -m yolov8n.onnx -d kitti/ --class-map Car=car --class-map Pedestrian=person \
          --class-map Cyclist=bicycle --class-map Van= --class-map Misc=   # a COCO model on KITTI
    """
    from lanner.data.io import read_any
    from lanner.train.evaluate import evaluate_model
    from lanner.train.predict import load_model

    class_map = parse_class_map(class_maps)
    if output is not None:
        make_folder(output)
    model = load_model(model_path, device)
    ds = read_any(dataset_path)
    with progress_bar("evaluating", len(ds)) as advance:
        report = evaluate_model(
            model, ds, output, conf=conf, iou=iou, batch_size=batch_size, device=device, progress=advance,
            class_map=class_map,
        )  # fmt: skip
    if report.task == "detection":
        _print_detection(report)
    else:
        _print_classification(report)
    for path in report.files.values():
        info(f"wrote {path}")


def _print_detection(report) -> None:
    m = report.metrics
    table = Table(title=f"detection: {report.num_images} images")
    for column in ("class", "GT boxes", "AP@[.5:.95]", "AP@.5", "precision", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name in report.class_names:
        table.add_row(
            name,
            str(m.num_gt.get(name, 0)),
            _fmt(m.per_class_ap[name]),
            _fmt(m.per_class_ap50[name]),
            _fmt(m.precision[name]),
            _fmt(m.recall[name]),
        )
    table.add_section()
    table.add_row("all", str(sum(m.num_gt.values())), _fmt(m.map), _fmt(m.map50), "", "")
    out.print(table)
    out.print(f"mAP@[.5:.95] {_fmt(m.map, 4)}  mAP@.5 {_fmt(m.map50, 4)}  mAP@.75 {_fmt(m.map75, 4)}", markup=False)


def _print_classification(report) -> None:
    m = report.metrics
    table = Table(title=f"classification: {report.num_images} images")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("accuracy", justify="right")
    support = m.confusion.sum(axis=1)
    for i, name in enumerate(report.class_names):
        table.add_row(name, str(int(support[i])), _fmt(m.per_class_accuracy[name]))
    out.print(table)
    out.print(f"top-1 {_fmt(m.top1, 4)}  top-5 {_fmt(m.top5, 4)}", markup=False)


def list_images(path: Path) -> tuple[list[Path], Path]:
    """The images to run on (one file, or a folder's images recursively, sorted) and the root they are under."""
    if path.is_file():
        return [path], path.parent
    if not path.is_dir():
        raise DataError("no such image or folder", where=str(path), fix="pass an image file or a folder of images")
    images = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError("the folder has no images", where=str(path), fix=f"put {', '.join(IMAGE_SUFFIXES)} files in it")
    return images, path


@click.command("infer", short_help="Run a model on images: annotated copies and predictions.")
@click.option("-m", "--model", "model_path", type=_path, required=True, help="Checkpoint, .onnx or .plan.")
@click.option("-i", "--input", "input_path", type=_path, required=True, help="An image, a folder of images or a video.")
@click.option("-o", "--output", type=_path, required=True, help="Folder for annotated images and predictions.")
@click.option("--format", "fmt", type=click.Choice(INFER_FORMATS), default="json", show_default=True)
@click.option("--conf", type=_UNIT, default=0.25, show_default=True, help="Score threshold.")
@click.option("--iou", type=_IOU, default=0.45, show_default=True, help="NMS IoU threshold.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
def infer_cmd(
    model_path: Path,
    input_path: Path,
    output: Path,
    fmt: str,
    conf: float,
    iou: float,
    batch_size: int,
    device: str,
) -> None:
    """Run a model on images: annotated copies in OUTPUT/annotated plus predictions as JSON, KITTI or COCO.

    An image that cannot be read is reported and skipped; the others are processed, then the command
    exits 1 naming how many failed.

    \b
    Example:
      lanner infer -m results/best.safetensors -i d_split/val/images -o preds/ --format kitti
      lanner infer -m det.onnx -i cams/cam0.mp4 -o preds/      # cam0_annotated.mp4 + cam0.jsonl
    """
    from lanner.train.predict import load_model, model_task
    from lanner.train.video_infer import VIDEO_SUFFIXES

    make_folder(output)  # before the model runs: a file there would fail at the first annotated image
    model = load_model(model_path, device)
    if model_task(model) != "detection" and fmt != "json":
        raise UsageError(f"--format {fmt} holds boxes; a classifier's predictions are written as json")
    if input_path.is_file() and input_path.suffix.lower() in VIDEO_SUFFIXES:
        _infer_video(model, input_path, output, fmt, conf, iou, batch_size, device)
        return
    paths, root = list_images(input_path)
    with progress_bar("inferring", len(paths)) as advance:
        records, failed, interrupted = run_inference(model, paths, root, output, conf, iou, batch_size, device, advance)
    written = write_predictions(records, model, output, fmt)  # after Ctrl-C too: the images done so far
    plural = "" if len(records) == 1 else "s"
    out.print(
        f"{len(records)} image{plural}: annotated in {output / 'annotated'}, predictions in {written}", markup=False
    )
    if interrupted:
        what = f"interrupted with {len(records)} of {len(paths)} images done"
        raise Interrupted(what, where=str(input_path), fix=f"their predictions are in {written}; run again for all")
    if failed:
        raise DataError(f"{len(failed)} of {len(paths)} images could not be read (listed above)", where=str(input_path))


def _infer_video(model, path: Path, output: Path, fmt: str, conf, iou, batch_size, device) -> None:
    """A video in, an annotated video and per-frame JSON lines out (``lanner.train.video_infer``)."""
    from lanner.train.predict import model_task
    from lanner.train.video_infer import frame_count, infer_video

    if model_task(model) != "detection":
        raise UsageError(
            "video input needs a detector", where=str(path), fix="give a folder of images for a classifier"
        )
    if fmt != "json":
        raise UsageError(
            f"--format {fmt} is for images; a video's predictions are JSON lines", fix="leave out --format"
        )
    with progress_bar("frames", frame_count(path)) as advance:
        report = infer_video(
            model, path, output, conf=conf, iou=iou, batch_size=batch_size, device=device, progress=advance
        )
    out.print(f"{report.frames} frames: annotated in {report.video}, predictions in {report.predictions}", markup=False)
    if report.interrupted:
        kept = f"{report.video} (closed, it plays) and {report.predictions} hold the frames before it"
        raise Interrupted(f"interrupted after frame {report.frames}", where=str(path), fix=kept)
    if report.error:
        raise DataError(f"{report.error}; the frames before it are written", where=str(path))


def run_inference(model, paths, root, output, conf, iou, batch_size, device, advance):
    """Predict batch by batch, write annotated images; unreadable images are reported and skipped.

    Returns ``(records, failed, interrupted)``: records are ``(relative path, image path, (h, w), result)``
    where result is ``Detections`` or a logits row; ``interrupted`` is True after Ctrl-C (the records stop there).
    """
    import cv2

    from lanner.train.predict import (
        draw_detections,
        draw_label,
        model_class_names,
        model_task,
        predict_classes,
        predict_detections,
    )

    names = model_class_names(model)
    detect = model_task(model) == "detection"
    records, failed = [], []
    try:
        for start in range(0, len(paths), batch_size):
            batch = _read_images(paths[start : start + batch_size], failed)
            images = [image for _, image in batch]
            if not batch:
                results = []
            elif detect:
                results = predict_detections(model, images, conf, iou, batch_size, device)
            else:
                results = list(predict_classes(model, images, batch_size, device))
            for (path, image), result in zip(batch, results):
                relative = path.relative_to(root)
                label = _top_label(result, names) if not detect else ""
                drawn = draw_detections(image, result, names) if detect else draw_label(image, label)
                target = output / "annotated" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), drawn)
                records.append((relative, path, image.shape[:2], result))
            advance(len(paths[start : start + batch_size]))
    except KeyboardInterrupt:  # keep what is done: the caller writes the predictions so far
        return records, failed, True
    return records, failed, False


def _read_images(paths, failed: list) -> list:
    """``(path, BGR image)`` for each readable path; an unreadable one is named and added to ``failed``."""
    import cv2

    batch = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            failed.append(path)  # shown even with --quiet: the final error line refers to this list
            err.print(f"warning: {path}: cannot read image (missing, empty or not an image); skipped", markup=False)
            continue
        if jpeg_cut_short(path):  # libjpeg greys out the missing rest and prints a line without a name
            err.print(f"warning: {path}: the JPEG data ends early (truncated file?); the rest is grey", markup=False)
        batch.append((path, image))
    return batch


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _top_label(logits: np.ndarray, names) -> str:
    k = int(np.argmax(logits))
    return f"{names[k]} {float(_softmax(logits)[k]):.2f}"


def write_predictions(records, model, output: Path, fmt: str) -> Path:
    """Write the predictions as ``predictions.json``, KITTI ``labels/`` or COCO ``annotations.json``."""
    from lanner.train.predict import model_class_names

    names = list(model_class_names(model))
    output.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path = output / "predictions.json"
        path.write_text(json.dumps([_json_record(r, names) for r in records], indent=1) + "\n", encoding="utf-8")
        return path
    from lanner.data.dataset import DetectionDataset, Sample
    from lanner.data.io import write_dataset

    samples = [
        Sample(relative.with_suffix("").as_posix(), path.resolve(), hw[1], hw[0], dets)
        for relative, path, hw, dets in records
    ]
    # KITTI labels need their images beside them (images/) to be a dataset lanner reads back; COCO can point
    images = "link" if fmt == "kitti" else "keep"
    write_dataset(DetectionDataset(output.resolve(), names, samples), output, fmt, images=images)
    return output / ("labels" if fmt == "kitti" else "annotations.json")


def _json_record(record, names: list[str]) -> dict:
    _, path, (h, w), result = record
    doc = {"image": str(path), "width": int(w), "height": int(h)}
    if isinstance(result, np.ndarray):
        probs = _softmax(result)
        order = np.argsort(-probs, kind="stable")[:5]
        doc["classes"] = [{"class": names[k], "class_id": int(k), "probability": float(probs[k])} for k in order]
        return doc
    doc["detections"] = [
        {
            "class": names[int(c)],
            "class_id": int(c),
            "confidence": round(float(s), 5),
            "xyxy": [round(float(v), 2) for v in b],
        }
        for b, c, s in zip(result.xyxy, result.class_id, result.confidence)
    ]
    return doc


def parse_class_map(items: tuple[str, ...]) -> dict[str, str]:
    """``("Car=car", "Van=")`` -> ``{"Car": "car", "Van": ""}``; a malformed item is a ``UsageError``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--class-map {item!r} is not DATASET_CLASS=MODEL_CLASS", fix="e.g. --class-map Car=car")
        out[name.strip()] = target.strip()
    return out


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise ConfigError(f"--input-size must be HxW (e.g. 384x640) or one number, got {text!r}")
    return sizes[0], sizes[1]


@click.command("export", short_help="Export a checkpoint to ONNX (checked with ONNX Runtime) or to its weights.")
@click.option("-m", "--model", "model_path", type=_path, required=True, help="Checkpoint (.safetensors).")
@click.option("-o", "--output", type=_path, required=True, help="ONNX file, or .safetensors for the weights only.")
@click.option("--opset", default=17, show_default=True, help="ONNX opset (>= 17).")
@click.option("--dynamic-batch", is_flag=True, help="Leave the batch axis dynamic.")
@click.option("--batch", type=int, default=None, help="A fixed batch size (default 1).")
@click.option("--input-size", help="Input HxW, e.g. 384x640 (default: the model's).")
def export_cmd(
    model_path: Path, output: Path, opset: int, dynamic_batch: bool, batch: int | None, input_size: str | None
) -> None:
    """Export a checkpoint to ONNX with its metadata; checks it against PyTorch with ONNX Runtime. An output
    ending in .safetensors gets the weights and metadata without the training state (a third of the size;
    evaluates, exports and fine-tunes like the original, but cannot resume).

    \b
    Example:
      lanner export -m results/best.safetensors -o det.onnx --dynamic-batch
      lanner export -m results/best.safetensors -o det.safetensors
    """
    from lanner.train.predict import load_model

    if dynamic_batch and batch is not None:
        raise UsageError("--dynamic-batch and --batch exclude each other", fix="pass one of them")
    if batch is not None and batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}")
    if model_path.suffix != ".safetensors":
        raise UsageError(
            f"export needs a lanner checkpoint (.safetensors), got '{model_path.suffix or model_path.name}'",
            where=str(model_path),
        )
    if output.suffix == ".safetensors":
        _export_weights(model_path, output, dynamic_batch or batch is not None or input_size is not None)
        return
    model = load_model(model_path)
    size = parse_input_size(input_size)
    diffs = export_with_batch(model, output, opset, "dynamic" if dynamic_batch else (batch or 1), size)
    shown = ", ".join(f"{name} {value:.3g}" for name, value in diffs.items())
    out.print(f"wrote {output}; max |onnxruntime - pytorch|: {shown}", markup=False)
    next_steps(f"lanner build {output} -o {output.with_suffix('.plan')}", f"lanner compare {output}")


def _export_weights(model_path: Path, output: Path, onnx_options: bool) -> None:
    """``lanner export -o X.safetensors``: the checkpoint's weights without its training state."""
    from lanner.models import save_weights_only

    if onnx_options:
        raise UsageError("--dynamic-batch, --batch and --input-size are ONNX options", fix="drop them, or write .onnx")
    if output.resolve() == model_path.resolve():
        raise UsageError("the output is the checkpoint itself", where=str(output), fix="write to another file")
    save_weights_only(model_path, output)
    mb = (model_path.stat().st_size / 1e6, output.stat().st_size / 1e6)
    out.print(f"wrote {output} (weights only, {mb[1]:.1f} MB; the checkpoint is {mb[0]:.1f} MB)", markup=False)
    next_steps(f"lanner export -m {output} -o {output.with_suffix('.onnx')}")


def export_with_batch(
    model, path: Path, opset: int, batch: int | str, input_size: tuple[int, int] | None
) -> dict[str, float]:
    """``export_onnx`` for batch "dynamic", 1, or a fixed N (dynamic export with axis 0 pinned to N, re-checked)."""
    from lanner.models import export_onnx

    if batch == "dynamic" or batch == 1:
        report = export_onnx(model, path, batch="dynamic" if batch == "dynamic" else "static", opset=opset,
                             input_size=input_size)  # fmt: skip
        return report.max_abs_diff
    report = export_onnx(model, path, batch="dynamic", opset=opset, input_size=input_size)
    _pin_batch(path, int(batch))
    return _check_against_torch(model, path, int(batch), report.input_shape[1:])


def _pin_batch(path: Path, batch: int) -> None:
    import onnx

    proto = onnx.load(str(path))
    for value in [*proto.graph.input, *proto.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
    props = {p.key: p.value for p in proto.metadata_props}
    props["batch"] = "static"
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    with replacing(path) as partial:
        onnx.save(proto, str(partial))


def _check_against_torch(model, path: Path, batch: int, chw: tuple[int, ...]) -> dict[str, float]:
    import torch

    from lanner.models import run_onnx

    example = torch.randn(batch, *chw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(example)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    got = run_onnx(path, example.numpy())
    return {
        name: float(np.abs(got[name] - ref.numpy()).max(initial=0.0)) for name, ref in zip(model.info.outputs, expected)
    }
