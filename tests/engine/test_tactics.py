"""Tactic selection and the timing cache: margin rule, tune / replay / merge, cache keys and files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from engine_testkit import export_torch
from test_engine_networks import conv_bn, randomize

from lanner.core.errors import ConfigError, DataError
from lanner.engine import get_backend, load_onnx, optimize
from lanner.engine.tactics import (
    TacticChoices,
    TimingPolicy,
    _time_variants,
    _wall_timer,
    select_tactics,
    signature,
    variants,
)
from lanner.engine.timing_cache import TimingCache, TimingCacheMissError, cache_key

torch = pytest.importorskip("torch")
SHAPES = {"images": (2, 3, 16, 16)}


@pytest.fixture(scope="module")
def graph():
    """Two conv + BN + ReLU, a pool and a Linear: three tunable nodes, small enough to time in a test."""
    nn = torch.nn
    module = nn.Sequential(conv_bn(3, 8, 3, 2), conv_bn(8, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    module = randomize(module, seed=0)
    return optimize(load_onnx(export_torch(module, torch.zeros(1, 3, 16, 16), dynamic_batch=True)))


def fake_timer(costs: dict[str, float], calls: list | None = None):
    def timer(node, tactic, call):
        call()  # the candidate really runs
        if calls is not None:
            calls.append((node.name if node is not None else None, tactic))
        return costs.get(tactic, 10.0)

    return timer


def tunable(graph) -> list[str]:
    backend = get_backend("cpu")
    ctx = backend.context(graph)
    return [n.name for n in graph.nodes if len(backend.tactics(n, ctx)) > 1]


@pytest.mark.parametrize(
    ("costs", "want"),
    [
        ({"aten.nchw": 1.0, "aten.nhwc": 0.5, "onednn.fused": 0.8}, "aten.nhwc"),  # clearly faster: taken
        ({"aten.nchw": 1.0, "aten.nhwc": 0.97, "onednn.fused": 0.99}, "aten.nchw"),  # within the 5% margin: default
        ({"aten.nchw": 1.0, "aten.nhwc": 2.0, "onednn.fused": 0.9}, "onednn.fused"),
    ],
)
def test_a_non_default_tactic_must_win_by_the_margin(graph, costs: dict[str, float], want: str) -> None:
    choices = select_tactics(graph, get_backend("cpu"), SHAPES, timer=fake_timer(costs))
    convs = {name: t for name, t in choices.tactics.items() if "Conv" in name}
    assert convs and set(convs.values()) == {want}
    assert choices.timed == len(tunable(graph)) and choices.hits == 0


def test_gemm_and_conv_nodes_are_offered_candidates(graph) -> None:
    backend = get_backend("cpu")
    ctx = backend.context(graph)
    offered = {n.op_type: backend.tactics(n, ctx) for n in graph.nodes}
    assert offered["FusedConv"] == ("aten.nchw", "aten.nhwc", "onednn.fused")  # 3x3: no gemm.nhwc
    assert offered["Gemm"] == ("aten.linear", "aten.addmm")
    assert offered["GlobalAveragePool"] == ()


def test_replay_uses_the_cache_and_never_times(graph) -> None:
    cache = TimingCache()
    tuned = select_tactics(graph, get_backend("cpu"), SHAPES, cache, "tune", timer=fake_timer({"aten.nhwc": 0.1}))
    calls: list = []
    replayed = select_tactics(graph, get_backend("cpu"), SHAPES, cache, "replay", timer=fake_timer({}, calls))
    assert replayed.tactics == tuned.tactics and calls == [] and replayed.hits == len(tuned.tactics)


def test_replay_miss_is_a_clear_error(graph) -> None:
    with pytest.raises(TimingCacheMissError, match=r"node '.*Conv.*': timing cache has no decision for this FusedConv"):
        select_tactics(graph, get_backend("cpu"), SHAPES, TimingCache(), "replay")


def test_merge_times_only_the_misses_and_tune_retimes_everything(graph) -> None:
    cache = TimingCache()
    select_tactics(graph, get_backend("cpu"), SHAPES, cache, "tune", timer=fake_timer({"aten.nhwc": 0.1}))
    keys = set(cache.entries)
    first = sorted(keys)[0]
    del cache.entries[first]
    calls: list = []
    merged = select_tactics(
        graph, get_backend("cpu"), SHAPES, cache, "merge", timer=fake_timer({"aten.nhwc": 0.1}, calls)
    )
    assert set(cache.entries) == keys and merged.timed == 1 and merged.hits == len(merged.tactics) - 1
    calls.clear()
    select_tactics(graph, get_backend("cpu"), SHAPES, cache, "tune", timer=fake_timer({"onednn.fused": 0.1}, calls))
    assert len({name for name, _ in calls} - {None}) == len(tunable(graph))
    assert {t for name, t in calls if name is None} == {
        "per-node",
        "uniform:aten.nchw",
        "uniform:aten.nhwc",
        "uniform:onednn.fused",
        "uniform:onednn.blocked",  # the RGB stem conv
        "uniform:aten.nhwc+onednn.blocked",  # blocked is partial: mixed with the full tactics
        "uniform:onednn.fused+onednn.blocked",  # (aten.nchw+onednn.blocked is uniform:onednn.blocked)
        "uniform:aten.linear",
        "uniform:aten.addmm",
    }
    assert "onednn.fused" in {e.get("tactic") for e in cache.entries.values()}


def test_cache_keys_depend_on_shapes_and_fingerprint(graph) -> None:
    node = next(n for n in graph.nodes if n.op_type == "FusedConv")
    x, w = torch.zeros(1, 3, 16, 16), torch.zeros(1)
    sig = signature(node, [x, w, None], graph)
    assert sig["shapes"][0] == [1, 3, 16, 16] and sig["dtypes"][0] == "float32" and sig["constant"][1]
    other = signature(node, [torch.zeros(8, 3, 16, 16), w, None], graph)
    assert cache_key("FusedConv", sig, "a") != cache_key("FusedConv", other, "a")
    assert cache_key("FusedConv", sig, "a") != cache_key("FusedConv", sig, "b")
    assert cache_key("FusedConv", sig, "a") == cache_key("FusedConv", json.loads(json.dumps(sig)), "a")


def test_cache_file_round_trip_and_errors(tmp_path: Path) -> None:
    cache = TimingCache({"Conv:1": {"tactic": "aten.nhwc"}})
    path = cache.save(tmp_path / "t.cache")
    assert TimingCache.load(path).entries == cache.entries
    assert path.read_bytes() == TimingCache.load(path).save(tmp_path / "u.cache").read_bytes()
    assert len(TimingCache.load(tmp_path / "missing.cache")) == 0
    with pytest.raises(DataError, match="does not exist"):
        TimingCache.load(tmp_path / "missing.cache", must_exist=True)
    (tmp_path / "bad.cache").write_text("{nope")
    with pytest.raises(DataError, match="not a readable timing cache"):
        TimingCache.load(tmp_path / "bad.cache")
    (tmp_path / "other.cache").write_text(json.dumps({"format": "trt", "version": 1}))
    with pytest.raises(DataError, match="not a lanner timing cache"):
        TimingCache.load(tmp_path / "other.cache")
    merged = TimingCache({"a": {"tactic": "x"}}).merge(TimingCache({"a": {"tactic": "y"}, "b": {"tactic": "z"}}))
    assert merged.entries == {"a": {"tactic": "x"}, "b": {"tactic": "z"}}


def test_unknown_mode_is_rejected(graph) -> None:
    with pytest.raises(ConfigError, match="unknown cache mode 'fast'"):
        select_tactics(graph, get_backend("cpu"), SHAPES, mode="fast")


def test_real_timing_picks_a_valid_tactic_and_results_do_not_change(graph) -> None:
    choices = select_tactics(graph, get_backend("cpu"), SHAPES, policy=TimingPolicy(warmup=1, runs=1))
    assert set(choices.tactics) == set(tunable(graph))
    x = np.random.default_rng(0).standard_normal(SHAPES["images"]).astype(np.float32)
    tuned = get_backend("cpu").prepare(graph, choices.tactics).run({"images": x})["output"]
    plain = get_backend("reference").prepare(graph).run({"images": x})["output"]
    np.testing.assert_allclose(tuned, plain, rtol=1e-4, atol=1e-4)


def test_a_uniform_plan_that_is_faster_end_to_end_replaces_the_per_node_choices(graph) -> None:
    """Per-node timing cannot see layout conversions downstream; the whole-graph check can."""
    cache = TimingCache()
    costs = {"aten.nhwc": 0.5, "uniform:onednn.fused": 1.0, "per-node": 3.0}
    choices = select_tactics(graph, get_backend("cpu"), SHAPES, cache, timer=fake_timer(costs))
    assert choices.variant == "uniform:onednn.fused"
    assert {t for n, t in choices.tactics.items() if "Conv" in n} == {"onednn.fused"}
    assert {t for n, t in choices.tactics.items() if "Gemm" in n} == {"aten.linear"}  # not offered: the default
    replayed = select_tactics(graph, get_backend("cpu"), SHAPES, cache, "replay")
    assert replayed.tactics == choices.tactics and replayed.variant == choices.variant
    graph_keys = [k for k in cache.entries if k.startswith("Graph:")]
    assert len(graph_keys) == 1
    del cache.entries[graph_keys[0]]
    with pytest.raises(TimingCacheMissError, match="no whole-graph decision"):
        select_tactics(graph, get_backend("cpu"), SHAPES, cache, "replay")


def test_only_plain_1x1_convs_are_offered_the_gemm_tactic() -> None:
    nn = torch.nn
    module = randomize(nn.Sequential(conv_bn(3, 8, 1), conv_bn(8, 8, 1, 2), conv_bn(8, 8, 3)), seed=1)
    graph = optimize(load_onnx(export_torch(module, torch.zeros(1, 3, 8, 8))))
    backend = get_backend("cpu")
    ctx = backend.context(graph)
    assert ["gemm.nhwc" in backend.tactics(n, ctx) for n in graph.nodes] == [True, False, False]  # 1x1 s1 only
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    gemm = backend.prepare(graph, {graph.nodes[0].name: "gemm.nhwc"}).run({"images": x})["output"]
    plain = get_backend("reference").prepare(graph).run({"images": x})["output"]
    np.testing.assert_allclose(gemm, plain, rtol=1e-4, atol=1e-5)


def test_partial_tactics_get_layout_compatible_mixed_variants() -> None:
    """gemm.nhwc (1x1 convs only) combined with each full conv tactic; a mix equal to an existing plan is dropped."""
    full = ("aten.nchw", "aten.nhwc", "onednn.fused")
    candidates = {"c1": (*full, "gemm.nhwc"), "c2": full, "c3": full[:2], "fc": ("aten.linear", "aten.addmm")}
    choices = TacticChoices(tactics={n: c[0] for n, c in candidates.items()}, candidates=candidates)
    options = variants(choices)
    assert options["uniform:onednn.fused+gemm.nhwc"] == {
        "c1": "gemm.nhwc",
        "c2": "onednn.fused",
        "c3": "aten.nchw",
        "fc": "aten.linear",
    }
    assert "uniform:aten.nhwc+gemm.nhwc" in options
    assert "uniform:aten.nchw+gemm.nhwc" not in options  # the same plan as uniform:gemm.nhwc (nchw is the default)
    # onednn.fused is partial w.r.t. aten.nchw here (c3 lacks it), but that mix *is* uniform:onednn.fused
    assert "uniform:aten.nchw+onednn.fused" not in options
    assert "uniform:aten.nhwc+onednn.fused" in options  # c3 gets aten.nhwc: a different plan
    assert all(not name.startswith("uniform:aten.linear+") for name in options)  # disjoint node sets: no mix


def test_whole_graph_variants_are_timed_interleaved_round_by_round() -> None:
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    ticks = iter(float(i) for i in range(1000))
    wall = _wall_timer(TimingPolicy())
    times = _time_variants(calls, wall, TimingPolicy(warmup=1, runs=3), clock=lambda: next(ticks) / 1e3)
    assert order == ["a", "b", "c"] + ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert times == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})  # one fake millisecond per run
    counted: list[str] = []
    custom = _time_variants(calls, fake_timer({"b": 0.5}, counted), TimingPolicy())
    assert custom == {"a": 10.0, "b": 0.5, "c": 10.0} and counted == [(None, "a"), (None, "b"), (None, "c")]
