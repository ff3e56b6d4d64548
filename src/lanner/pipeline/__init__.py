"""L3: streaming video analytics (sources, mux, inference, tracking, analytics, sinks)."""

from lanner.pipeline.metrics import evaluate_mot, read_mot_txt, write_mot_txt
from lanner.pipeline.track import (
    ByteTrack,
    ByteTrackConfig,
    IouTracker,
    IouTrackerConfig,
    PerSourceTrackers,
    SortConfig,
    SortTracker,
    Tracker,
    create_tracker,
    register_tracker,
    tracker_names,
)

__all__ = [
    "ByteTrack",
    "ByteTrackConfig",
    "IouTracker",
    "IouTrackerConfig",
    "PerSourceTrackers",
    "SortConfig",
    "SortTracker",
    "Tracker",
    "create_tracker",
    "evaluate_mot",
    "read_mot_txt",
    "register_tracker",
    "tracker_names",
    "write_mot_txt",
]
