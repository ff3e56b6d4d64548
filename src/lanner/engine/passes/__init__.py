"""Graph passes: pure functions ``Graph -> Graph``, run in the order of the named list ``PASSES``.

``optimize`` runs them, verifies the graph after each one and logs layer counts the way TensorRT's
verbose build does ("Original: 247 layers → after fusion: 62").

Example:
    >>> graph = optimize(load_onnx("resnet18.onnx"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from lanner.engine.ir.graph import Graph
from lanner.engine.ir.verify import InvalidGraphError, verify
from lanner.engine.passes.batchnorm import fold_batchnorm
from lanner.engine.passes.cleanup import eliminate_dead_nodes, eliminate_identity, fold_constants
from lanner.engine.passes.conv_fusion import fuse_conv_activation, fuse_pad_into_conv, fuse_residual_add
from lanner.engine.passes.layout import cancel_transposes, merge_reshapes
from lanner.engine.passes.pointwise import fuse_pointwise_chains
from lanner.engine.passes.qdq import fold_qdq

logger = logging.getLogger("lanner.engine")

Pass = Callable[[Graph], Graph]

PASSES: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("eliminate_identity", eliminate_identity),
    ("eliminate_dead_nodes", eliminate_dead_nodes),
    ("cancel_transposes", cancel_transposes),
    ("merge_reshapes", merge_reshapes),
    ("fold_batchnorm", fold_batchnorm),
    ("fuse_pad_into_conv", fuse_pad_into_conv),
    ("fuse_conv_activation", fuse_conv_activation),  # Conv → act (incl. SiLU), so a later Add is post-activation
    ("fuse_residual_add", fuse_residual_add),
    ("fuse_conv_activation", fuse_conv_activation),  # Conv + Add → Relu (ResNet's conv + sum + relu)
    ("fuse_pointwise_chains", fuse_pointwise_chains),  # what is left of elementwise chains → one node
    ("fold_qdq", fold_qdq),  # Q → DQ → (fused) conv [→ Q] → ai.lanner.QConv (INT8); a no-op without Q/DQ
    ("eliminate_dead_nodes", eliminate_dead_nodes),
]


def count_layers(graph: Graph) -> int:
    """Layers as TensorRT counts them: one per node (constants are not layers)."""
    return len(graph.nodes)


def summarize_layers(before: Graph, after: Graph) -> str:
    """``"Original: 247 layers → after fusion: 62"``."""
    return f"Original: {count_layers(before)} layers → after fusion: {count_layers(after)}"


def optimize(graph: Graph, passes: Sequence[tuple[str, Pass]] = PASSES, *, check: bool = True) -> Graph:
    """Run ``passes`` in order; with ``check`` the verifier runs after each one (naming the pass on failure)."""
    current = graph
    for name, fn in passes:
        result = fn(current)
        if check:
            try:
                verify(result, require_types=True)
            except InvalidGraphError as exc:
                raise InvalidGraphError(f"{exc.what} (after pass '{name}')", where=exc.where, fix=exc.fix) from exc
        logger.debug("after %s: %d layers", name, count_layers(result))
        current = result
    logger.info(summarize_layers(graph, current))
    return current


__all__ = [
    "PASSES",
    "Pass",
    "cancel_transposes",
    "count_layers",
    "eliminate_dead_nodes",
    "eliminate_identity",
    "fold_batchnorm",
    "fold_constants",
    "fold_qdq",
    "fuse_conv_activation",
    "fuse_pad_into_conv",
    "fuse_pointwise_chains",
    "fuse_residual_add",
    "merge_reshapes",
    "optimize",
    "summarize_layers",
]
