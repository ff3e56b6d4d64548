"""The cpu backend's ``onednn.blocked`` conv tactic: oneDNN's blocked layout kept along a chain (conv → MaxPool)
and converted to dense only at its boundary; offered to narrow (stem) convs only; results unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, export_torch, run_ort
from test_engine_networks import BasicBlock, conv_bn, randomize

from lanner.engine import get_backend, load_onnx, optimize
from lanner.engine.tactics import select_tactics

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")


def _stem_net() -> nn.Module:
    """A ResNet-like stem (7x7 conv + BN + ReLU on RGB, MaxPool), a 3x3 block, pool and a Linear head."""
    body = nn.Sequential(conv_bn(3, 16, 7, 2), nn.MaxPool2d(3, 2, 1), conv_bn(16, 16, 3))
    return randomize(nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)), seed=3)


@pytest.fixture(scope="module")
def stem():
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model = export_torch(_stem_net(), torch.from_numpy(x[:1]), dynamic_batch=True)
    return optimize(load_onnx(model)), model, x


def _offered(graph) -> list[bool]:
    backend = get_backend("cpu")
    ctx = backend.context(graph)
    return ["onednn.blocked" in backend.tactics(n, ctx) for n in graph.nodes]


def test_blocked_layout_flows_through_the_pool_and_results_match_onnxruntime(stem) -> None:
    graph, model, x = stem
    assert [n.op_type for n in graph.nodes][:3] == ["FusedConv", "MaxPool", "FusedConv"]
    backend = get_backend("cpu")
    exe = backend.prepare(graph, {graph.nodes[0].name: "onednn.blocked", graph.nodes[2].name: "onednn.fused"})
    assert_outputs_close(exe.run({"images": x}), run_ort(model, {"images": x}))
    with torch.inference_mode():
        slots = exe._execute({"images": x}, None, keep_all=True)
    layout = [slots[exe._slot[n.outputs[0]]].is_mkldnn for n in graph.nodes[:3]]
    assert layout == [True, True, False]  # conv → pool stay blocked; the next conv's input was made dense
    everything = exe.run_all({"images": x})  # blocked intermediates come back as plain arrays
    assert all(isinstance(v, np.ndarray) for v in everything.values())


def test_a_blocked_graph_output_comes_back_as_a_numpy_array() -> None:
    module = randomize(nn.Sequential(conv_bn(3, 8, 3, 2)), seed=4)
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x))
    graph = optimize(load_onnx(model))
    exe = get_backend("cpu").prepare(graph, {graph.nodes[0].name: "onednn.blocked"})
    out = exe.run({"images": x})
    assert isinstance(out["output"], np.ndarray) and out["output"].flags.writeable
    assert_outputs_close(out, run_ort(model, {"images": x}))


def test_only_narrow_relu_convs_without_a_residual_are_offered_the_blocked_tactic() -> None:
    module = nn.Sequential(
        conv_bn(3, 8, 3),  # RGB stem with ReLU: offered
        conv_bn(8, 4, 3),  # 8 input channels: too wide
        conv_bn(4, 4, 3, act=nn.Hardswish),  # narrow, but an activation oneDNN cannot apply to blocked tensors
        conv_bn(4, 4, 3, act=None),  # narrow, no activation: offered
        BasicBlock(4, 4, 1),  # conv + ReLU: offered; conv + residual add + ReLU: not
    )
    graph = optimize(load_onnx(export_torch(randomize(module, seed=5), torch.zeros(1, 3, 8, 8))))
    assert [n.attr("residual", "none") for n in graph.nodes][-1] != "none"
    assert _offered(graph) == [True, False, False, True, True, False]


def test_tuning_with_a_blocked_choice_feeds_plain_tensors_downstream(stem) -> None:
    """The tuner keeps running the graph node by node after a blocked choice; every later candidate works."""
    graph, _, x = stem

    def timer(node, tactic, call):
        call()
        return 0.1 if tactic in ("onednn.blocked", "per-node") else 1.0

    choices = select_tactics(graph, get_backend("cpu"), {"images": (2, 3, 32, 32)}, timer=timer)
    assert choices.tactics[graph.nodes[0].name] == "onednn.blocked" and choices.variant == "per-node"
    exe = get_backend("cpu").prepare(graph, choices.tactics)
    expected = get_backend("reference").prepare(graph).run({"images": x})
    assert_outputs_close(exe.run({"images": x}), expected)
