"""The op table. Importing this package registers every op family into ``OPS``.

Example:
    >>> from lanner.engine.ops import OPS, supported_ops
    >>> "Conv" in supported_ops()
    True
"""

from lanner.engine.ops import (  # noqa: F401  (registers ops)
    creation,
    detection,
    elementwise,
    fused,
    indexing,
    nn,
    pointwise,
    quant,
    reduce,
    resize,
    shape,
)
from lanner.engine.ops.registry import LANNER_DOMAIN, OPS, OpDef, lookup, onnx_op


def supported_ops(domain: str = "") -> list[str]:
    """Sorted op_types registered for ``domain`` (``""`` = the default ONNX domain)."""
    return sorted(op for dom, op in OPS if dom == domain)


__all__ = ["LANNER_DOMAIN", "OPS", "OpDef", "lookup", "onnx_op", "supported_ops"]
