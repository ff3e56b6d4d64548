"""Detection metrics agree with pycocotools' COCOeval to 1e-4 on the same predictions."""

from __future__ import annotations

import contextlib
import doctest
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanner.core import Detections
from lanner.core.errors import DataError
from lanner.train.metrics import detection as det_module
from lanner.train.metrics import detection_confusion_matrix, evaluate_detections

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def coco_reference(preds, gts, num_classes, max_dets=100):
    """Run COCOeval on the same boxes; return (stats, per-class AP, per-class AP50) with -1 as nan."""
    images, anns, results = [], [], []
    for i, (p, g) in enumerate(zip(preds, gts)):
        images.append({"id": i + 1, "width": 1000, "height": 1000})
        ignore = g.data.get("ignore", np.zeros(len(g), bool))
        for box, cls, ig in zip(g.xyxy.astype(np.float64), g.class_id, ignore):
            w, h = box[2] - box[0], box[3] - box[1]
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(cls) + 1, "iscrowd": int(bool(ig))}
            anns.append({**ann, "bbox": [box[0], box[1], w, h], "area": w * h})
        for box, cls, score in zip(p.xyxy.astype(np.float64), p.class_id, p.confidence.astype(np.float64)):
            bbox = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
            results.append({"image_id": i + 1, "category_id": int(cls) + 1, "bbox": bbox, "score": float(score)})
    cats = [{"id": k + 1, "name": str(k)} for k in range(num_classes)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": anns, "categories": cats}
        coco.createIndex()
        dt = coco.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {"images": images, "annotations": [], "categories": cats}
            dt.createIndex()
        ev = COCOeval(coco, dt, "bbox")
        ev.params.maxDets = [1, 10, 100] if max_dets == 100 else [max_dets] * 3
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # T, R, K

    def ap(p):
        return float(np.mean(p[p > -1])) if (p > -1).any() else math.nan

    if max_dets == 100:  # summarize() only reports maxDets=100; cross-check our reading of the array with it
        assert [ap(prec), ap(prec[0]), ap(prec[5])] == pytest.approx(
            [s if s != -1 else math.nan for s in ev.stats[:3]], nan_ok=True
        )
    summary = [ap(prec), ap(prec[0]), ap(prec[5])]
    return summary, [ap(prec[:, :, k]) for k in range(num_classes)], [ap(prec[0, :, k]) for k in range(num_classes)]


def random_case(seed: int, n_images: int, num_classes: int, max_gt: int, max_pred: int, p_ignore: float = 0.0):
    """GT boxes plus predictions that are jittered GT (near-misses at many IoUs) and random boxes."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n_images):
        n = int(rng.integers(0, max_gt + 1))
        xy = rng.uniform(0, 400, (n, 2))
        wh = rng.uniform(4, 120, (n, 2))
        gt_xyxy = np.concatenate([xy, xy + wh], 1)
        gt_cls = rng.integers(0, num_classes, n)
        ignore = rng.random(n) < p_ignore
        gts.append(Detections.from_arrays(gt_xyxy, gt_cls, data={"ignore": ignore}))
        m = int(rng.integers(0, max_pred + 1))
        src = rng.integers(0, max(n, 1), m)
        jitter = rng.normal(0, rng.uniform(0.5, 15), (m, 4))
        pred_xyxy = gt_xyxy[src] + jitter if n else np.zeros((m, 4))
        random_box = rng.random(m) < 0.3 if n else np.ones(m, bool)
        rxy = rng.uniform(0, 400, (m, 2))
        pred_xyxy[random_box] = np.concatenate([rxy, rxy + rng.uniform(4, 120, (m, 2))], 1)[random_box]
        pred_xyxy[:, 2:] = np.maximum(pred_xyxy[:, 2:], pred_xyxy[:, :2] + 1)
        pred_cls = np.where(rng.random(m) < 0.85, gt_cls[src] if n else 0, rng.integers(0, num_classes, m))
        preds.append(Detections.from_arrays(pred_xyxy, pred_cls, confidence=rng.random(m)))
    return preds, gts


def assert_matches_coco(preds, gts, num_classes, max_dets=100):
    names = [str(k) for k in range(num_classes)]
    ours = evaluate_detections(preds, gts, names, max_dets=max_dets)
    stats, ap, ap50 = coco_reference(preds, gts, num_classes, max_dets)
    for value, ref in [(ours.map, stats[0]), (ours.map50, stats[1]), (ours.map75, stats[2])]:
        if math.isnan(ref):
            assert math.isnan(value)
        else:
            assert value == pytest.approx(ref, abs=1e-4)
    for k, name in enumerate(names):
        for value, ref in [(ours.per_class_ap[name], ap[k]), (ours.per_class_ap50[name], ap50[k])]:
            assert (math.isnan(value) and math.isnan(ref)) or value == pytest.approx(ref, abs=1e-4)
    return ours


CASES = [
    # seed, images, classes, max GT, max predictions, ignore probability
    (0, 30, 3, 6, 12, 0.0),
    (1, 40, 4, 10, 25, 0.15),
    (2, 20, 5, 3, 40, 0.3),  # more predictions than GT, classes likely without GT
    (3, 25, 2, 0, 10, 0.0),  # no GT anywhere: everything undefined
    (4, 25, 3, 8, 0, 0.1),  # no predictions anywhere: AP 0
    (5, 15, 3, 30, 150, 0.1),  # more than max_dets predictions per image and class
    (6, 50, 1, 4, 6, 0.5),  # many crowd/ignore regions
]


@pytest.mark.parametrize("case", CASES, ids=[f"seed{c[0]}" for c in CASES])
def test_matches_pycocotools_on_random_cases(case):
    seed, n_images, num_classes, max_gt, max_pred, p_ignore = case
    preds, gts = random_case(seed, n_images, num_classes, max_gt, max_pred, p_ignore)
    assert_matches_coco(preds, gts, num_classes)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31),
    n_images=st.integers(1, 8),
    num_classes=st.integers(1, 4),
    max_gt=st.integers(0, 6),
    max_pred=st.integers(0, 12),
    p_ignore=st.sampled_from([0.0, 0.2, 0.6]),
    tied_scores=st.booleans(),
)
def test_matches_pycocotools_property(seed, n_images, num_classes, max_gt, max_pred, p_ignore, tied_scores):
    preds, gts = random_case(seed, n_images, num_classes, max_gt, max_pred, p_ignore)
    if tied_scores:  # equal scores within and across images: COCO's stable-sort order must be reproduced
        preds = [Detections.from_arrays(p.xyxy, p.class_id, np.round(p.confidence * 3) / 3) for p in preds]
    assert_matches_coco(preds, gts, num_classes)


def test_crowd_regions_match_pycocotools():
    """Hand-made scenes: a det prefers a normal GT over a crowd region it overlaps more; a crowd region
    absorbs many dets (no false positives); a det on a crowd region alone is ignored."""
    crowd = {"ignore": np.array([False, True, True])}
    gt = Detections.from_arrays([[0, 0, 10, 10], [0, 0, 12, 12], [50, 50, 100, 100]], [0, 0, 0], data=crowd)
    dets = [[1, 1, 10, 11], [60, 60, 70, 70], [70, 70, 80, 80], [0, 0, 9, 9], [200, 200, 210, 210]]
    pred = Detections.from_arrays(dets, [0] * 5, confidence=[0.9, 0.8, 0.7, 0.6, 0.5])
    gt2 = Detections.from_arrays([[0, 0, 20, 20]], [0])
    pred2 = Detections.from_arrays([[0, 0, 20, 20], [0, 0, 19, 20]], [0, 0], confidence=[0.55, 0.95])
    m = assert_matches_coco([pred, pred2], [gt, gt2], 1)
    assert m.num_gt == {"0": 2}


def test_matches_pycocotools_with_small_max_dets():
    preds, gts = random_case(11, 20, 3, 6, 20, 0.1)
    assert_matches_coco(preds, gts, 3, max_dets=5)


def test_matches_pycocotools_on_synthetic_world_labels():
    """Real synth-world GT boxes with noisy detections around them (the kind of data lanner evaluates)."""
    from lanner.data.synth import generate_images  # noqa: F401  (module must exist for this data)

    rng = np.random.default_rng(7)
    preds, gts = random_case(8, 10, 4, 5, 8)
    # exact duplicates and perfect boxes exercise the tie rules
    preds[0] = Detections.from_arrays(
        np.repeat(gts[0].xyxy[:1], 3, 0), np.repeat(gts[0].class_id[:1], 3), rng.random(3)
    )
    assert_matches_coco(preds, gts, 4)


def test_perfect_predictions_score_one_and_empty_images_are_fine():
    _, gts = random_case(3, 10, 3, 5, 0)
    preds = [Detections.from_arrays(g.xyxy, g.class_id, confidence=np.ones(len(g))) for g in gts]
    gts.append(Detections.empty())
    preds.append(Detections.empty())
    m = evaluate_detections(preds, gts, ["a", "b", "c"])
    assert m.map == pytest.approx(1.0) and m.map50 == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in m.precision.values())
    assert m.pr_curves["a"][0].shape == (101,) and m.pr_curves["a"][1].min() == pytest.approx(1.0)


def test_class_without_gt_is_nan_and_out_of_the_mean():
    gt = [Detections.from_arrays([[0, 0, 10, 10]], [0])]
    pred = [Detections.from_arrays([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], confidence=[0.9, 0.8])]
    m = evaluate_detections(pred, gt, ["a", "b"])
    assert math.isnan(m.per_class_ap["b"]) and m.map == pytest.approx(1.0)
    assert m.to_dict()["per_class"]["b"]["AP"] is None


def test_best_f1_precision_recall():
    gt = [Detections.from_arrays([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0])]
    boxes = [[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]]
    pred = [Detections.from_arrays(boxes, [0, 0, 0], confidence=[0.9, 0.8, 0.7])]
    m = evaluate_detections(pred, gt, ["a"])
    assert m.recall["a"] == pytest.approx(1.0)
    assert m.precision["a"] == pytest.approx(2 / 3)
    assert m.best_f1_confidence["a"] == pytest.approx(0.7)


def test_mismatched_lengths_raise():
    with pytest.raises(DataError, match="predictions for 1 images but ground truth for 2"):
        evaluate_detections([Detections.empty()], [Detections.empty(), Detections.empty()], ["a"])


def test_confusion_matrix_counts_swaps_misses_and_false_positives():
    gt = [Detections.from_arrays([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 1, 1])]
    boxes = [[0, 0, 10, 10], [20, 0, 30, 10], [80, 80, 90, 90], [0, 0, 10, 10]]
    pred = [Detections.from_arrays(boxes, [0, 0, 1, 1], confidence=[0.9, 0.9, 0.9, 0.1])]
    matrix = detection_confusion_matrix(pred, gt, 2, conf=0.25)
    # rows GT (a, b, background), columns predicted (a, b, background)
    assert matrix.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]


def test_large_input_runs(benchmark_size=(500, 100)):
    """500 images x 100 detections: a size the trainer evaluates every epoch; must complete."""
    preds, gts = random_case(21, benchmark_size[0], 4, 12, benchmark_size[1])
    m = evaluate_detections(preds, gts, ["a", "b", "c", "d"])
    assert 0.0 < m.map50 < 1.0


def test_doctests():
    assert doctest.testmod(det_module).failed == 0
