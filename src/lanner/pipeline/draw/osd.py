"""On-screen display (nvdsosd analog): boxes, labels with scores, track ids and trails, count lines and
ROIs with their live counts, and the frame rate, drawn with OpenCV on a copy of the frame.

Example:
    >>> import numpy as np
    >>> from lanner.core.detections import Detections
    >>> from lanner.core.frame import Frame
    >>> osd = Osd(OsdConfig(show_fps=False), None, ("car",))
    >>> dets = Detections.from_arrays([[10, 10, 50, 40]], [0], [0.9], tracker_id=[3])
    >>> image = osd.draw(Frame(0, 0, 0, np.zeros((72, 128, 3), np.uint8), dets))
    >>> tuple(int(v) for v in image[25, 10]) == color_for(0)  # the box's left edge, in the class colour
    True
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from lanner.core.drawing import color_for, put_label
from lanner.core.frame import Frame
from lanner.pipeline.draw.config import OsdConfig

LINE_COLOR = (0, 215, 255)  # amber (BGR): count lines stand out from the class palette
ALERT_COLOR = (40, 40, 230)  # red (BGR): an overcrowded ROI
ROI_COLOR = (230, 190, 80)  # light blue (BGR)


class Osd:
    """Draws one frame's metadata; keeps per-source track trails and a frame-rate estimate.

    ``analytics`` (a ``lanner.pipeline.analytics.Analytics`` or None) supplies the lines, ROIs and
    their live counts; ``class_names`` names the class ids in labels. ``attributes`` maps a secondary
    classifier's name to its class names: an object's ``<name>_class_id`` (when >= 0) joins its label.
    """

    def __init__(
        self,
        config: OsdConfig,
        analytics: Any = None,
        class_names: Sequence[str] = (),
        attributes: dict[str, Sequence[str]] | None = None,
    ) -> None:
        self.config = config
        self.analytics = analytics
        self.class_names = tuple(class_names)
        self.attributes = {name: tuple(labels) for name, labels in (attributes or {}).items()}
        self._trails: dict[int, dict[int, collections.deque]] = {}
        self._last_seen: dict[int, dict[int, int]] = {}
        self._fps: dict[int, tuple[float, float]] = {}  # source -> (last wall time, smoothed fps)

    def draw(self, frame: Frame, fps: float | None = None) -> np.ndarray:
        """A drawn copy of ``frame.image``; ``fps`` overrides the measured rate in the overlay."""
        image = np.array(frame.image, copy=True)
        cfg = self.config
        measured = self._tick(frame.source_id)
        if not cfg.enable:
            return image
        scale = cfg.text_scale * image.shape[0] / 720.0
        counts = self.analytics.counts().get(frame.source_id, {}) if self.analytics is not None else {}
        rois = cfg.show_rois and self.analytics is not None
        if rois:
            self._draw_rois(image, frame.source_id, counts.get("rois", {}), scale, labels=False)
        if cfg.trail_length:
            self._draw_trails(image, frame)
        self._draw_boxes(image, frame, scale)
        if rois:  # ROI names and counts on top of the boxes, so they stay readable in a crowd
            self._draw_rois(image, frame.source_id, counts.get("rois", {}), scale, labels=True)
        if cfg.show_lines and self.analytics is not None:
            self._draw_lines(image, frame.source_id, counts.get("lines", {}), scale)
        if cfg.show_fps:
            rate = fps if fps is not None else measured
            text = f"{rate:.1f} FPS" if rate else "-- FPS"
            put_label(image, text, (image.shape[1], 0), (32, 32, 32), scale, above=False)
        return image

    def remove_source(self, source_id: int) -> None:
        """Forget a removed source's trails and frame rate."""
        self._trails.pop(source_id, None)
        self._last_seen.pop(source_id, None)
        self._fps.pop(source_id, None)

    def _tick(self, source_id: int) -> float:
        """Smoothed draw rate of a source (exponential moving average of 1 / interval)."""
        now = time.monotonic()
        last, rate = self._fps.get(source_id, (None, 0.0))
        if last is not None and now > last:
            inst = 1.0 / (now - last)
            rate = inst if rate == 0.0 else 0.9 * rate + 0.1 * inst
        self._fps[source_id] = (now, rate)
        return rate

    def _color(self, class_id: int, track_id: int | None) -> tuple[int, int, int]:
        if self.config.color_by == "track" and track_id is not None:
            return color_for(track_id)
        return color_for(class_id)

    def _draw_boxes(self, image: np.ndarray, frame: Frame, scale: float) -> None:
        cfg, dets = self.config, frame.detections
        thickness = max(1, round(cfg.border_width * image.shape[0] / 720.0))
        dwell = self._dwell(frame.source_id)
        for i in range(len(dets)):
            x1, y1, x2, y2 = (round(float(v)) for v in dets.xyxy[i])
            k = int(dets.class_id[i])
            tid = int(dets.tracker_id[i]) if dets.tracker_id is not None else None
            color = self._color(k, tid)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
            text = self._label_text(k, float(dets.confidence[i]), tid, self._attribute_text(dets, i))
            if tid in dwell and dwell[tid] >= 1.0:
                text = f"{text} {dwell[tid]:.0f}s".strip()
            if text:
                put_label(image, text, (x1 - (thickness - 1) // 2, y1 - thickness // 2), color, scale)

    def _dwell(self, source_id: int) -> dict[int, float]:
        """Track id -> seconds inside an ROI so far (the longest, if in several), when dwell is shown."""
        if not self.config.show_dwell or self.analytics is None:
            return {}
        times: dict[int, float] = {}
        for roi in self.analytics.config.rois:
            for tid, seconds in self.analytics.dwelling(source_id, roi.name).items():
                times[tid] = max(seconds, times.get(tid, 0.0))
        return times

    def _attribute_text(self, dets: Any, row: int) -> str:
        """Secondary classifier results of one object, e.g. ``suv`` (unclassified ones are skipped)."""
        words = []
        for name, labels in self.attributes.items():
            ids = dets.data.get(f"{name}_class_id")
            k = int(ids[row]) if ids is not None else -1
            if 0 <= k < len(labels):
                words.append(labels[k])
        return " ".join(words)

    def _label_text(self, class_id: int, confidence: float, track_id: int | None, attributes: str = "") -> str:
        cfg, parts = self.config, []
        if cfg.show_labels:
            names = self.class_names
            parts.append(names[class_id] if 0 <= class_id < len(names) else f"class{class_id}")
            if attributes:
                parts.append(attributes)
        if cfg.show_confidence:
            parts.append(f"{confidence:.2f}")
        if cfg.show_track_ids and track_id is not None:
            parts.append(f"#{track_id}")
        return " ".join(parts)

    def _draw_trails(self, image: np.ndarray, frame: Frame) -> None:
        dets, sid = frame.detections, frame.source_id
        if dets.tracker_id is None:
            return
        trails = self._trails.setdefault(sid, {})
        seen = self._last_seen.setdefault(sid, {})
        for i, tid in enumerate(dets.tracker_id.tolist()):
            x1, _, x2, y2 = dets.xyxy[i]
            trails.setdefault(tid, collections.deque(maxlen=self.config.trail_length)).append(
                (round(float(x1 + x2) / 2), round(float(y2)))
            )
            seen[tid] = frame.frame_idx
            points = np.array(trails[tid], np.int32)
            if len(points) < 2:
                continue
            color = self._color(int(dets.class_id[i]), tid)
            half = len(points) // 2  # the older half thinner: the trail tapers off into the past
            cv2.polylines(image, [points[: half + 1]], False, color, 1, cv2.LINE_AA)
            cv2.polylines(image, [points[half:]], False, color, 2, cv2.LINE_AA)
        stale = [tid for tid, f in seen.items() if f < frame.frame_idx - 2 * self.config.trail_length]
        for tid in stale:
            del seen[tid], trails[tid]

    def _draw_lines(self, image: np.ndarray, source_id: int, counts: dict, scale: float) -> None:
        thickness = max(2, round(3 * image.shape[0] / 720.0))
        for line in self.analytics.config.scaled(image.shape[1], image.shape[0]).lines:
            if line.sources and source_id not in line.sources:
                continue
            p1, p2 = np.asarray(line.p1, np.float64), np.asarray(line.p2, np.float64)
            cv2.line(image, _pt(p1), _pt(p2), LINE_COLOR, thickness, cv2.LINE_AA)
            d = p2 - p1
            normal = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)  # points to the "in" side
            mid = (p1 + p2) / 2
            length = 28.0 * image.shape[0] / 720.0
            cv2.arrowedLine(image, _pt(mid), _pt(mid + normal * length), LINE_COLOR, thickness, cv2.LINE_AA,
                            tipLength=0.35)  # fmt: skip
            c = counts.get(line.name, {"in": 0, "out": 0})
            text = f"{line.name}  in {c['in']}  out {c['out']}" if self.config.show_counts else line.name
            anchor = p1 if p1[0] <= p2[0] else p2
            put_label(image, text, _pt(anchor - normal * 6), LINE_COLOR, scale)

    def _draw_rois(self, image: np.ndarray, source_id: int, state: dict, scale: float, labels: bool) -> None:
        for roi in self.analytics.config.scaled(image.shape[1], image.shape[0]).rois:
            if roi.sources and source_id not in roi.sources:
                continue
            st = state.get(roi.name, {"occupancy": 0, "overcrowded": False})
            color = ALERT_COLOR if st["overcrowded"] else ROI_COLOR
            poly = np.round(np.asarray(roi.polygon, np.float64)).astype(np.int32)
            if not labels:
                _blend_polygon(image, poly, color, self.config.roi_alpha)
                cv2.polylines(image, [poly], True, color, max(1, round(2 * image.shape[0] / 720.0)), cv2.LINE_AA)
                continue
            text = roi.name
            if self.config.show_counts:
                text += f"  {st['occupancy']}"
                if roi.max_objects is not None:
                    text += f"/{roi.max_objects}" + ("  FULL" if st["overcrowded"] else "")
            top = poly[np.argmin(poly[:, 1])]
            put_label(image, text, (int(top[0]), int(top[1])), color, scale)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _blend_polygon(image: np.ndarray, poly: np.ndarray, color: tuple[int, int, int], alpha: float) -> None:
    """Fill ``poly`` with ``color`` at opacity ``alpha``, touching only its bounding box (OpenCV ops: ~1 ms at 720p)."""
    if alpha <= 0:
        return
    h, w = image.shape[:2]
    x0, y0 = np.clip(poly.min(axis=0), 0, [w, h])
    x1, y1 = np.clip(poly.max(axis=0) + 1, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    region = image[y0:y1, x0:x1]
    mask = np.zeros(region.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly - [x0, y0]], 255)
    tinted = cv2.add(cv2.convertScaleAbs(region, alpha=1.0 - alpha), (*(c * alpha for c in color), 0.0))
    region[...] = cv2.copyTo(tinted, mask, region.copy())
