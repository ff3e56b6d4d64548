"""Drawing: the on-screen display (boxes, labels, track trails, lines and ROIs with counts, FPS) and the tiler."""

from lanner.core.drawing import PALETTE_BGR, color_for
from lanner.pipeline.draw.config import OsdConfig, TilerConfig
from lanner.pipeline.draw.osd import Osd
from lanner.pipeline.draw.tiler import Tiler, letterbox_into

__all__ = ["PALETTE_BGR", "Osd", "OsdConfig", "Tiler", "TilerConfig", "color_for", "letterbox_into"]
