"""ONNX ``TensorProto.DataType`` codes ↔ numpy dtypes (numpy only, so ops need not import onnx).

Codes from https://onnx.ai/onnx/api/mapping.html (onnx.proto ``TensorProto.DataType``).
"""

from __future__ import annotations

import numpy as np

from lanner.core.errors import UnsupportedOpError

ONNX_TO_NUMPY: dict[int, np.dtype] = {
    1: np.dtype("float32"),
    2: np.dtype("uint8"),
    3: np.dtype("int8"),
    4: np.dtype("uint16"),
    5: np.dtype("int16"),
    6: np.dtype("int32"),
    7: np.dtype("int64"),
    9: np.dtype("bool"),
    10: np.dtype("float16"),
    11: np.dtype("float64"),
    12: np.dtype("uint32"),
    13: np.dtype("uint64"),
}
NUMPY_TO_ONNX: dict[np.dtype, int] = {v: k for k, v in ONNX_TO_NUMPY.items()}
_NAMES = {0: "UNDEFINED", 8: "STRING", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"}


def to_numpy_dtype(code: int, where: str = "") -> np.dtype:
    """The numpy dtype for an ONNX element type code, or ``UnsupportedOpError`` naming it."""
    if code not in ONNX_TO_NUMPY:
        name = _NAMES.get(code, f"code {code} (float8/int4/...)")
        raise UnsupportedOpError(
            f"ONNX element type {name} is not supported",
            where=where or None,
            fix="export the model with float32/float16/int8/uint8/int32/int64/bool tensors",
        )
    return ONNX_TO_NUMPY[code]
