"""Checkpoints (safetensors + JSON, never pickle) and pretrained-weight loading with clear mismatch errors.

A lanner checkpoint is one ``.safetensors`` file: the model's tensors, optional extra tensors (e.g.
optimizer state or EMA weights, stored under ``__extra__.``) and, in the safetensors header, a JSON
document ``{"format": "lanner.checkpoint", "version": 1, "model": ModelInfo, "meta": {...},
"extra_tensors": [...]}``. ``meta`` is the trainer's (epoch, step, metrics, resolved spec, ...).
``flatten_state``/``unflatten_state`` turn an ``optimizer.state_dict()`` into tensors + JSON and back.

``load_pretrained`` accepts a torchvision-style ``.pth`` (read with ``torch.load(weights_only=True)``),
a plain ``.safetensors`` file or a lanner checkpoint. Tensors of the model's head (``info.head``) whose
shape differs (another class count) keep their fresh initialisation and a warning says so; any other
missing, unexpected or mis-shaped tensor raises ``ConfigError`` listing the first few of each.

Example:
    >>> from lanner.models import create_model, save_checkpoint, load_checkpoint
    >>> model = create_model("resnet10", num_classes=2)
    >>> path = save_checkpoint("/tmp/doc_r10.safetensors", model, {"epoch": 3})
    >>> state_dict, doc = load_checkpoint(path)
    >>> doc["meta"]["epoch"], doc["model"]["name"]
    (3, 'resnet10')
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lanner.core.errors import ConfigError, DataError
from lanner.core.folders import replacing, writing
from lanner.models.registry import ModelInfo, create_model

log = logging.getLogger(__name__)

FORMAT = "lanner.checkpoint"
VERSION = 1
EXTRA_PREFIX = "__extra__."
_HEADER_KEY = "lanner"
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "ema")  # common {key: state_dict} wrappers
_SHOW = 5  # names listed per kind of mismatch


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model``'s weights, ``model.info`` and the JSON-ready ``meta`` to one safetensors file.

    The write is atomic (temporary file, then rename), so a crash never leaves a half checkpoint.
    """
    from safetensors.torch import save_file

    path = Path(path)
    model = unwrap_model(model)
    extra = dict(extra_tensors or {})
    doc = {"format": FORMAT, "version": VERSION, "model": model.info.to_dict(), "meta": dict(meta or {})}
    doc["extra_tensors"] = sorted(extra)
    try:
        header = json.dumps(doc)
    except TypeError as err:
        raise ConfigError(
            f"checkpoint meta is not JSON-serialisable: {err}", where=str(path), fix="put tensors in extra_tensors"
        ) from err
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update({EXTRA_PREFIX + k: v.detach().cpu().clone().contiguous() for k, v in extra.items()})
    fix = "free disk space, or write to another folder (-r/--results, -o)"
    with writing(path, "checkpoint", fix=fix), replacing(path) as partial:  # a disk that fills keeps the old one
        save_file(tensors, str(partial), metadata={_HEADER_KEY: header})
    return path


def unwrap_model(model: nn.Module) -> nn.Module:
    """The lanner model inside a DistributedDataParallel (``.module``) or ``torch.compile`` (``._orig_mod``) wrapper."""
    while not hasattr(model, "info"):
        inner = getattr(model, "module", None)
        inner = getattr(model, "_orig_mod", None) if inner is None else inner
        if not isinstance(inner, nn.Module):
            break
        model = inner
    if not isinstance(getattr(model, "info", None), ModelInfo):
        raise ConfigError(
            f"{type(model).__name__} carries no ModelInfo (.info)", fix="build models with lanner.models.create_model"
        )
    return model


@contextlib.contextmanager
def _safetensors_errors(path: Path) -> Iterator[None]:
    """Turn safetensors' own error (truncated file, another format renamed) into one ``DataError`` line."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(
            f"cannot read checkpoint: not a valid safetensors file ({first})",
            where=str(path),
            fix="the file is truncated or of another format: copy it again or use another checkpoint",
        ) from None


def _read_header(path: Path) -> dict[str, Any] | None:
    from safetensors import safe_open

    with _safetensors_errors(path), safe_open(str(path), framework="pt") as f:
        header = (f.metadata() or {}).get(_HEADER_KEY)
    if header is None:
        return None
    try:
        doc = json.loads(header)
    except json.JSONDecodeError as err:
        raise DataError(
            f"cannot read checkpoint: its '{_HEADER_KEY}' header is not valid JSON ({err.msg})",
            where=str(path),
            fix="the file was edited or damaged: use a checkpoint saved by lanner",
        ) from None
    return doc if isinstance(doc, dict) else None


def _read_safetensors(path: Path, extra: bool) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with _safetensors_errors(path), safe_open(str(path), framework="pt") as f:
        names = [k for k in f.keys() if k.startswith(EXTRA_PREFIX) == extra]  # noqa: SIM118 (safe_open is not iterable)
        return {k.removeprefix(EXTRA_PREFIX): f.get_tensor(k) for k in names}


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a lanner checkpoint: ``(state_dict, doc)`` with ``doc["model"]`` (ModelInfo dict) and ``doc["meta"]``."""
    path = _existing(path)
    doc = _read_header(path)
    if doc is None or doc.get("format") != FORMAT:
        raise DataError(
            "not a lanner checkpoint (a safetensors file without lanner's model header)",
            where=str(path),
            fix="pass a checkpoint written by `lanner train`; plain weights load as model.pretrained (read_state_dict)",
        )
    if doc.get("version", 0) > VERSION:
        raise DataError(f"checkpoint version {doc['version']} is newer than {VERSION}", where=str(path), fix="upgrade")
    return _read_safetensors(path, extra=False), doc


def load_extra_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``extra_tensors`` saved with a checkpoint (names without the ``__extra__.`` prefix)."""
    return _read_safetensors(_existing(path), extra=True)


def model_from_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model a checkpoint was saved from (same name, classes, metadata) and load its weights.

    Example:
        >>> model = model_from_checkpoint("/tmp/doc_r10.safetensors")  # doctest: +SKIP
    """
    state_dict, doc = load_checkpoint(path)
    info = ModelInfo.from_dict(doc["model"])
    options = info.extra.get("create_kwargs", {})
    model = create_model(info.name, info.num_classes, class_names=info.class_names, **options)
    model.load_state_dict(state_dict, strict=True)
    model.info = info
    return model


TRAINING_META = ("optimizer", "rng", "scaler", "ema_updates")  # what only a resume needs (``save_training``)


def save_weights_only(src: str | Path, dst: str | Path) -> Path:
    """Copy a checkpoint without its training state: the weights (EMA ones for a training checkpoint), the
    model metadata and ``meta`` less the optimizer/RNG entries. A yolox_s checkpoint goes from 107 MB to a
    third of that; the copy evaluates, exports and serves as ``model.extend_from`` / ``model.pretrained``
    like the original, but cannot resume training.

    Example:
        >>> save_weights_only("results/best.safetensors", "yolox_s_weights.safetensors")  # doctest: +SKIP
    """
    model = model_from_checkpoint(src)  # checks the file; the header below then needs no second tensor read
    doc = _read_header(Path(src)) or {}
    meta = {k: v for k, v in doc.get("meta", {}).items() if k not in TRAINING_META}
    return save_checkpoint(dst, model, meta)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError("weights file not found", where=str(path), fix="check the path (no download is attempted)")
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of any supported weights file: ``.safetensors`` (lanner or plain) or a torch ``.pth/.pt/.bin``.

    Torch files are read with ``weights_only=True`` (no arbitrary code); ``{"model": ...}``-style wrappers
    and DistributedDataParallel's ``module.`` prefix are removed.
    """
    path = _existing(path)
    if path.suffix == ".safetensors":
        return _read_safetensors(path, extra=False)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # refused by weights_only, truncated, or not a torch file: a data problem
        raise DataError(
            f"cannot read torch weights safely: {_torch_load_problem(err)}",
            where=str(path),
            fix="re-save only the tensors with torch.save(model.state_dict(), path), or convert to .safetensors",
        ) from err
    while isinstance(obj, dict):
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not tensors:
        raise DataError("no tensors found in the weights file", where=str(path), fix="save a state_dict")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def _torch_load_problem(err: Exception) -> str:
    """What went wrong in ``torch.load(weights_only=True)``, in one sentence.

    A weights-only refusal is named as such: torch's own text goes on to suggest ``weights_only=False``,
    which no one should do for a file whose origin they do not control.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    detail = unpickler.group(1) if unpickler else (text.splitlines() or [""])[0]
    detail = detail.split(". ")[0].rstrip(".")[:200]
    refused = re.match(r"Unsupported global: GLOBAL (\S+)", detail)
    if isinstance(err, pickle.UnpicklingError) and refused:
        name = refused.group(1)
        return f"it pickles the Python object {name} besides tensors (loading it could run code), so it is refused"
    return f"not a torch weights file, or a truncated one ({type(err).__name__}: {detail})"


@dataclass
class LoadReport:
    """What ``load_pretrained`` did: tensors loaded, head tensors re-initialised, and any misfit.

    ``loaded``, ``reinitialised``, ``missing``, ``fresh`` are model tensor names; ``unexpected`` and
    ``ignored`` are file tensor names (after renaming to the model's namespace for ``unexpected``).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "name: file (a, b) vs model (c, d)"
    fresh: list[str] = field(default_factory=list)  # model tensors outside a loaded backbone (neck, head)
    ignored: list[str] = field(default_factory=list)  # file tensors of a source classifier's head

    @property
    def ok(self) -> bool:
        """True when every non-head tensor found its match."""
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self) -> str:
        """One line: counts and the first few names of each kind of misfit."""
        parts = []
        for label, names in (("missing", self.missing), ("unexpected", self.unexpected)):
            if names:
                parts.append(
                    f"{len(names)} {label} ({', '.join(names[:_SHOW])}{', ...' if len(names) > _SHOW else ''})"
                )
        if self.mismatched:
            more = ", ..." if len(self.mismatched) > _SHOW else ""
            parts.append(f"{len(self.mismatched)} shape mismatches ({'; '.join(self.mismatched[:_SHOW])}{more})")
        return "; ".join(parts)


def _in_head(name: str, head: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in head)


def _backbone_view(
    model: nn.Module, tensors: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Rename a classifier's tensors to the detector backbone they initialise, if that is what the file is.

    A model with ``backbone_prefix`` (YOLOX) given a file with no key under that prefix is being
    initialised from a classifier (e.g. ImageNet ResNet-18): keys get the prefix, and the classifier's
    own head (``backbone_head``, e.g. ``fc``) is ignored. Returns ``(tensors, scope, ignored)``, where
    only model tensors under ``scope`` are expected in the file.
    """
    prefix = getattr(model, "backbone_prefix", "")
    if not prefix or any(k.startswith(prefix) for k in tensors):
        return dict(tensors), "", []
    skip = getattr(model, "backbone_head", ())
    ignored = [k for k in tensors if _in_head(k, skip)]
    return {prefix + k: v for k, v in tensors.items() if not _in_head(k, skip)}, prefix, ignored


def match_state_dict(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str = ""
) -> tuple[LoadReport, dict[str, torch.Tensor]]:
    """Compare file tensors with the model's state dict by name and shape (loads nothing).

    Returns the report and the file's tensors under the model's names (see ``_backbone_view``).
    """
    tensors, scope, ignored = _backbone_view(model, tensors)
    own = model.state_dict()
    head = model.info.head
    report = LoadReport(source=source, ignored=ignored)
    for name, value in own.items():
        if not name.startswith(scope):
            report.fresh.append(name)
        elif name not in tensors:
            if _in_head(name, head):
                report.reinitialised.append(name)
            elif not name.endswith("num_batches_tracked"):  # old checkpoints lack BN counters
                report.missing.append(name)
        elif tensors[name].shape != value.shape:
            if _in_head(name, head):
                report.reinitialised.append(name)
            else:
                file_shape, model_shape = tuple(tensors[name].shape), tuple(value.shape)
                report.mismatched.append(f"{name}: file {file_shape} vs model {model_shape}")
        else:
            report.loaded.append(name)
    report.unexpected = [k for k in tensors if k not in own and not _in_head(k, head)]
    return report, tensors


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load weights into ``model`` by name; re-initialise (keep fresh) head tensors whose shape changed.

    Accepts a file of the same architecture, or, for a detector with a classifier backbone, the
    classifier's weights (the neck and head then start fresh). Raises ``ConfigError`` when the file
    is for another architecture, listing the misfit tensors.

    Example:
        >>> model = create_model("resnet18", num_classes=5)  # doctest: +SKIP
        >>> load_pretrained(model, "resnet18-f37072fd.pth").reinitialised  # doctest: +SKIP
        ['fc.weight', 'fc.bias']
    """
    report, tensors = match_state_dict(model, read_state_dict(path), source=str(path))
    if not report.ok:
        raise ConfigError(
            f"pretrained weights do not fit {model.info.name!r}: {report.problems()}",
            where=str(path),
            fix=_arch_hint(Path(path), len(tensors), len(model.state_dict())),
        )
    own = model.state_dict()
    model.load_state_dict({k: tensors[k].to(own[k].dtype) for k in report.loaded}, strict=False)
    if report.fresh:
        log.info(
            "%s: backbone loaded (%d tensors); %d neck/head tensors start fresh; ignored the classifier's %s",
            path,
            len(report.loaded),
            len(report.fresh),
            ", ".join(report.ignored) or "nothing",
        )
    if report.reinitialised:
        log.warning(
            "%s: head re-initialised for %d classes (%s); %d tensors loaded",
            path,
            model.info.num_classes,
            ", ".join(report.reinitialised),
            len(report.loaded),
        )
    return report


def _arch_hint(path: Path, file_count: int, model_count: int) -> str:
    saved_name = None
    if path.suffix == ".safetensors":
        saved_name = ((_read_header(path) or {}).get("model") or {}).get("name")
    if saved_name:
        return f"the file is a lanner checkpoint of {saved_name!r}: create that model instead"
    return f"the file holds {file_count} tensors, the model {model_count}: pick the model the weights were trained as"


def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (e.g. ``optimizer.state_dict()``) into named tensors and a JSON skeleton.

    Each tensor is replaced in the skeleton by ``{"__tensor__": name}`` and each tuple by
    ``{"__tuple__": [...]}``; int dict keys are recorded so ``unflatten_state`` restores the exact
    structure and ``optimizer.load_state_dict`` accepts it.

    Example:
        >>> tensors, skeleton = flatten_state({"step": 3, "buf": torch.zeros(2)})
        >>> skeleton, list(tensors)
        ({'step': 3, 'buf': {'__tensor__': 'buf'}}, ['buf'])
    """
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}, {"__tensor__": prefix}
    tensors: dict[str, torch.Tensor] = {}
    if isinstance(obj, Mapping):
        skeleton: dict[str, Any] = {"__int_keys__": []} if any(isinstance(k, int) for k in obj) else {}
        for key, value in obj.items():
            if isinstance(key, int):
                skeleton["__int_keys__"].append(key)
            sub_tensors, skeleton[str(key)] = flatten_state(value, f"{prefix}.{key}" if prefix else str(key))
            tensors.update(sub_tensors)
        return tensors, skeleton
    if isinstance(obj, list | tuple):
        items = []
        for i, value in enumerate(obj):
            sub_tensors, sub = flatten_state(value, f"{prefix}.{i}" if prefix else str(i))
            tensors.update(sub_tensors)
            items.append(sub)
        return tensors, {"__tuple__": items} if isinstance(obj, tuple) else items
    return tensors, obj


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of ``flatten_state``."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        int_keys = {str(k) for k in skeleton.get("__int_keys__", [])}
        return {
            (int(k) if k in int_keys else k): unflatten_state(v, tensors)
            for k, v in skeleton.items()
            if k != "__int_keys__"
        }
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton
