"""Typed configuration: YAML file -> ``--set`` overrides -> a validated pydantic model.

Every section is a ``Section`` (a pydantic model that rejects unknown keys). Errors name the file and
line, the key path, and the nearest valid key::

    spec.yaml:7: training.lerning_rate: unknown key; did you mean 'learning_rate'?

Example:
    >>> class Training(Section):
    ...     epochs: int = 10
    ...     learning_rate: float = 1e-3
    >>> class Spec(Section):
    ...     training: Training = Training()
    >>> load_config(Spec, overrides=["training.epochs=3"]).training.epochs
    3
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

from lanner.core.errors import ConfigError, LannerError

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[str | int, ...]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def load_config(
    schema: type[M],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    data: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> M:
    """Build ``schema`` from defaults, then a YAML file (or ``data``), then ``a.b=c`` overrides.

    ``source`` names where ``data`` came from in error messages (e.g. the INI file it was imported from)."""
    origins: dict[KeyPath, str] = {}
    if path is not None:
        tree = read_yaml(path, origins)
    else:
        tree = dict(data or {})
    for item in overrides:
        key_path, value = parse_override(item)
        _set_path(tree, key_path, value, where=f"--set {item}")
        origins[key_path] = f"--set {item}"
    try:
        return schema.model_validate(tree)
    except pydantic.ValidationError as exc:
        raise _config_error(schema, exc, origins, str(path or source or "config")) from None
    except ConfigError as exc:  # raised as it is by a section's own check: say which file it is about
        named = path or source
        if named is None:
            raise
        where = f"{named}: {exc.where}" if exc.where else str(named)
        raise ConfigError(exc.what, where=where, fix=exc.fix) from None


def save_config(config: BaseModel, path: str | Path) -> Path:
    """Write the resolved config as YAML (saved next to results so a run can be repeated)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, default_flow_style=False)
    path.write_text(text)
    return path


def read_yaml(path: str | Path, origins: dict[KeyPath, str] | None = None) -> dict[str, Any]:
    """Read a YAML mapping, recording ``file:line`` for every key path in ``origins``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file", fix="pass the YAML file inside it")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", fix="check the path, or run from the right folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not a text file (byte {exc.start} is not UTF-8)", where=str(path),
                          fix="pass the YAML config, saved as UTF-8 text")  from None  # fmt: skip
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"invalid YAML: {problem}", where=where, fix="fix the syntax at that line") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError("a config file must be a mapping of sections", where=f"{path}:{node.start_mark.line + 1}")
    result = _construct(node, (), path, origins if origins is not None else {})
    assert isinstance(result, dict)
    return result


def parse_override(item: str) -> tuple[KeyPath, Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} has no '='", where="--set", fix="write it as key.path=value")
    key, _, raw = item.partition("=")
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"override {item!r} has an empty key", where="--set", fix="write it as key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return tuple(int(p) if p.isdigit() else p for p in parts), value


def _construct(node: yaml.Node, prefix: KeyPath, path: Path, origins: dict[KeyPath, str]) -> Any:
    origins.setdefault(prefix, f"{path}:{node.start_mark.line + 1}")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("keys must be plain names", where=f"{path}:{key_node.start_mark.line + 1}")
            key = key_node.value
            if key in out:
                raise ConfigError(
                    f"key {_dotted(prefix + (key,))!r} appears twice",
                    where=f"{path}:{key_node.start_mark.line + 1}",
                    fix="keep one of them",
                )
            origins[prefix + (key,)] = f"{path}:{key_node.start_mark.line + 1}"  # errors point at the key
            out[key] = _construct(value_node, prefix + (key,), path, origins)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, prefix + (i,), path, origins) for i, item in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _set_path(tree: dict[str, Any], key_path: KeyPath, value: Any, where: str) -> None:
    node: Any = tree
    for i, part in enumerate(key_path[:-1]):
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise ConfigError(f"index {part} is out of range", where=where)
            node = node[part]
            continue
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, (dict, list)):
            raise ConfigError(
                f"{_dotted(key_path[: i + 1])!r} is a value, not a section", where=where, fix="override it directly"
            )
        node = nxt
    last = key_path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise ConfigError(f"index {last} is out of range", where=where)
        node[last] = value
    else:
        node[str(last)] = value


def _config_error(schema: type[BaseModel], exc: pydantic.ValidationError, origins: dict, source: str) -> ConfigError:
    lines = [_describe(schema, err, origins, source) for err in exc.errors()]
    if len(lines) == 1:
        return lines[0]
    return ConfigError("\n".join(str(e) for e in lines))  # one complete line (what; fix) per mistake


def _describe(schema: type[BaseModel], err: Mapping[str, Any], origins: dict, source: str) -> ConfigError:
    loc, _ = _walk(schema, tuple(err["loc"]))
    dotted = _dotted(loc)
    where = _origin(loc, origins) or source
    if err["type"] == "extra_forbidden":
        _, parent = _walk(schema, tuple(err["loc"])[:-1])
        valid = [name for m in _models_in(parent) for name in m.model_fields]
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        fix = f"did you mean {close[0]!r}?" if close else f"valid keys here: {', '.join(valid) or '(none)'}"
        return ConfigError("unknown key", where=f"{where}: {dotted}", fix=fix)
    if err["type"] == "missing":
        return ConfigError("required key is missing", where=f"{where}: {dotted}", fix="add it")
    place = f"{where}: {dotted}" if dotted else where
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, LannerError):  # raised by a validator: its own what / fix, at this place
        inner = f"{cause.where}: {cause.what}" if cause.where else cause.what
        return ConfigError(inner, where=place, fix=cause.fix)
    message = str(cause) if err["type"] == "value_error" and cause is not None else err["msg"]  # no "Value error, "
    shown = "" if isinstance(err.get("input"), Mapping) else f" (got {err.get('input')!r})"  # not a whole section
    return ConfigError(f"{message}{shown}", where=place)


def _origin(loc: KeyPath, origins: dict[KeyPath, str]) -> str | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return None


def _walk(schema: type[BaseModel], loc: KeyPath) -> tuple[KeyPath, Any]:
    """Follow a pydantic error location through the schema.

    Returns the location as the YAML file spells it (a tagged union's tag, which pydantic puts in the
    location, dropped) and the annotation found there.
    """
    annotation: Any = schema
    clean: list[str | int] = []
    for part in loc:
        if isinstance(part, int):
            clean.append(part)
            continue
        members = _models_in(annotation)
        tagged = [m for m in members if len(members) > 1 and _has_tag(m, part)]
        if tagged:  # ("sinks", 0, "redis", "maxln"): "redis" names the union member, not a key
            annotation = tagged[0]
            continue
        clean.append(part)
        field = next((m.model_fields[part] for m in members if part in m.model_fields), None)
        annotation = field.annotation if field is not None else None
    return tuple(clean), annotation


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold: itself, a union's members, a list's or dict's items."""
    if annotation is None:
        return []
    if _is_model(annotation):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _has_tag(model: type[BaseModel], tag: str) -> bool:
    """Whether one of ``model``'s fields is a ``Literal`` that admits ``tag`` (a discriminator)."""
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal and tag in typing.get_args(field.annotation):
            return True
    return False


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _dotted(loc: KeyPath) -> str:
    return ".".join(str(p) for p in loc)
