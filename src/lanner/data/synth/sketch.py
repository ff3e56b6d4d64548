"""World-space drawing: collect 3D polygons, project them in one batch, cull back faces, rasterize with cv2.

A ``Sketch`` is the drawing list of one object (an actor, a building, a lamp post). Polygons are added
in painter's order with the same outward winding as ``BOX_FACES``, so a single
signed-area test after projection drops the faces turned away from the camera: for a convex box that
alone gives a correct picture without sorting faces. Projection of all points is one numpy call, which
is what keeps rendering fast; polygons crossing the camera's near plane are clipped first.

Example:
    >>> from lanner.data.synth.world import Camera
    >>> cam = Camera(640, 384, 500.0, 6.0, 0.25)
    >>> sk = Sketch()
    >>> sk.add(np.array([[1, 0, 20], [-1, 0, 20], [-1, 2, 20], [1, 2, 20]], float), (0, 0, 255))  # faces -z
    >>> len(sk.project(cam))
    1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lanner.data.synth.world import Camera

NEAR_M = 0.3
SHIFT = 3  # cv2 fixed-point bits: sub-pixel vertex positions keep small far objects from jittering
SCALE = 1 << SHIFT

# Corner order of ``box_corners``: bottom ring 0-3 then top ring 4-7, each (back-left, back-right, front-right,
# front-left) in the box's own frame (x right, z forward). Every face is wound the same way seen from outside.
BOX_FACES = {
    "top": (4, 7, 6, 5),
    "front": (3, 2, 6, 7),
    "back": (1, 0, 4, 5),
    "left": (0, 3, 7, 4),
    "right": (2, 1, 5, 6),
}


@dataclass
class Part:
    """One projected shape in cv2 fixed point (``points`` (K,2) int32, ``SHIFT`` bits): a filled 'poly' or an
    open 'line' ``width`` px thick; ``lo``/``hi`` are its float pixel extent (lines widened by half the width)."""

    kind: str
    points: np.ndarray
    color: tuple[int, int, int]
    in_mask: bool
    lo: np.ndarray
    hi: np.ndarray
    width: int = 1


@dataclass
class Prop:
    """A static, unlabelled object of a scene (tree, lamp post, bin) kept projected for redrawing over actors."""

    depth: float  # camera depth of its foot, for painter's order against actors
    xyxy: np.ndarray  # its pixel extent
    parts: list[Part]


@dataclass
class Sketch:
    """A drawing list in world coordinates; ``project`` turns it into pixel ``Part`` s."""

    polys: list[np.ndarray] = field(default_factory=list)
    meta: list[tuple[str, tuple[int, int, int], bool, bool, float]] = field(default_factory=list)
    sizes: np.ndarray | None = None  # set when ``polys`` is one pre-concatenated array (a cached template)

    def add(self, xyz: np.ndarray, color: tuple[int, int, int], *, mask: bool = True, cull: bool = True) -> None:
        """A filled planar polygon (K,3); ``cull`` drops it when its back faces the camera."""
        self.polys.append(xyz)
        self.meta.append(("poly", color, mask, cull, 0.0))

    def add_line(self, xyz: np.ndarray, color: tuple[int, int, int], width_m: float, *, mask: bool = True) -> None:
        """An open polyline (K,3) drawn ``width_m`` metres thick (at least one pixel)."""
        self.polys.append(xyz)
        self.meta.append(("line", color, mask, False, width_m))

    def add_box(self, corners: np.ndarray, colors: dict[str, tuple[int, int, int]], *, mask: bool = True) -> None:
        """The faces of a box from ``box_corners`` named in ``colors`` (e.g. no 'top' for a tall box seen below)."""
        for name, color in colors.items():
            self.add(corners[list(BOX_FACES[name])], color, mask=mask)

    def project(self, camera: Camera) -> list[Part]:
        """Project, clip and cull every shape; returns the pixel parts in drawing order."""
        return project_many(camera, [self])[0]


def project_many(camera: Camera, sketches: list[Sketch]) -> list[list[Part]]:
    """Project several sketches in one batch (one list of parts per sketch, in drawing order).

    Areas, extents and depths of all polygons come from one vectorized pass (``reduceat`` over the
    concatenated points); only polygons crossing the near plane take the slow per-polygon path.
    """
    chunks, size_chunks, owner, meta = [], [], [], []
    for k, sk in enumerate(sketches):
        if sk.sizes is None:
            chunks.extend(sk.polys)
            size_chunks.append(np.fromiter((len(p) for p in sk.polys), np.int64, len(sk.polys)))
        else:
            chunks.append(sk.polys[0])
            size_chunks.append(sk.sizes)
        owner.extend([k] * len(sk.meta))
        meta.extend(sk.meta)
    out: list[list[Part]] = [[] for _ in sketches]
    if not meta:
        return out
    sizes = np.concatenate(size_chunks)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cam = camera.to_camera(np.concatenate(chunks))
    px = camera.to_pixels(cam)
    nxt = np.arange(1, len(px) + 1)
    nxt[starts + sizes - 1] = starts
    area = np.add.reduceat(px[:, 0] * px[nxt, 1] - px[nxt, 0] * px[:, 1], starts)
    zmin = np.minimum.reduceat(cam[:, 2], starts)
    zmean = np.add.reduceat(cam[:, 2], starts) / sizes
    lo, hi = np.minimum.reduceat(px, starts, axis=0), np.maximum.reduceat(px, starts, axis=0)
    fixed = np.round(np.clip(px * SCALE, -(2**30), 2**30)).astype(np.int32)  # points behind: unused
    culled = np.fromiter((m[3] for m in meta), bool, len(meta)) & (area <= 0) & (zmin >= NEAR_M)
    for i in np.flatnonzero(~culled).tolist():  # back faces dropped without a Python step each
        kind, color, mask, cull, width_m = meta[i]
        s, e = starts[i], starts[i] + sizes[i]
        if zmin[i] < NEAR_M:
            part = _clipped_part(camera, cam[s:e], kind, color, mask, cull, width_m)
        elif kind == "poly":
            part = Part("poly", fixed[s:e], color, mask, lo[i], hi[i])
        else:
            width = max(1, round(camera.focal_px * width_m / max(zmean[i], NEAR_M)))
            part = Part("line", fixed[s:e], color, mask, lo[i] - width / 2, hi[i] + width / 2, width)
        if part is not None:
            out[owner[i]].append(part)
    return out


def _clipped_part(camera: Camera, pts_cam: np.ndarray, kind: str, color, mask: bool, cull: bool, width_m: float):
    """The slow path for a shape crossing the near plane: clip in camera space, then project."""
    if pts_cam[:, 2].max() < NEAR_M:
        return None
    px = camera.to_pixels(clip_near(pts_cam, closed=kind == "poly"))
    fixed = np.round(px * SCALE).astype(np.int32)
    if kind == "poly":
        if len(px) < 3 or (cull and signed_area(px) <= 0):
            return None
        return Part("poly", fixed, color, mask, px.min(axis=0), px.max(axis=0))
    width = max(1, round(camera.focal_px * width_m / max(float(pts_cam[:, 2].mean()), NEAR_M)))
    return Part("line", fixed, color, mask, px.min(axis=0) - width / 2, px.max(axis=0) + width / 2, width)


def signed_area(pts: np.ndarray) -> float:
    """Shoelace area in image coordinates: positive when a ``BOX_FACES``-wound face looks at the camera."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def clip_near(pts_cam: np.ndarray, closed: bool = True, near: float = NEAR_M) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (or polyline) in camera coordinates against the plane z = near."""
    out = []
    n = len(pts_cam)
    for i in range(n if closed else n - 1):
        a, b = pts_cam[i], pts_cam[(i + 1) % n]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    if not closed and pts_cam[-1][2] >= near:
        out.append(pts_cam[-1])
    return np.array(out).reshape(-1, 3)


def box_corners(
    x: float, z: float, heading: float, length: float, width: float, y0: float, y1: float, inset=(0.0, 0.0, 0.0)
) -> np.ndarray:
    """The 8 corners (8,3) of a box on the ground centred at (x, z), turned by ``heading`` (0 = along +z).

    ``inset`` = (front, back, side) metres pulls the top face in, giving a car cabin's sloped windows.
    """
    hl, hw = length / 2, width / 2
    front, back, side = inset
    local_x = np.array([-hw, hw, hw, -hw, -hw + side, hw - side, hw - side, -hw + side])
    local_z = np.array([-hl, -hl, hl, hl, -hl + back, -hl + back, hl - front, hl - front])
    c, s = np.cos(heading), np.sin(heading)
    out = np.empty((8, 3))
    out[:, 0] = x + c * local_x + s * local_z
    out[:, 1] = np.repeat([y0, y1], 4)
    out[:, 2] = z - s * local_x + c * local_z
    return out


def face_quad(corners: np.ndarray, face: str, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """A sub-rectangle of a side face (u across, v up, both 0..1): windows, lights, number plates."""
    a, b, c, d = (corners[i] for i in BOX_FACES[face])  # a-b bottom edge, d-c top edge (d above a)

    def at(u: float, v: float) -> np.ndarray:
        lo = a + (b - a) * u
        hi = d + (c - d) * u
        return lo + (hi - lo) * v

    return np.array([at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)])


def draw_parts(image: np.ndarray, parts: list[Part], ids: np.ndarray | None = None, value: int = 0) -> None:
    """Rasterize parts into ``image`` and, when given, the mask parts into the id buffer ``ids`` as ``value``."""
    for part in parts:
        if part.kind == "poly":
            cv2.fillPoly(image, [part.points], part.color, cv2.LINE_8, SHIFT)
            if ids is not None and part.in_mask:
                cv2.fillPoly(ids, [part.points], value, cv2.LINE_8, SHIFT)
        else:
            cv2.polylines(image, [part.points], False, part.color, part.width, cv2.LINE_8, SHIFT)
            if ids is not None and part.in_mask:
                cv2.polylines(ids, [part.points], False, value, part.width, cv2.LINE_8, SHIFT)


def parts_extent(parts: list[Part]) -> np.ndarray | None:
    """The unclipped xyxy extent of the mask parts, or None when none is left."""
    boxes = [(p.lo[0], p.lo[1], p.hi[0], p.hi[1]) for p in parts if p.in_mask]
    if not boxes:
        return None
    b = np.array(boxes)
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])
