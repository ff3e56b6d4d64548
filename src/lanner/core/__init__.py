"""L0: the types, errors, config loading and registries every other layer shares (numpy + pydantic)."""

from lanner.core.config import Section, load_config, save_config
from lanner.core.detections import Detections
from lanner.core.errors import (
    ConfigError,
    DataError,
    LannerError,
    PlanMismatchError,
    SourceError,
    UnsupportedOpError,
    UsageError,
)
from lanner.core.frame import Batch, Frame
from lanner.core.registry import Registry

__all__ = [
    "Batch",
    "ConfigError",
    "DataError",
    "Detections",
    "Frame",
    "LannerError",
    "PlanMismatchError",
    "Registry",
    "Section",
    "SourceError",
    "UnsupportedOpError",
    "UsageError",
    "load_config",
    "save_config",
]
