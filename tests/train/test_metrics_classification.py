"""Classification metrics: top-1, top-5, per-class accuracy, confusion matrix (checked against plain loops)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from lanner.core.errors import DataError
from lanner.train.metrics import classification as cls_module
from lanner.train.metrics import evaluate_classification


@pytest.mark.parametrize("seed,n,k", [(0, 50, 3), (1, 200, 10), (2, 7, 6), (3, 1, 2)])
def test_matches_a_plain_loop(seed, n, k):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    labels = rng.integers(0, k, n)
    names = [f"c{i}" for i in range(k)]
    m = evaluate_classification(logits, labels, names)
    top1 = top5 = 0
    confusion = np.zeros((k, k), int)
    for row, label in zip(logits, labels):
        ranked = sorted(range(k), key=lambda j: -row[j])
        top1 += ranked[0] == label
        top5 += label in ranked[:5]
        confusion[label, ranked[0]] += 1
    assert m.top1 == pytest.approx(top1 / n) and m.top5 == pytest.approx(top5 / n)
    np.testing.assert_array_equal(m.confusion, confusion)
    for i, name in enumerate(names):
        expected = confusion[i, i] / confusion[i].sum() if confusion[i].sum() else math.nan
        assert (math.isnan(expected) and math.isnan(m.per_class_accuracy[name])) or m.per_class_accuracy[
            name
        ] == pytest.approx(expected)


def test_top5_with_fewer_than_five_classes_is_one():
    m = evaluate_classification(np.array([[0.1, 0.2, 0.7]]), np.array([0]), ["a", "b", "c"])
    assert m.top1 == 0.0 and m.top5 == 1.0


def test_to_dict_is_json_safe():
    m = evaluate_classification(np.eye(2), np.array([0, 0]), ["a", "b"])
    d = m.to_dict()
    assert d["per_class_accuracy"] == {"a": 0.5, "b": None}
    assert d["confusion_matrix"] == [[1, 1], [0, 0]]


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.zeros((2, 3)), np.array([0, 1]), r"shape \(N, 2\)"),
        (np.zeros((2, 2)), np.array([0]), "2 score rows but 1 labels"),
        (np.zeros((2, 2)), np.array([0, 2]), r"labels must be in \[0, 2\)"),
    ],
)
def test_bad_input(scores, labels, message):
    with pytest.raises(DataError, match=message):
        evaluate_classification(scores, labels, ["a", "b"])


def test_doctests():
    assert doctest.testmod(cls_module).failed == 0
