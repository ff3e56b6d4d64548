"""Pure-torch NMS against a plain greedy reference written loop by loop."""

import numpy as np
import pytest
import torch

from lanner.models import batched_nms, box_iou, multiclass_nms, nms


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Textbook greedy NMS: take the best remaining box, drop every box overlapping it too much."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    for i in order:
        if all(reference_iou(boxes[i], boxes[k]) <= iou_threshold for k in keep):
            keep.append(i)
    return keep


def reference_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clustered boxes, so many overlap and suppression chains are long."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g) * 60
    sizes = 5 + torch.rand(n, 2, generator=g) * 30
    return torch.cat([centres, centres + sizes], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_nms_equals_the_greedy_reference(seed: int, iou_threshold: float) -> None:
    boxes, scores = random_boxes(200, seed)
    expected = reference_nms(boxes.numpy().astype(np.float64), scores.numpy(), iou_threshold)
    assert nms(boxes, scores, iou_threshold).tolist() == expected


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_is_the_reference_per_class(seed: int) -> None:
    boxes, scores = random_boxes(150, seed)
    classes = torch.randint(0, 4, (150,), generator=torch.Generator().manual_seed(seed))
    kept = batched_nms(boxes, scores, classes, 0.5).tolist()
    expected = []
    for c in range(4):
        idx = np.flatnonzero(classes.numpy() == c)
        expected += [
            int(idx[i]) for i in reference_nms(boxes.numpy()[idx].astype(np.float64), scores.numpy()[idx], 0.5)
        ]
    assert sorted(kept) == sorted(expected)
    assert scores[kept].tolist() == sorted(scores[kept].tolist(), reverse=True)  # best first


def test_same_box_of_two_classes_is_kept_twice() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3)
    assert batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]


def test_empty_input() -> None:
    empty = torch.zeros(0, 4)
    assert nms(empty, torch.zeros(0), 0.5).tolist() == []
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).tolist() == []


def test_box_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1.0, 1 / 3, 0.0, 0.0]]))


def test_multiclass_nms_per_image() -> None:
    boxes = torch.tensor(
        [[[0.0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], [[0.0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 5, 5]]]
    )
    scores = torch.tensor([[[0.9, 0.0], [0.8, 0.7], [0.1, 0.6]], [[0.1, 0.1], [0.2, 0.1], [0.1, 0.1]]])
    first, second = multiclass_nms(boxes, scores, conf_threshold=0.25, iou_threshold=0.5)
    assert first.class_id.tolist() == [0, 1, 1]  # box 1 of class 0 suppressed by box 0; class 1 kept
    np.testing.assert_allclose(first.confidence, [0.9, 0.7, 0.6])
    np.testing.assert_allclose(first.xyxy[1], [1, 1, 10, 10])
    assert len(second) == 0
    agnostic = multiclass_nms(boxes[:1], scores[:1], 0.25, 0.5, class_agnostic=True)[0]
    assert agnostic.class_id.tolist() == [0, 1]
