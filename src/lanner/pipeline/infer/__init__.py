"""Inference stages: the primary detector (PGIE) and secondary classifiers on object crops (SGIEs).

Example:
    >>> from lanner.pipeline.infer import Detector, DetectorConfig
    >>> detector = Detector(DetectorConfig(model="detector.onnx"))  # doctest: +SKIP
"""

from lanner.core.nms import NmsParams, batched_nms, nms
from lanner.pipeline.infer.detector import Detector, DetectorConfig
from lanner.pipeline.infer.gaps import GapFiller
from lanner.pipeline.infer.postprocess import DETECTION_DECODERS, decode_softmax
from lanner.pipeline.infer.runtime import OrtRuntime, Runtime, open_runtime
from lanner.pipeline.infer.secondary import SecondaryClassifier, SecondaryConfig

__all__ = [
    "DETECTION_DECODERS",
    "Detector",
    "DetectorConfig",
    "GapFiller",
    "NmsParams",
    "OrtRuntime",
    "Runtime",
    "SecondaryClassifier",
    "SecondaryConfig",
    "batched_nms",
    "decode_softmax",
    "nms",
    "open_runtime",
]
