"""Multi-object trackers (IOU, SORT, ByteTrack), chosen by name from the pipeline config.

Example:
    >>> from lanner.pipeline.track import create_tracker, tracker_names
    >>> tracker_names()
    ['bytetrack', 'iou', 'sort']
    >>> tracker = create_tracker("sort", {"max_age": 10})
"""

from lanner.pipeline.track.base import (
    TRACKERS,
    PerSourceTrackers,
    Tracker,
    TrackTable,
    create_tracker,
    register_tracker,
    tracker_names,
)
from lanner.pipeline.track.bytetrack import ByteTrack, ByteTrackConfig
from lanner.pipeline.track.iou import IouTracker, IouTrackerConfig
from lanner.pipeline.track.matching import box_iou, greedy_assignment, iou_cost, linear_assignment
from lanner.pipeline.track.sort import SortConfig, SortTracker

__all__ = [
    "TRACKERS",
    "ByteTrack",
    "ByteTrackConfig",
    "IouTracker",
    "IouTrackerConfig",
    "PerSourceTrackers",
    "SortConfig",
    "SortTracker",
    "TrackTable",
    "Tracker",
    "box_iou",
    "create_tracker",
    "greedy_assignment",
    "iou_cost",
    "linear_assignment",
    "register_tracker",
    "tracker_names",
]
