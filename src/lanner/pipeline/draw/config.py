"""OSD and tiler configs (nvdsosd's ``[osd]`` and nvmultistreamtiler's ``[tiled-display]`` analogs).

Example:
    >>> OsdConfig(color_by="track").trail_length, TilerConfig(rows=2, columns=2).width
    (30, 1280)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lanner.core.config import Section


class OsdConfig(Section):
    """What the overlay draws. ``text_scale`` is for a 720-line picture and scales with the frame height.

    ``color_by``: "class" gives every class one colour, "track" every track id its own (untracked
    boxes fall back to their class colour).
    """

    enable: bool = True
    color_by: Literal["class", "track"] = "class"
    border_width: int = Field(2, ge=1, le=20)
    text_scale: float = Field(0.6, gt=0, le=4)
    show_labels: bool = True
    show_confidence: bool = True
    show_track_ids: bool = True
    trail_length: int = Field(30, ge=0, le=1000)
    show_lines: bool = True
    show_rois: bool = True
    roi_alpha: float = Field(0.18, ge=0, le=1)
    show_fps: bool = True
    show_counts: bool = True
    show_dwell: bool = True  # seconds inside an ROI, after the label of each track that is in one


class TilerConfig(Section):
    """A ``rows`` x ``columns`` mosaic of ``width`` x ``height`` pixels; 0 rows/columns = a near-square grid.

    Source ``i`` goes to tile ``i`` (row-major) when ``i`` fits, else to the first free tile (sticky).
    Tiles keep the sources' aspect ratio (letterboxed); tiles without a frame are black.
    """

    enable: bool = True
    rows: int = Field(0, ge=0, le=32)
    columns: int = Field(0, ge=0, le=32)
    width: int = Field(1280, ge=16, le=7680)
    height: int = Field(720, ge=16, le=4320)
    show_names: bool = True
    text_scale: float = Field(0.5, gt=0, le=4)
