"""INT8 post-training calibration (``lanner calibrate``): the TensorRT calibrator as a separate stage.

TensorRT 11 no longer calibrates inside the builder; INT8 comes from Q/DQ nodes in the ONNX. This
package produces them: activation histograms over 500-1000 images in a fixed order, TensorRT's
methods (entropy/KL, minmax, percentile, MSE; entropy with a saturation guard, see ``methods.py``),
per-channel symmetric int8 weights, and three outputs:
a QDQ ONNX (the builder's and ONNX Runtime's INT8 contract), a JSON scale table and a TensorRT-format
calibration cache (``TRT-<version>-EntropyCalibration2`` + ``tensor: <hex scale>`` lines).

Example:
    >>> from lanner.engine.calibrate import calibrate_model
    >>> report = calibrate_model("resnet18.onnx", "calib/", "out/", method="entropy")  # doctest: +SKIP
"""

from lanner.engine.calibrate.cache import (
    CalibrationCache,
    format_cache,
    hex_to_scale,
    parse_cache,
    read_cache,
    scale_to_hex,
    write_cache,
)
from lanner.engine.calibrate.calibration import (
    CalibrationReport,
    Quantized,
    calibrate_model,
    calibrate_ranges,
    prepare_graph,
    quantize,
)
from lanner.engine.calibrate.collect import activation_names, collect_statistics
from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.calibrate.images import Preprocess, iter_batches, list_images
from lanner.engine.calibrate.methods import METHODS, compute_amax
from lanner.engine.calibrate.qdq import insert_qdq, quantize_weight, resolve_exclusions
from lanner.engine.calibrate.scales import read_scales, scales_table, write_scales

__all__ = [
    "METHODS",
    "CalibrationCache",
    "CalibrationReport",
    "Histogram",
    "Preprocess",
    "Quantized",
    "activation_names",
    "calibrate_model",
    "calibrate_ranges",
    "collect_statistics",
    "compute_amax",
    "format_cache",
    "hex_to_scale",
    "insert_qdq",
    "iter_batches",
    "list_images",
    "parse_cache",
    "prepare_graph",
    "quantize",
    "quantize_weight",
    "read_cache",
    "read_scales",
    "resolve_exclusions",
    "scale_to_hex",
    "scales_table",
    "write_cache",
    "write_scales",
]
