"""build_engine: profiles for static/dynamic models, layer counts, timing-cache modes, byte-identical replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plan import fast_timer, tiny_model

from lanner.core.errors import ConfigError, DataError
from lanner.engine.build import BuildConfig, build_engine
from lanner.engine.timing_cache import TimingCache, TimingCacheMissError

pytest.importorskip("torch")


def test_replay_builds_are_byte_identical(tmp_path: Path) -> None:
    model = tiny_model()
    cache = str(tmp_path / "t.cache")
    tuned = build_engine(model, BuildConfig(batch=["1:2:4"], timing_cache=cache), timer=fast_timer)
    assert len(TimingCache.load(cache)) == 4  # two convs, the Gemm and the whole-graph decision
    replay = BuildConfig(batch=["1:2:4"], timing_cache=cache, cache_mode="replay")
    first, second = build_engine(model, replay).to_bytes(), build_engine(model, replay).to_bytes()
    assert first == second  # the build config differs from the tuned plan's (cache_mode), the tactics do not
    assert build_engine(model, replay).profiles[0].tactics == tuned.profiles[0].tactics
    before = Path(cache).read_bytes()
    build_engine(model, replay)
    assert Path(cache).read_bytes() == before  # replay never writes the cache


def test_replay_against_a_cache_of_other_shapes_misses(tmp_path: Path) -> None:
    model, cache = tiny_model(), str(tmp_path / "t.cache")
    build_engine(model, BuildConfig(batch=["1:2:4"], timing_cache=cache), timer=fast_timer)
    with pytest.raises(TimingCacheMissError, match="rebuild with --cache-mode merge"):
        build_engine(model, BuildConfig(batch=["1:8:8"], timing_cache=cache, cache_mode="replay"))
    merged = build_engine(model, BuildConfig(batch=["1:8:8"], timing_cache=cache, cache_mode="merge"), timer=fast_timer)
    assert len(TimingCache.load(cache)) == 8 and merged.profiles[0].tactics


def test_replay_needs_a_cache() -> None:
    with pytest.raises(ConfigError, match="needs a timing cache"):
        build_engine(tiny_model(), BuildConfig(cache_mode="replay"))
    with pytest.raises(DataError, match="does not exist"):
        build_engine(tiny_model(), BuildConfig(cache_mode="replay", timing_cache="/nonexistent/t.cache"))


def test_static_batch_model_builds_one_fixed_profile() -> None:
    model = tiny_model(dynamic=False)
    plan = build_engine(model, BuildConfig(tune=False))
    assert [(p.min, p.opt, p.max) for p in plan.profiles] == [(1, 1, 1)] and plan.batch_symbol is None
    assert plan.profiles[0].tactics == {}
    with pytest.raises(ConfigError, match=r"fixed batch of 1, so batch profiles \['1:8:32'\] cannot be built"):
        build_engine(model, BuildConfig(batch=["1:8:32"]))


def test_dynamic_model_default_profile_and_layer_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="lanner.engine"):
        plan = build_engine(tiny_model(), BuildConfig(tune=False))
    assert [(p.min, p.opt, p.max) for p in plan.profiles] == [(1, 1, 32)]
    assert f"Original: {plan.layers['original']} layers → after fusion: {plan.layers['fused']}" in caplog.text


def test_corrupt_onnx_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="not a valid ONNX model"):
        build_engine(bad)


def test_progress_is_reported_once_per_layer_and_profile() -> None:
    model = tiny_model()
    calls: list[int] = []
    plan = build_engine(model, BuildConfig(batch=["1:2:4", "8"]), timer=fast_timer, progress=calls.append)
    assert calls == [1] * (2 * len(plan.graph.nodes))  # every optimized layer, in each of the two profiles
    calls.clear()
    build_engine(model, BuildConfig(batch=["1:2:4"], tune=False), progress=calls.append)
    assert calls == []  # nothing is timed without tuning


def test_ctrl_c_while_timing_saves_the_layers_timed_so_far(tmp_path: Path) -> None:
    from lanner.core.errors import Interrupted

    model, cache = tiny_model(), str(tmp_path / "t.cache")
    full: list[str] = []
    build_engine(model, BuildConfig(batch=["1:2:4"]), timer=lambda n, t, c: full.append(t) or fast_timer(n, t, c))

    def interrupted(node, tactic, call, calls=[]):  # noqa: B006 (counts across calls on purpose)
        calls.append(tactic)
        if len(calls) > len(full) // 2:
            raise KeyboardInterrupt
        return fast_timer(node, tactic, call)

    with pytest.raises(Interrupted) as info:
        build_engine(model, BuildConfig(batch=["1:2:4"], timing_cache=cache), timer=interrupted)
    saved = len(TimingCache.load(cache))
    assert 0 < saved < 4 and info.value.exit_code == 130
    assert (
        f"{cache}: interrupted while timing tactics; {saved} layer timings saved; build again with --cache-mode merge"
        in str(info.value)
    )
    rest: list[str] = []
    build_engine(
        model,
        BuildConfig(batch=["1:2:4"], timing_cache=cache, cache_mode="merge"),
        timer=lambda n, t, c: rest.append(t) or fast_timer(n, t, c),
    )
    assert len(rest) < len(full) and len(TimingCache.load(cache)) == 4  # only the untimed layers were timed


def test_ctrl_c_without_a_timing_cache_says_how_to_keep_timings() -> None:
    from lanner.core.errors import Interrupted

    def interrupted(node, tactic, call):
        raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="nothing was written; pass --timing-cache FILE"):
        build_engine(tiny_model(), BuildConfig(batch=["1:2:4"]), timer=interrupted)


def dynamic_hw_model():
    """A conv net exported with dynamic batch, height and width (Ultralytics ``dynamic=True`` style)."""
    import io
    import warnings

    import onnx
    import torch

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 4, 3, 1, 1)).eval()
    buffer = io.BytesIO()
    axes = {"images": {0: "N", 2: "H", 3: "W"}, "output": {0: "N", 2: "h", 3: "w"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, 32, 32), buffer, dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["output"], dynamic_axes=axes)  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def test_dynamic_height_width_builds_at_input_size() -> None:
    import numpy as np
    from engine_testkit import assert_outputs_close, run_ort

    from lanner.engine.runtime import Engine

    model = dynamic_hw_model()
    with pytest.raises(ConfigError, match=r"other than the batch; build it at one size with --input-size"):
        build_engine(model, BuildConfig(tune=False))
    plan = build_engine(model, BuildConfig(tune=False, input_size=(24, 40), batch=["1:2:2"]))
    assert plan.graph.values["images"].shape == ("N", 3, 24, 40)
    assert plan.graph.values["output"].shape == ("N", 4, 12, 20)
    x = {"images": np.random.default_rng(0).standard_normal((2, 3, 24, 40)).astype(np.float32)}
    assert_outputs_close(Engine(plan).infer(x), run_ort(model, x))


def test_input_size_against_a_fixed_size_is_a_clear_error() -> None:
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"input 'images' has a fixed size 16x16, not 24x40.*drop --input-size"):
        build_engine(model, BuildConfig(tune=False, input_size=(24, 40)))
    assert build_engine(model, BuildConfig(tune=False, input_size=(16, 16))).layers  # the same size is fine
    with pytest.raises(ValueError, match="input_size"):
        BuildConfig(input_size=(0, 16))
