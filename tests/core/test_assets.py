from pathlib import Path

import pytest

from lanner.core.assets import builtin_models, resolve_asset
from lanner.core.errors import ConfigError


def test_builtin_names_resolve_by_stem_or_file_name(tmp_path):
    (tmp_path / "detector.onnx").write_bytes(b"x")
    (tmp_path / "MODEL_CARD.md").write_text("card")
    assert builtin_models(tmp_path) == ["detector"]
    assert resolve_asset("builtin:detector", tmp_path) == tmp_path / "detector.onnx"
    assert resolve_asset("builtin:detector.onnx", tmp_path) == tmp_path / "detector.onnx"
    assert resolve_asset("some/where.onnx", tmp_path) == Path("some/where.onnx")


def test_unknown_builtin_names_the_choices(tmp_path):
    (tmp_path / "detector.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"no built-in model 'nope'.*builtin:detector"):
        resolve_asset("builtin:nope", tmp_path)
