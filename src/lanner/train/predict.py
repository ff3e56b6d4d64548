"""Batched prediction on BGR images with a lanner model (torch) or an exported ONNX file (ONNX Runtime).

Both paths use the same preprocessing (``lanner.data.preprocess``: letterbox/stretch, colour order,
mean/std from the model's metadata) and return boxes in original-image pixels, so a checkpoint and
its ONNX export give the same detections. The torch path uses ``model.predict`` (torch NMS); the ONNX
path decodes the ``yolox_decoded`` outputs (boxes xyxy + per-class scores) and runs the same
multi-class NMS in numpy (``multiclass_nms_numpy``).

Example:
    >>> import numpy as np
    >>> from lanner.models import create_model
    >>> model = create_model("yolox_nano", num_classes=2)
    >>> model.info = model.info.replace(input_size=(64, 64))
    >>> dets = predict_detections(model, [np.zeros((48, 80, 3), np.uint8)], conf=0.5)
    >>> len(dets)
    1
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError, UsageError
from lanner.core.nms import NmsParams, select_detections
from lanner.core.ultralytics import POSTPROCESS as ULTRALYTICS
from lanner.core.ultralytics import PROBABILITIES, lanner_metadata, ultralytics_decoder
from lanner.data.preprocess import InputSpec, boxes_to_image, to_network_input

if TYPE_CHECKING:
    from torch import nn

MODEL_SUFFIXES = (".safetensors", ".onnx", ".plan")


@dataclass
class OnnxModel:
    """An exported lanner model run with ONNX Runtime; carries what ``metadata_props`` says about it.

    Example:
        >>> model = OnnxModel.load("model.onnx")  # doctest: +SKIP
        >>> model.task, model.class_names  # doctest: +SKIP
    """

    path: Path
    session: Any
    metadata: dict[str, str]
    spec: InputSpec
    task: str
    class_names: tuple[str, ...]
    postprocess: str
    input_name: str
    fixed_batch: int | None
    output_names: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Self:
        """Open ``path`` with ONNX Runtime (CUDA provider for ``device="cuda"``); bad files raise ``DataError``."""
        import onnxruntime as ort

        path = Path(path)
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError(
                    "GPU requested (--device cuda) but ONNX Runtime has no CUDA provider here",
                    fix="use --device cpu, or install onnxruntime-gpu on a machine with an NVIDIA GPU",
                )
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # ORT raises its own exception types for unreadable protobufs
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(
                f"cannot load ONNX model: {first}", where=str(path), fix="re-export it with `lanner export`"
            ) from None
        meta = dict(session.get_modelmeta().custom_metadata_map)
        model_input = session.get_inputs()[0]
        outputs = [o.name for o in session.get_outputs()]
        return cls.from_metadata(path, session, meta, model_input.name, list(model_input.shape), outputs)

    @classmethod
    def from_metadata(
        cls, path: Path, session: Any, meta: dict[str, str], input_name: str, input_shape: Any, outputs: list[str]
    ) -> Self:
        """The model described by its ``metadata_props`` (what ``lanner export`` writes, or an Ultralytics
        export's, translated by ``lanner.core.ultralytics``), run by ``session``."""
        meta = lanner_metadata(meta, input_shape, where=str(path))
        try:
            spec = InputSpec.from_metadata(meta)
        except DataError as error:  # say which file lacks the metadata
            raise DataError(error.what, where=str(path), fix=error.fix) from None
        labels = tuple(json.loads(meta["labels"])) if "labels" in meta else ()
        return cls(
            path=path,
            session=session,
            metadata=meta,
            spec=spec,
            task=meta.get("task", "detection" if meta.get("postprocess") == "yolox_decoded" else "classification"),
            class_names=labels,
            postprocess=meta.get("postprocess", "softmax"),
            input_name=input_name,
            fixed_batch=input_shape[0] if input_shape and isinstance(input_shape[0], int) else None,
            output_names=outputs,
        )

    def run(self, nchw: np.ndarray) -> list[np.ndarray]:
        """Run a batch of any size (chunked/padded to a static batch if the model has one); outputs in order."""
        if self.fixed_batch is None:
            return self._run_once(nchw)
        size, n = self.fixed_batch, nchw.shape[0]
        chunks = []
        for start in range(0, n, size):
            part = nchw[start : start + size]
            pad = size - part.shape[0]
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            chunks.append([out[: size - pad] for out in self._run_once(part)])
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(self.output_names))]

    def _run_once(self, nchw: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: nchw})


class PlanModel(OnnxModel):
    """A lanner plan (``lanner build``) run by lanner's engine: the same metadata and protocol as ``OnnxModel``
    (the plan keeps the ONNX ``metadata_props``), so ``lanner evaluate``/``infer`` score what gets deployed, e.g.
    an INT8 plan's mAP next to its FP32 ONNX. Any batch runs (split or padded to the plan's profiles).

    Example:
        >>> model = PlanModel.load("det_int8.plan")  # doctest: +SKIP
    """

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Self:
        """Open a plan on the CPU backend; a damaged, mismatched or foreign file raises a ``LannerError``."""
        if device != "cpu":
            raise UsageError(
                f"lanner plans run on the CPU backend only (got --device {device})",
                fix="use --device cpu, or pass the .onnx model to run it on the GPU",
            )
        from lanner.engine.runtime import Engine

        path = Path(path)
        engine = Engine.load(path)
        meta = dict(getattr(engine.plan.graph, "metadata_props", {}) or {})
        first = engine.inputs[0]
        return cls.from_metadata(path, engine, meta, first.name, list(first.shape), [o.name for o in engine.outputs])

    def _run_once(self, nchw: np.ndarray) -> list[np.ndarray]:
        out = self.session.infer({self.input_name: np.ascontiguousarray(nchw, np.float32)}, pad=True)
        return [out[name] for name in self.output_names]


Model = Any  # an ``nn.Module`` with ``.info`` (lanner model), an ``OnnxModel`` or a ``PlanModel``


def load_model(path: str | Path, device: str = "cpu") -> Model:
    """Load a checkpoint (``.safetensors``, torch), an exported ``.onnx`` model or a ``.plan`` for inference.

    Missing, unsupported or corrupt files raise ``DataError`` with one line saying which file and why.

    Example:
        >>> model = load_model("results/best.safetensors")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("model file not found", where=str(path), fix="check the path passed with -m/--model")
    if path.suffix not in MODEL_SUFFIXES:
        raise DataError(
            f"unsupported model file type '{path.suffix}'",
            where=str(path),
            fix="pass a lanner checkpoint (.safetensors), an exported model (.onnx) or a plan (.plan)",
        )
    check_device(device)
    if path.suffix == ".onnx":
        return OnnxModel.load(path, device)
    if path.suffix == ".plan":
        return PlanModel.load(path, device)
    from lanner.models import model_from_checkpoint

    try:
        model = model_from_checkpoint(path)
    except DataError:
        raise
    except Exception as error:  # safetensors raises its own errors for truncated/garbled files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"cannot read checkpoint: {first}", where=str(path), fix="use a checkpoint saved by lanner"
        ) from None
    return model.to(device).eval()


def check_device(device: str) -> None:
    """Fail with one line if ``device`` asks for a GPU that this machine (or this torch build) lacks."""
    if not device.startswith("cuda"):
        if device != "cpu":
            raise UsageError(f"unknown device '{device}'", fix="use cpu or cuda (cuda:N)")
        return
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            f"GPU requested (--device {device}) but no CUDA device is available",
            fix="use --device cpu, or run on a machine with an NVIDIA GPU and a CUDA build of torch",
        )


def model_task(model: Model) -> str:
    """``"detection"`` or ``"classification"`` for a torch or ONNX model."""
    return model.task if isinstance(model, OnnxModel) else _unwrap(model).info.task


def model_class_names(model: Model) -> tuple[str, ...]:
    """The class names the model predicts, in class-id order."""
    return model.class_names if isinstance(model, OnnxModel) else tuple(_unwrap(model).info.class_names)


def input_spec(model: Model, input_size: tuple[int, int] | None = None) -> InputSpec:
    """The preprocessing ``InputSpec`` from ``model.info`` (torch) or the ONNX metadata; optional size override."""
    if isinstance(model, OnnxModel):
        spec = model.spec
    else:
        info = _unwrap(model).info
        spec = InputSpec(
            size_hw=tuple(info.input_size),
            resize=info.resize,
            color_order=info.color_order,
            mean=tuple(info.mean),
            std=tuple(info.std),
            pad_value=info.pad_value,
        )
    if input_size is not None:
        from dataclasses import replace

        spec = replace(spec, size_hw=tuple(input_size))
    return spec


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and hasattr(model.module, "info") else model


def multiclass_nms_numpy(
    boxes: np.ndarray,
    scores: np.ndarray,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    pre_nms_topk: int = 3000,
) -> Detections:
    """``lanner.models.multiclass_nms`` for one image in numpy: boxes (N, 4) xyxy, scores (N, C).

    Every (box, class) pair above ``conf_threshold`` among the best ``pre_nms_topk`` is a candidate;
    class-aware greedy NMS keeps at most ``max_det``.

    Example:
        >>> d = multiclass_nms_numpy(np.array([[0.0, 0, 4, 4], [0, 0, 4, 4.2]]), np.array([[0.9, 0.1], [0.8, 0.0]]))
        >>> d.class_id.tolist(), len(d)
        ([0], 1)
    """
    params = NmsParams(conf_threshold, iou_threshold, max_det, pre_nms_topk)
    return select_detections(np.asarray(boxes), np.asarray(scores), params)


def _batches(images: Sequence[np.ndarray], batch_size: int):
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


def _check_task(model: Model, task: str) -> None:
    if model_task(model) != task:
        raise UsageError(
            f"this is a {model_task(model)} model; {task} prediction needs a {task} model",
            fix=f"use predict_{'classes' if task == 'detection' else 'detections'} or another model",
        )


def predict_detections(
    model: Model,
    images_bgr: Sequence[np.ndarray],
    conf: float = 0.001,
    iou: float = 0.65,
    batch_size: int = 8,
    device: str | None = None,
    max_det: int = 300,
    input_size: tuple[int, int] | None = None,
) -> list[Detections]:
    """Detect objects in BGR uint8 images (any sizes); one ``Detections`` per image, boxes in its pixels.

    ``model`` is a lanner detector (``nn.Module``, possibly DDP-wrapped; put in eval mode for the call
    and restored after) or an ``OnnxModel``. ``device`` defaults to where the torch model lives.

    Example:
        >>> dets = predict_detections(model, [cv2.imread("a.jpg")], conf=0.25)  # doctest: +SKIP
    """
    _check_task(model, "detection")
    spec = input_spec(model, input_size)
    results: list[Detections] = []
    for chunk in _batches(images_bgr, batch_size):
        nchw, scales = to_network_input(list(chunk), spec)
        if isinstance(model, OnnxModel) and model.postprocess == ULTRALYTICS:
            params = NmsParams(conf, iou, max_det, pre_nms_topk=3000)  # multiclass_nms_numpy's candidates
            dets = ultralytics_decoder(model.metadata)(model.run(nchw)[0], params)
        elif isinstance(model, OnnxModel):
            boxes, scores = model.run(nchw)[:2]
            dets = [multiclass_nms_numpy(b, s, conf, iou, max_det) for b, s in zip(boxes, scores)]
        else:
            dets = _torch_predict(model, nchw, device, conf, iou, max_det)
        for det, scale, image in zip(dets, scales, chunk):
            det.xyxy = boxes_to_image(det.xyxy, scale, image.shape[:2])
            results.append(det)
    return results


def predict_classes(
    model: Model,
    images_bgr: Sequence[np.ndarray],
    batch_size: int = 32,
    device: str | None = None,
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Class logits (N, K) of a classifier (torch or ONNX) on BGR uint8 images; for a model that outputs
    probabilities (an Ultralytics ``-cls`` export) their logarithm, so a softmax gives them back.

    Example:
        >>> logits = predict_classes(model, images)  # doctest: +SKIP
        >>> top1 = logits.argmax(1)  # doctest: +SKIP
    """
    _check_task(model, "classification")
    spec = input_spec(model, input_size)
    outputs = []
    for chunk in _batches(images_bgr, batch_size):
        nchw, _ = to_network_input(list(chunk), spec)
        if isinstance(model, OnnxModel) and model.postprocess == PROBABILITIES:  # softmax(log p) = p downstream
            outputs.append(np.log(np.clip(model.run(nchw)[0], 1e-12, None)))
        else:
            outputs.append(model.run(nchw)[0] if isinstance(model, OnnxModel) else _torch_forward(model, nchw, device))
    k = len(model_class_names(model))
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0, k), np.float32)


def _torch_run(model: nn.Module, nchw: np.ndarray, device: str | None, call):
    import torch

    net = _unwrap(model)
    target = torch.device(device) if device else next(net.parameters()).device
    net.to(target)  # no-op when it already lives there
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return call(net, torch.from_numpy(nchw).to(target))
    finally:
        net.train(was_training)


def _torch_predict(model, nchw, device, conf, iou, max_det) -> list[Detections]:
    return _torch_run(model, nchw, device, lambda net, x: net.predict(x, conf, iou, max_det))


def _torch_forward(model, nchw, device) -> np.ndarray:
    return _torch_run(model, nchw, device, lambda net, x: net(x).float().cpu().numpy())


def draw_detections(image_bgr: np.ndarray, detections: Detections, class_names: Sequence[str]) -> np.ndarray:
    """A copy of the image with each box, its class name and score drawn (cv2).

    Example:
        >>> boxes = Detections.from_arrays([[5, 5, 30, 30]], [0])
        >>> out = draw_detections(np.zeros((40, 40, 3), np.uint8), boxes, ["car"])
        >>> out.shape, int(out.max()) > 0
        ((40, 40, 3), True)
    """
    from lanner.core.drawing import draw_boxes

    names = [class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)) for c in detections.class_id]
    labels = [f"{name} {float(score):.2f}" for name, score in zip(names, detections.confidence, strict=True)]
    return draw_boxes(image_bgr, detections.xyxy, detections.class_id, labels)


def draw_label(image_bgr: np.ndarray, text: str) -> np.ndarray:
    """A copy of the image with ``text`` in a box at the top-left (classification results)."""
    import cv2

    out = image_bgr.copy()
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    cv2.rectangle(out, (0, 0), (tw + 4, th + base + 4), (0, 0, 0), -1)
    cv2.putText(out, text, (2, th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out
