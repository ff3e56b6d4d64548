"""Analytics config: counting lines, regions of interest (ROIs) with an overcrowding threshold, dwell time.

Mirrors nvdsanalytics' groups (``line-crossing-stream-N``, ``roi-filtering-stream-N``,
``overcrowding-stream-N``) in one typed section. Coordinates are pixels of the source image
(x right, y down), or, with ``reference_size: [W, H]`` (nvdsanalytics' ``config-width`` and
``config-height``), pixels of a W x H picture that each source scales to its own frame size. A
line's "in" direction is crossing from the LEFT of ``p1 -> p2`` to its RIGHT as seen on the screen,
the same rule as ``lanner.data.synth.lines.CountLine``.

Example:
    >>> cfg = AnalyticsConfig(lines=[LineConfig(name="road", p1=(0, 100), p2=(200, 100))],
    ...                       rois=[RoiConfig(name="lot", polygon=[(0, 0), (50, 0), (50, 50)], max_objects=3)])
    >>> cfg.lines[0].to_count_line().name
    'road'
    >>> AnalyticsConfig(lines=cfg.lines, reference_size=(400, 200)).scaled(800, 100).lines[0].p2
    (400.0, 50.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, field_validator, model_validator

from lanner.core.config import Section
from lanner.core.errors import ConfigError
from lanner.data.synth.lines import CountLine

Point = tuple[float, float]


class LineConfig(Section):
    """A counting segment ``p1 -> p2``; "in" = left-to-right of that direction on screen.

    ``sources`` limits the line to these source ids (empty: every source); ``class_ids`` limits what
    is counted (empty: every class). ``once_per_track`` counts a track's first crossing of the line
    only: a real detector's box edge can jitter across the line (in, out, in...) where the object
    itself crosses once; the ground-truth counter counts every crossing (off by default).
    """

    name: str
    p1: Point
    p2: Point
    sources: list[int] = []
    class_ids: list[int] = []
    once_per_track: bool = False

    @model_validator(mode="after")
    def _check(self) -> LineConfig:
        if self.p1 == self.p2:
            raise ConfigError(f"line {self.name!r} has p1 == p2 {self.p1}", where=f"analytics.lines.{self.name}",
                              fix="give two different end points")  # fmt: skip
        return self

    def to_count_line(self) -> CountLine:
        """The same segment as the ground-truth counter's ``CountLine`` (shared crossing math)."""
        return CountLine(self.name, (float(self.p1[0]), float(self.p1[1])), (float(self.p2[0]), float(self.p2[1])))


class RoiConfig(Section):
    """A polygon region: occupancy per frame, an ``overcrowding`` event when count > ``max_objects``.

    ``max_objects`` = None turns overcrowding off. ``dwell`` reports, when a track leaves (or the
    source ends), how long it stayed inside. An object is inside when its anchor (bottom centre of
    its box) is inside the polygon.
    """

    name: str
    polygon: list[Point]
    sources: list[int] = []
    class_ids: list[int] = []
    max_objects: int | None = None
    dwell: bool = True

    @field_validator("polygon")
    @classmethod
    def _three_points(cls, value: list[Point]) -> list[Point]:
        if len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(value)}")
        return value


class AnalyticsConfig(Section):
    """All analytics of a pipeline: ``lines`` and ``rois`` (names unique within each list).

    ``dwell_min_s`` drops dwell events shorter than this (a box flickering at the ROI edge).
    ``track_timeout_frames``: a track not seen for this many frames of its source has left.
    ``reference_size`` (width, height): the picture size the coordinates are given in; each source
    scales them to its frame size (``scaled``). None: the coordinates are source pixels.
    """

    lines: list[LineConfig] = []
    rois: list[RoiConfig] = []
    dwell_min_s: float = 0.0
    track_timeout_frames: int = Field(150, ge=1)
    reference_size: tuple[int, int] | None = None

    @field_validator("reference_size")
    @classmethod
    def _positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) <= 0:
            raise ValueError(f"reference_size {value} must be a positive [width, height]")
        return value

    def scaled(self, width: int, height: int) -> AnalyticsConfig:
        """This config with its coordinates in pixels of a ``width`` x ``height`` frame (itself without a
        ``reference_size``)."""
        if self.reference_size is None:
            return self
        sx, sy = width / self.reference_size[0], height / self.reference_size[1]

        def pt(p: Point) -> Point:
            return (float(p[0]) * sx, float(p[1]) * sy)

        lines = [line.model_copy(update={"p1": pt(line.p1), "p2": pt(line.p2)}) for line in self.lines]
        rois = [roi.model_copy(update={"polygon": [pt(p) for p in roi.polygon]}) for roi in self.rois]
        return self.model_copy(update={"lines": lines, "rois": rois, "reference_size": None})

    @model_validator(mode="after")
    def _unique(self) -> AnalyticsConfig:
        for kind, items in (("lines", self.lines), ("rois", self.rois)):
            names = [item.name for item in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(f"{kind} names repeat: {dupes}", where=f"analytics.{kind}",
                                  fix="give every entry its own name")  # fmt: skip
        return self

    def check_ids(self, num_sources: int | None = None, class_names: Sequence[str] | None = None) -> None:
        """``ConfigError`` when a line or ROI names a source or class id that does not exist.

        Why: such an entry never matches anything, so it would count 0 without a word. ``None`` (or no
        names) skips a bound that is not known: sources added later through ``control_port``, a model
        without labels.
        """
        classes = ", ".join(f"{i}={name}" for i, name in enumerate(class_names or ()))
        for kind, items in (("lines", self.lines), ("rois", self.rois)):
            for item in items:
                where = f"analytics.{kind}.{item.name}"
                _check_range(item.sources, num_sources, "source", f"{where}.sources",
                             "a source id is its position in 'sources', from 0")  # fmt: skip
                count = len(class_names) if class_names else None
                _check_range(
                    item.class_ids, count, "class", f"{where}.class_ids", f"the detector's classes are {classes}"
                )

    @property
    def enabled(self) -> bool:
        """True when there is anything to compute."""
        return bool(self.lines or self.rois)


def _check_range(ids: Sequence[int], count: int | None, what: str, where: str, fix: str) -> None:
    bad = [i for i in ids if i < 0 or (count is not None and i >= count)]
    if bad:
        plural = {"source": "sources", "class": "classes"}[what]
        have = f"there are {count} {plural} (ids 0..{count - 1})" if count else f"{what} ids start at 0"
        raise ConfigError(f"{what} id(s) {bad} do not exist: {have}", where=where, fix=fix)
