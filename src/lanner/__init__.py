"""lanner: an open, pip-installable stack for edge vision AI.

Train and adapt detectors from spec files, compile ONNX into fast engines, run multi-camera video
analytics and serve models, on a laptop CPU or an NVIDIA GPU.
"""

from lanner.core import (
    Batch,
    ConfigError,
    DataError,
    Detections,
    Frame,
    LannerError,
    PlanMismatchError,
    SourceError,
    UnsupportedOpError,
)

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "ConfigError",
    "DataError",
    "Detections",
    "Frame",
    "LannerError",
    "PlanMismatchError",
    "SourceError",
    "UnsupportedOpError",
    "__version__",
]
