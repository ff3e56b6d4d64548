"""``replacing``: a file is swapped in whole when its writer finishes, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.core.folders import replacing
from lanner.engine.calibrate.scales import write_scales
from lanner.engine.plan import write_plan
from lanner.engine.timing_cache import TimingCache


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with replacing(target) as partial:
        assert partial.parent == tmp_path and partial != target
        partial.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # readers see the old file until the block ends
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError, ValueError])
def test_an_interrupted_or_failed_write_keeps_the_old_file(tmp_path: Path, stop: type[BaseException]) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(stop), replacing(target) as partial:
        partial.write_bytes(b"half")
        raise stop()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def half_written_then_ctrl_c(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """``Path.<method>`` writes half of its data, then the user presses Ctrl-C."""
    real = getattr(Path, method)

    def cut(self: Path, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, method, cut)


def test_a_plan_rebuild_cut_short_keeps_the_old_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "det.plan"
    target.write_bytes(b"the plan that works")
    plan = type("FakePlan", (), {"to_bytes": lambda self: b"a new plan, twice as long as the old one"})()
    half_written_then_ctrl_c(monkeypatch, "write_bytes")
    with pytest.raises(KeyboardInterrupt):
        write_plan(plan, target)
    monkeypatch.undo()
    assert target.read_bytes() == b"the plan that works" and len(list(tmp_path.iterdir())) == 1


def test_the_timing_cache_and_scale_table_are_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, scales = tmp_path / "timing.cache", tmp_path / "scales.json"
    TimingCache({"conv:a": {"t": 1.0}}).save(cache)
    write_scales(scales, {"x": 1.0})
    before = cache.read_text(), scales.read_text()
    half_written_then_ctrl_c(monkeypatch, "write_text")
    for write in (lambda: TimingCache({"conv:b": {"t": 2.0}}).save(cache), lambda: write_scales(scales, {"y": 2.0})):
        with pytest.raises(KeyboardInterrupt):
            write()
    monkeypatch.undo()
    assert (cache.read_text(), scales.read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scales.json", "timing.cache"]
