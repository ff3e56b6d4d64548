"""Files shipped inside the package (the starter models), addressed as ``builtin:<name>``.

A config can say ``model: builtin:traffic_detector`` instead of a path; it resolves to
``lanner/assets/traffic_detector.onnx`` wherever lanner is installed.

Example:
    >>> resolve_asset("models/my.onnx")  # plain paths pass through
    PosixPath('models/my.onnx')
"""

from __future__ import annotations

from pathlib import Path

from lanner.core.errors import ConfigError

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
PREFIX = "builtin:"
MODEL_SUFFIXES = (".onnx", ".plan")


def builtin_models(assets_dir: Path = ASSETS_DIR) -> list[str]:
    """Names of the models shipped in ``assets_dir`` (file stems)."""
    return sorted(p.stem for p in assets_dir.glob("*") if p.suffix in MODEL_SUFFIXES)


def resolve_asset(path: str | Path, assets_dir: Path = ASSETS_DIR) -> Path:
    """``builtin:<name>`` -> the shipped file (by stem or file name); any other path is returned as is."""
    text = str(path)
    if not text.startswith(PREFIX):
        return Path(path)
    name = text[len(PREFIX) :]
    for candidate in [assets_dir / name, *(assets_dir / f"{name}{s}" for s in MODEL_SUFFIXES)]:
        if candidate.is_file():
            return candidate
    known = builtin_models(assets_dir)
    raise ConfigError(
        f"no built-in model {name!r}",
        where=text,
        fix=f"use one of {', '.join(PREFIX + k for k in known)}" if known else "pass a model file path",
    )
