"""``evaluate_mot`` against motmetrics (the oracle) on many sequences, and the MOTChallenge reader/writer."""

from __future__ import annotations

import numpy as np
import pytest
from tracksim import detect, simulate_scene, track_scene

from lanner.core import DataError
from lanner.pipeline.metrics import evaluate_mot, read_mot_txt, write_mot_txt

mm = pytest.importorskip("motmetrics")

COUNTS = [
    "num_frames",
    "num_objects",
    "num_predictions",
    "num_unique_objects",
    "num_matches",
    "num_switches",
    "num_false_positives",
    "num_misses",
    "num_detections",
    "idtp",
    "idfp",
    "idfn",
]
RATES = ["mota", "idf1", "idp", "idr", "precision", "recall"]


def _mm_distances(o_xyxy: np.ndarray, h_xyxy: np.ndarray) -> np.ndarray:
    """motmetrics' ``iou_matrix(max_iou=0.5)`` (which calls ``np.asfarray``, gone in numpy 2) on its ``boxiou``."""
    if len(o_xyxy) == 0 or len(h_xyxy) == 0:
        return np.empty((len(o_xyxy), len(h_xyxy)))
    o = np.concatenate([o_xyxy[:, :2], o_xyxy[:, 2:] - o_xyxy[:, :2]], axis=1)
    h = np.concatenate([h_xyxy[:, :2], h_xyxy[:, 2:] - h_xyxy[:, :2]], axis=1)
    dist = 1 - mm.distances.boxiou(o[:, None], h[None, :])
    return np.where(dist > 0.5, np.nan, dist)


def motmetrics_summary(gt: dict, hyp: dict) -> dict:
    acc = mm.MOTAccumulator(auto_id=False)
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    for frame in sorted(set(gt) | set(hyp)):
        oids, o_xyxy = gt.get(frame, empty)
        hids, h_xyxy = hyp.get(frame, empty)
        acc.update(list(oids), list(hids), _mm_distances(np.asarray(o_xyxy), np.asarray(h_xyxy)), frameid=frame)
    names = [*COUNTS, *RATES]
    summary = mm.metrics.create().compute(acc, metrics=names, name="seq")
    result = {k: summary[k].iloc[0] for k in names}
    # MOTP and MT/PT/ML from the MATCH and SWITCH events (motmetrics 1.4 adds its TRANSFER/ASCEND/MIGRATE
    # bookkeeping events to these; CLEAR-MOT counts matched pairs only).
    events = acc.mot_events
    paired = events[events.Type.isin(["MATCH", "SWITCH"])]
    result["motp"] = paired.D.sum() / len(paired) if len(paired) else np.nan
    appear = events[events.Type.isin(["MATCH", "SWITCH", "MISS"])].OId.value_counts()
    ratio = (paired.OId.value_counts().reindex(appear.index).fillna(0) / appear).to_numpy()
    result["mostly_tracked"] = int((ratio >= 0.8).sum())
    result["partially_tracked"] = int(((ratio >= 0.2) & (ratio < 0.8)).sum())
    result["mostly_lost"] = int((ratio < 0.2).sum())
    return result


def perturbed_hypotheses(gt: dict, seed: int) -> dict:
    """Hypotheses with every kind of error: misses, big jitter, id swaps and fragments, false positives."""
    rng = np.random.default_rng(seed)
    relabel: dict[int, int] = {}
    next_id = 100
    hyp = {}
    for frame, (ids, xyxy) in sorted(gt.items()):
        keep = rng.random(len(ids)) > 0.15
        out_ids = []
        for oid in ids[keep].tolist():
            if oid not in relabel or rng.random() < 0.03:  # a fragment: the object gets a new hypothesis id
                relabel[oid] = next_id
                next_id += 1
            out_ids.append(relabel[oid])
        if len(out_ids) >= 2 and rng.random() < 0.1:  # two hypotheses swap ids
            i, j = rng.choice(len(out_ids), 2, replace=False)
            out_ids[i], out_ids[j] = out_ids[j], out_ids[i]
        wh = xyxy[keep, 2:] - xyxy[keep, :2]
        shift = rng.normal(0, 0.15, (len(out_ids), 2)) * wh
        boxes = xyxy[keep] + np.concatenate([shift, shift], axis=1)
        n_fp = rng.poisson(1.5)
        fp_xy = rng.uniform(0, 600, (n_fp, 2))
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(20, 120, (n_fp, 2))], axis=1)
        hyp_ids = np.array(out_ids + list(range(10_000 + frame * 10, 10_000 + frame * 10 + n_fp)), np.int64)
        if rng.random() > 0.05:  # some frames have no hypotheses at all
            hyp[frame] = (hyp_ids, np.concatenate([boxes, fp]))
    return hyp


def _assert_same(ours: dict, theirs: dict) -> None:
    for key in COUNTS + ["mostly_tracked", "partially_tracked", "mostly_lost"]:
        assert ours[key] == theirs[key], key
    for key in [*RATES, "motp"]:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6, nan_ok=True), key


@pytest.mark.parametrize("seed", range(6))
def test_metrics_match_motmetrics_on_perturbed_sequences(seed: int) -> None:
    scene = simulate_scene(seed, n_objects=15, n_frames=60, width=640, height=480)
    hyp = perturbed_hypotheses(scene.gt, seed)
    _assert_same(evaluate_mot(scene.gt, hyp), motmetrics_summary(scene.gt, hyp))


@pytest.mark.parametrize("tracker", ["iou", "sort", "bytetrack"])
def test_metrics_match_motmetrics_on_tracker_output(tracker: str) -> None:
    scene = simulate_scene(7, n_objects=25, n_frames=80)
    hyp = track_scene(tracker, detect(scene, seed=8, jitter=0.08, miss_rate=0.15, false_positives_per_frame=3))
    _assert_same(evaluate_mot(scene.gt, hyp), motmetrics_summary(scene.gt, hyp))


def _frames(*items: tuple) -> dict:
    return {f: (np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4)) for f, ids, boxes in items}


BOX_A, BOX_B = [0, 0, 10, 10], [30, 0, 40, 10]
CASES = {
    "perfect": (_frames((0, [1], [BOX_A]), (1, [1], [BOX_A])), _frames((0, [5], [BOX_A]), (1, [5], [BOX_A]))),
    "switch": (_frames((0, [1], [BOX_A]), (1, [1], [BOX_A])), _frames((0, [5], [BOX_A]), (1, [6], [BOX_A]))),
    "crossing_swap": (
        _frames((0, [1, 2], [BOX_A, BOX_B]), (1, [1, 2], [BOX_A, BOX_B])),
        _frames((0, [5, 6], [BOX_A, BOX_B]), (1, [6, 5], [BOX_A, BOX_B])),
    ),
    "no_hypotheses": (_frames((0, [1, 2], [BOX_A, BOX_B])), {}),
    "no_ground_truth": ({}, _frames((0, [5], [BOX_A]))),
    "frame_only_in_hyp": (_frames((0, [1], [BOX_A])), _frames((0, [5], [BOX_A]), (3, [5], [BOX_B]))),
    "low_overlap_is_miss_and_fp": (_frames((0, [1], [BOX_A])), _frames((0, [5], [[6, 0, 16, 10]]))),
    "returning_object_no_switch": (
        _frames((0, [1], [BOX_A]), (1, [], []), (2, [1], [BOX_A])),
        _frames((0, [5], [BOX_A]), (1, [], []), (2, [5], [BOX_A])),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_edge_cases_match_motmetrics(case: str) -> None:
    gt, hyp = CASES[case]
    _assert_same(evaluate_mot(gt, hyp), motmetrics_summary(gt, hyp))


def test_switch_case_numbers() -> None:
    m = evaluate_mot(*CASES["crossing_swap"])
    assert (m["num_switches"], m["mota"], m["idf1"]) == (2, 0.5, 0.5)


def test_repeated_id_in_a_frame_raises() -> None:
    with pytest.raises(DataError, match="id repeated"):
        evaluate_mot(_frames((0, [1, 1], [BOX_A, BOX_B])), {})


def test_mot_txt_round_trip(tmp_path) -> None:
    frames = _frames((1, [3, 4], [[10, 20, 30, 60], [5.5, 6, 7.25, 9]]), (2, [3], [[11, 20, 31, 60]]))
    path = write_mot_txt(tmp_path / "seq.txt", frames)
    assert path.read_text().splitlines()[0] == "2,3,11.00,21.00,20.00,40.00,1,-1,-1,-1"  # 1-based on disk
    back = read_mot_txt(path)
    assert sorted(back) == [1, 2]
    for f in frames:
        np.testing.assert_array_equal(back[f][0], frames[f][0])
        np.testing.assert_allclose(back[f][1], frames[f][1], atol=1e-2)


def test_read_mot_ground_truth_with_consider_flag(tmp_path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,10,20,40,1,1,1.0\n1,2,50,10,20,40,0,7,0.5\n2,1,12,10,20,40,1,1,0.9\n")
    frames = read_mot_txt(path, min_conf=1)
    assert sorted(frames) == [0, 1] and [frames[f][0].tolist() for f in (0, 1)] == [[1], [1]]
    np.testing.assert_allclose(frames[1][1], [[11, 9, 31, 49]])
    assert read_mot_txt(path)[0][0].tolist() == [1, 2]
    six = tmp_path / "six.txt"
    six.write_text("3,9,1,1,5,5\n")
    np.testing.assert_allclose(read_mot_txt(six, min_conf=1)[2][1], [[0, 0, 5, 5]])


def test_read_mot_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_mot_txt(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(DataError, match="MOTChallenge"):
        read_mot_txt(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_mot_txt(empty) == {}
