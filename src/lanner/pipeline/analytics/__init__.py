"""Analytics stage (nvdsanalytics analog): line crossing with direction, ROI occupancy, overcrowding, dwell time."""

from lanner.pipeline.analytics.config import AnalyticsConfig, LineConfig, RoiConfig
from lanner.pipeline.analytics.lines import LineCrossing, crossed
from lanner.pipeline.analytics.roi import RoiCounter, inside_polygon
from lanner.pipeline.analytics.stage import Analytics

__all__ = [
    "Analytics",
    "AnalyticsConfig",
    "LineConfig",
    "LineCrossing",
    "RoiConfig",
    "RoiCounter",
    "crossed",
    "inside_polygon",
]
