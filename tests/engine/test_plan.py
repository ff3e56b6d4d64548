"""Plan files and the runtime: round trip, determinism, version/device mismatch, profiles, feeds, threads."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, export_torch, run_ort
from test_engine_networks import conv_bn, randomize

from lanner.core.errors import DataError, LannerError
from lanner.engine.build import BuildConfig, build_engine
from lanner.engine.plan import FORMAT_VERSION, MAGIC, Plan, PlanMismatchError, Profile, read_plan, write_plan
from lanner.engine.runtime import Engine, TensorSpec

torch = pytest.importorskip("torch")


def tiny_model(dynamic: bool = True):
    """conv+BN+ReLU → conv+BN (+ residual) → ReLU → pool → Linear, 16x16 input, random weights."""
    nn = torch.nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = conv_bn(3, 8, 3, 2), conv_bn(8, 8, act=None)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

        def forward(self, x):
            y = self.a(x)
            return self.head(torch.relu(self.b(y) + y))

    return export_torch(randomize(Tiny(), seed=0), torch.zeros(1, 3, 16, 16), dynamic_batch=dynamic)


def fast_timer(node, tactic, call):
    call()
    return {"aten.nhwc": 1.0, "aten.addmm": 1.0}.get(tactic, 2.0)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def plan(model) -> Plan:
    return build_engine(model, BuildConfig(batch=["1:1:4", "5:8:16"]), timer=fast_timer)


def feeds(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"images": np.random.default_rng(seed).standard_normal((batch, 3, 16, 16)).astype(np.float32)}


def test_plan_round_trips_graph_weights_profiles_and_metadata(plan: Plan, tmp_path: Path) -> None:
    path = write_plan(plan, tmp_path / "m.plan")
    assert path.read_bytes()[:8] == MAGIC and struct.unpack_from("<I", path.read_bytes(), 8)[0] == FORMAT_VERSION
    loaded = read_plan(path)
    assert [n.name for n in loaded.graph.nodes] == [n.name for n in plan.graph.nodes]
    assert [dict(n.attrs) for n in loaded.graph.nodes] == [dict(n.attrs) for n in plan.graph.nodes]
    for name, data in plan.graph.constants.items():
        np.testing.assert_array_equal(loaded.graph.constants[name], data)
    assert [p.tactics for p in loaded.profiles] == [p.tactics for p in plan.profiles]
    assert {t for p in loaded.profiles for t in p.tactics.values()} == {"aten.nhwc", "aten.addmm"}
    assert (loaded.device, loaded.libraries, loaded.layers) == (plan.device, plan.libraries, plan.layers)
    assert loaded.batch_symbol == "N" and loaded.to_bytes() == plan.to_bytes()
    assert plan.layers["original"] > plan.layers["fused"]


def test_memory_plan_is_consistent(plan: Plan) -> None:
    small, large = plan.memory_plan
    assert (small["batch"], large["batch"]) == (1, 8)
    for m in (small, large):
        assert m["peak_live_bytes"] <= m["arena_bytes"] <= m["sum_bytes"] and m["dynamic_values"] == 0
    assert large["sum_bytes"] == 8 * small["sum_bytes"]


def test_engine_matches_onnxruntime_and_picks_the_profile(model, plan: Plan, tmp_path: Path) -> None:
    engine = Engine.load(write_plan(plan, tmp_path / "m.plan"))
    assert engine.inputs == [TensorSpec("images", np.dtype("float32"), ("N", 3, 16, 16))]
    assert [o.name for o in engine.outputs] == ["output"]
    for batch, profile in ((1, 0), (4, 0), (5, 1), (16, 1)):
        assert engine.select_profile(batch) == profile
        assert_outputs_close(engine.infer(feeds(batch)), run_ort(model, feeds(batch)))
    assert engine.executable_for(feeds(2)).tactics == plan.profiles[0].tactics
    with pytest.raises(DataError, match=r"batch 17 is outside the plan's optimization profiles \(1..4, 5..16\)"):
        engine.infer(feeds(17))


@pytest.mark.parametrize("batch", [3, 33])  # below a 4:4:4 profile: padded; above 16: split, then padded
def test_infer_pad_runs_any_batch(model, batch: int) -> None:
    engine = Engine(build_engine(model, BuildConfig(batch=["4:4:4", "8:16:16"]), timer=fast_timer))
    with pytest.raises(DataError, match="outside the plan's optimization profiles"):
        engine.infer(feeds(batch))  # the default stays TensorRT's: no silent padding
    got = engine.infer(feeds(batch), pad=True)
    assert got["output"].shape == (batch, 4)
    assert_outputs_close(got, run_ort(model, feeds(batch)))


def test_infer_pad_leaves_inputs_and_outputs_without_a_batch_dim_alone() -> None:
    from engine_testkit import make_model
    from onnx import helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "gain"], ["output"]),  # (N,) * (1,)
        helper.make_node("Identity", ["gain"], ["gain_out"]),  # (1,): not batched
    ]
    model = make_model(nodes, {"images": (np.float32, ("N", 3, 4, 4)), "gain": (np.float32, (1,))},
                       ["output", "gain_out"])  # fmt: skip
    engine = Engine(build_engine(model, BuildConfig(tune=False, batch=["4:4:4"])))
    for batch in (3, 9):  # padded; split 4 + 4 + 1 (the last padded)
        x = {**feeds(batch), "gain": np.array([2.0], np.float32)}
        x["images"] = x["images"][:, :, :4, :4].copy()
        got = engine.infer(x, pad=True)
        assert got["output"].shape == (batch,) and got["gain_out"].tolist() == [2.0]
        np.testing.assert_allclose(got["output"], 2 * x["images"].mean(axis=(1, 2, 3)), rtol=1e-5)


def test_padded_batch_doctest() -> None:
    import doctest

    from lanner.engine import runtime

    assert doctest.testmod(runtime).failed == 0


def test_wrong_inputs_are_clear_errors(plan: Plan) -> None:
    engine = Engine(plan)
    with pytest.raises(DataError, match=r"input 'images' expects float32 \[N,3,16,16\], got float32 \[1,3,8,8\]"):
        engine.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(DataError, match=r"got float64"):
        engine.infer({"images": np.zeros((1, 3, 16, 16))})
    with pytest.raises(DataError, match=r"missing \['images'\], unexpected \['x'\]"):
        engine.infer({"x": np.zeros((1, 3, 16, 16), np.float32)})


@pytest.mark.parametrize("tactic", ["aten.nchw", "onednn.fused"])
def test_concurrent_infer_from_threads_gives_the_sequential_results(plan: Plan, tactic: str) -> None:
    uniform = [Profile(p.min, p.opt, p.max, {n: tactic for n in p.tactics}) for p in plan.profiles]
    engine = Engine(Plan(**{**plan.__dict__, "profiles": uniform}))
    inputs = [feeds(1 + i % 6, seed=i) for i in range(12)]
    expected = [engine.infer(f)["output"] for f in inputs]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(k, len(inputs), 4):
                results[i] = engine.infer(inputs[i])["output"]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("libraries", {"lanner": "0.0.1"}, r"lanner 0.0.1 \(plan\) vs \S+ \(here\)"),
        ("libraries", {"torch": "1.0.0"}, r"torch 1.0.0 \(plan\) vs"),
        ("device", {"model": "Other CPU"}, r"device model 'Other CPU' \(plan\) vs"),
        ("device", {"isa": ["avx512f"]}, r"device isa \['avx512f'\] \(plan\)"),
    ],
)
def test_plan_from_elsewhere_raises_mismatch(plan: Plan, tmp_path: Path, field: str, value: dict, message: str) -> None:
    other = Plan(**{**plan.__dict__, field: {**getattr(plan, field), **value}})
    path = write_plan(other, tmp_path / "other.plan")
    with pytest.raises(PlanMismatchError, match=message) as info:
        Engine.load(path)
    assert isinstance(info.value, LannerError) and "rebuild it here" in str(info.value)
    assert Engine.load(path, check=False).plan.device == other.device  # explicit opt-out still loads


def test_other_format_version_and_corrupt_files(plan: Plan, tmp_path: Path) -> None:
    data = bytearray(plan.to_bytes())
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    (tmp_path / "v.plan").write_bytes(bytes(data))
    with pytest.raises(PlanMismatchError, match=rf"plan format version {FORMAT_VERSION + 1} differs"):
        read_plan(tmp_path / "v.plan")
    (tmp_path / "x.plan").write_bytes(b"not a plan at all")
    with pytest.raises(DataError, match="bad magic"):
        read_plan(tmp_path / "x.plan")
    (tmp_path / "t.plan").write_bytes(plan.to_bytes()[:-100])
    with pytest.raises(DataError, match="corrupt plan file"):
        read_plan(tmp_path / "t.plan")
    with pytest.raises(DataError, match="does not exist"):
        read_plan(tmp_path / "none.plan")


@pytest.mark.parametrize("text", ["0:1:2", "8:4:16", "a:b", "1:2:3:4", ""])
def test_bad_profiles_are_rejected(text: str) -> None:
    from lanner.core.errors import ConfigError

    with pytest.raises(ConfigError, match="bad batch profile"):
        Profile.parse(text)
    assert Profile.parse("8") == Profile(8, 8, 8) and Profile.parse("1:8:32") == Profile(1, 8, 32)
