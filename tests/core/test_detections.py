import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lanner.core import DataError, Detections


def make(n: int, tracked: bool = False, seed: int = 0) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2))], axis=1)
    return Detections(
        xyxy=xyxy,
        confidence=rng.uniform(0, 1, n),
        class_id=rng.integers(0, 4, n),
        tracker_id=np.arange(n) if tracked else None,
        data={"color": np.array([f"c{i}" for i in range(n)]), "embed": rng.normal(size=(n, 8))},
    )


def test_construction_normalises_dtypes():
    d = make(3)
    assert d.xyxy.dtype == np.float32 and d.confidence.dtype == np.float32 and d.class_id.dtype == np.int64
    assert len(d) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": np.zeros((2, 3)), "confidence": np.zeros(2), "class_id": np.zeros(2)}, "shape (N, 4)"),
        ({"xyxy": np.zeros((2, 4)), "confidence": np.zeros(3), "class_id": np.zeros(2)}, "confidence"),
        ({"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": np.zeros(1)}, "class_id"),
        ({"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": [0.5, 1]}, "integers"),
        (
            {"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": np.zeros(2), "tracker_id": [1]},
            "tracker_id",
        ),
        (
            {"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": np.zeros(2), "data": {"k": [1]}},
            "data['k']",
        ),
    ],
)
def test_invalid_construction_is_a_data_error(kwargs, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Detections(**kwargs)


def test_boolean_mask_filters_every_column():
    d = make(6, tracked=True)
    mask = d.confidence > 0.5
    kept = d[mask]
    assert len(kept) == int(mask.sum())
    np.testing.assert_array_equal(kept.xyxy, d.xyxy[mask])
    np.testing.assert_array_equal(kept.tracker_id, d.tracker_id[mask])
    np.testing.assert_array_equal(kept.data["embed"], d.data["embed"][mask])
    np.testing.assert_array_equal(kept.data["color"], d.data["color"][mask])


def test_mask_of_wrong_length_raises():
    with pytest.raises(IndexError, match="boolean mask"):
        make(3)[np.array([True, False])]


@pytest.mark.parametrize("index", [0, slice(1, 3), [2, 0], np.array([1])])
def test_other_indexing_returns_detections(index):
    d = make(4)
    sub = d[index]
    assert isinstance(sub, Detections)
    np.testing.assert_array_equal(sub.xyxy, d.xyxy[np.atleast_1d(np.arange(4)[index])])


def test_merge_concatenates_and_checks_keys():
    a, b = make(2, seed=1), make(3, seed=2)
    merged = Detections.merge([a, b])
    assert len(merged) == 5
    np.testing.assert_array_equal(merged.xyxy[2:], b.xyxy)
    assert Detections.merge([]) == Detections.empty()
    with pytest.raises(DataError, match="data keys"):
        Detections.merge([a, Detections.empty()])
    with pytest.raises(DataError, match="tracker_id"):
        Detections.merge([make(1, tracked=True), make(1)])


def test_empty_and_iteration():
    e = Detections.empty(data_keys=["score2"])
    assert len(e) == 0 and e.xyxy.shape == (0, 4) and e.data["score2"].shape == (0,)
    assert [len(x) for x in make(3)] == [1, 1, 1]


def test_area_and_wh():
    d = Detections.from_arrays([[0, 0, 10, 20], [5, 5, 4, 4]], class_id=[0, 1])
    np.testing.assert_allclose(d.wh[0], [10, 20])
    np.testing.assert_allclose(d.area, [200, 0])
    np.testing.assert_array_equal(d.confidence, [1, 1])


def test_equality():
    assert make(3) == make(3)
    assert make(3) != make(3, seed=5)
    assert make(2, tracked=True) != make(2)


@given(n=st.integers(0, 20), data=st.data())
def test_mask_then_merge_restores_the_set(n, data):
    d = make(n, tracked=True)
    mask = data.draw(hnp.arrays(bool, n))
    back = Detections.merge([d[mask], d[~mask]])
    order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
    assert back == d[order]
