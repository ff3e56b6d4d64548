"""Shared helpers for the calibration tests: a tiny classifier ONNX with lanner metadata, image folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 16
CLASSES = 4


def tiny_classifier(
    seed: int = 0, *, batch: int | str = "N", metadata: bool = True, size: int = SIZE
) -> onnx.ModelProto:
    """images → Conv+Relu → Conv+Relu → Add (residual) → GAP → Flatten → Gemm(transB) → logits."""
    rng = np.random.default_rng(seed)

    def he(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    inits = {
        "w1": he(8, 3, 3, 3),
        "b1": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "w2": he(8, 8, 3, 3),
        "b2": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "fc_w": he(CLASSES, 8),
        "fc_b": np.zeros(CLASSES, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r1", "r2"], ["sum"], name="add"),
        helper.make_node("GlobalAveragePool", ["sum"], ["pool"], name="gap"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(
            model,
            {
                "input_size": json.dumps([size, size]),
                "mean": json.dumps([123.675, 116.28, 103.53]),
                "std": json.dumps([58.395, 57.12, 57.375]),
                "color_order": "RGB",
                "resize": "stretch",
                "input_layout": "NCHW",
            },
        )
    onnx.checker.check_model(model)
    return model


def save_model(path: Path, model: onnx.ModelProto) -> Path:
    onnx.save(model, str(path))
    return path


def write_images(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (20, 24)) -> list[Path]:
    """``n`` smooth random colour images (blurred noise, like natural images) as PNG; returns paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        noise = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(noise, (5, 5), 1.5)
        path = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
