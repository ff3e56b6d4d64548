"""The synthetic traffic world: a fixed camera above a flat street, its conditions and the actors on it.

World coordinates are metres: x to the right, y up, z forward along the street; the ground is y = 0.
A ``Scene`` is one camera on one street under one lighting condition; its static backdrop (sky,
facades, road, markings, unlabelled street furniture) is painted once into ``Scene.background`` so
rendering a frame only draws the moving actors. Everything random takes a ``numpy.random.Generator``
so a seed fixes the world.

Example:
    >>> rng = np.random.default_rng(0)
    >>> scene = random_scene(rng, 640, 384)
    >>> car = make_actor(rng, 1, "car", x_m=scene.layout.lanes[0].x_m, z_m=30.0, heading_rad=0.0)
    >>> scene.background.shape, car.cls
    ((384, 640, 3), 'car')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

CLASSES = ("car", "bicycle", "person", "road_sign")
BODY_TYPES = ("sedan", "suv", "van", "truck", "bus")
TIMES_OF_DAY = ("day", "dusk", "night")
COLORS: dict[str, tuple[int, int, int]] = {  # BGR
    "white": (235, 235, 232),
    "black": (28, 28, 30),
    "silver": (190, 188, 184),
    "gray": (110, 110, 112),
    "red": (30, 30, 190),
    "blue": (160, 70, 30),
    "green": (50, 120, 40),
    "yellow": (30, 200, 230),
    "orange": (20, 110, 235),
    "brown": (40, 65, 110),
    "beige": (150, 190, 210),
}
# How often each colour is bought (white, black, silver and gray dominate real traffic).
CAR_COLOR_WEIGHTS = {"white": 6, "black": 5, "silver": 4, "gray": 4, "red": 2, "blue": 2, "green": 1, "yellow": 0.5}
CAR_COLOR_WEIGHTS |= {"orange": 0.4, "brown": 0.6, "beige": 0.6}
BUS_COLOR_WEIGHTS = {"white": 3, "yellow": 2, "blue": 2, "red": 2, "green": 1, "silver": 1, "orange": 1}
BODY_TYPE_WEIGHTS = {"sedan": 5, "suv": 4, "van": 2, "truck": 1.2, "bus": 0.8}
# Size ranges in metres (length, width, height), each a (low, high) pair, from typical vehicle and body specs.
SIZE_RANGES_M: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "sedan": ((4.1, 4.9), (1.70, 1.85), (1.38, 1.50)),
    "suv": ((4.3, 5.0), (1.80, 2.00), (1.65, 1.85)),
    "van": ((4.8, 6.0), (1.90, 2.10), (1.95, 2.50)),
    "truck": ((6.5, 10.0), (2.30, 2.50), (2.90, 3.60)),
    "bus": ((10.0, 13.0), (2.45, 2.55), (3.00, 3.30)),
    "person": ((0.24, 0.34), (0.45, 0.60), (1.50, 1.95)),
    "bicycle": ((1.60, 1.80), (0.50, 0.65), (1.60, 1.90)),  # with a rider; a parked bike is ~1.05 m
    "road_sign": ((0.05, 0.08), (0.55, 0.90), (2.10, 3.00)),  # pole top height; the plate is width_m wide
}


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at (x_m, height_m, 0) looking along +z, turned by ``yaw_rad`` and tilted down by ``pitch_rad``.

    The principal point is the image centre; pixels have square aspect.
    """

    width: int
    height: int
    focal_px: float
    height_m: float
    pitch_rad: float
    x_m: float = 0.0
    yaw_rad: float = 0.0

    @functools.cached_property
    def _world_to_camera(self) -> np.ndarray:
        """3x3 matrix M with camera = (world - position) @ M: yaw about y, then pitch down."""
        cy, sy = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        return np.array([[cy, -sp * sy, cp * sy], [0.0, -cp, -sp], [-sy, -sp * cy, cp * cy]])

    def to_camera(self, xyz: np.ndarray) -> np.ndarray:
        """World points (N,3) to camera coordinates (N,3): x right, y down, z along the optical axis."""
        d = np.asarray(xyz, np.float64).reshape(-1, 3) - (self.x_m, self.height_m, 0.0)
        return d @ self._world_to_camera

    def to_pixels(self, cam: np.ndarray) -> np.ndarray:
        """Camera coordinates (N,3) with positive depth to pixels (N,2)."""
        scale = self.focal_px / np.maximum(cam[:, 2:3], 1e-6)
        return cam[:, :2] * scale + (self.width * 0.5, self.height * 0.5)

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N,3) to pixels (N,2) and depth along the optical axis (N,); depth <= 0 is behind."""
        cam = self.to_camera(xyz)
        return self.to_pixels(cam), cam[:, 2]

    @property
    def horizon_v(self) -> float:
        """Image row of the horizon (may lie above the image for a steep camera)."""
        return self.height * 0.5 - self.focal_px * math.tan(self.pitch_rad)

    def ground_z_at_row(self, v: float) -> float:
        """Forward distance (m, yaw ignored) where image row ``v`` meets the ground; inf at or above the horizon."""
        angle = self.pitch_rad + math.atan((v - self.height * 0.5) / self.focal_px)
        return self.height_m / math.tan(angle) if angle > 1e-6 else math.inf


AMBIENT_BGR = {"day": (1.0, 1.0, 1.0), "dusk": (0.66, 0.70, 0.86), "night": (0.24, 0.24, 0.29)}


@functools.lru_cache(maxsize=4096)
def lit(color: tuple[int, int, int], shade: float, time_of_day: str) -> tuple[int, int, int]:
    """A surface colour under the scene's light: ``shade`` for the face's orientation, ambient for the hour."""
    amb = AMBIENT_BGR[time_of_day]
    return (
        min(255, int(color[0] * shade * amb[0])),
        min(255, int(color[1] * shade * amb[1])),
        min(255, int(color[2] * shade * amb[2])),
    )


@dataclass(frozen=True)
class Lane:
    """A traffic lane centred at ``x_m``; direction +1 moves away from the camera (z grows), -1 toward it."""

    x_m: float
    direction: int


@dataclass(frozen=True)
class Layout:
    """The street: lanes, road and sidewalk extents across (x), the ground range in view along z."""

    lanes: tuple[Lane, ...]
    road_x_m: tuple[float, float]
    sidewalks: tuple[tuple[float, float], ...]
    z_near_m: float
    z_far_m: float
    lane_width_m: float = 3.5
    crosswalk_z_m: float | None = None  # near edge of a zebra crossing, if the street has one


@dataclass(frozen=True)
class Conditions:
    """Light and image degradations: applied by ``render`` to every frame of a scene."""

    time_of_day: str  # "day" | "dusk" | "night"
    rain: float  # 0..1 streak density
    blur: float  # Gaussian sigma in pixels, 0 for none
    noise: float  # sensor noise std on the 0..255 scale
    jpeg_quality: int | None  # re-encode with this quality for compression artefacts, None for none


@dataclass
class Scene:
    """One camera on one street in one condition, with its static backdrop painted once."""

    camera: Camera
    layout: Layout
    conditions: Conditions
    background: np.ndarray  # HxWx3 uint8 BGR
    lights_xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # street-lamp heads (m), for glows
    seed: int = 0  # the appearance seed the backdrop was painted with
    props: list = field(default_factory=list)  # sketch.Prop: street furniture that can hide actors


@dataclass
class Actor:
    """A labelled object on the street; ``heading_rad`` 0 moves along +z, pi/2 along +x."""

    actor_id: int
    cls: str
    body_type: str | None
    color: str | None
    x_m: float
    z_m: float
    heading_rad: float
    length_m: float
    width_m: float
    height_m: float
    phase: float = 0.0  # walking / pedalling animation phase, radians
    style: int = 0  # appearance seed: clothing colours, sign shape, bicycle frame
    rider: bool = True  # bicycles only: False draws a parked bicycle
    lights_on: bool = False  # cars: headlights and taillights (always on at night)


@dataclass
class ActorBox:
    """The label of one visible actor in one rendered image (KITTI and MOTChallenge fields)."""

    actor_id: int
    cls: str
    body_type: str | None
    color: str | None
    xyxy: np.ndarray  # (4,) float32, clipped to the image
    truncated: float  # fraction of the full (unclipped) box outside the image, 0..1
    occluded: int  # KITTI: 0 fully visible, 1 partly, 2 largely occluded, 3 unknown
    visible_fraction: float  # visible pixels / in-image pixels if alone, 0..1


def random_conditions(rng: np.random.Generator, time_of_day: str | None = None) -> Conditions:
    """Draw lighting and degradations; most images are clean day shots, a minority are hard."""
    if time_of_day is None:
        time_of_day = str(rng.choice(TIMES_OF_DAY, p=[0.6, 0.2, 0.2]))
    if time_of_day not in TIMES_OF_DAY:
        raise ValueError(f"time_of_day must be one of {TIMES_OF_DAY}, got {time_of_day!r}")
    rain = float(rng.uniform(0.2, 1.0)) if rng.random() < 0.2 else 0.0
    blur = float(rng.uniform(0.5, 1.8)) if rng.random() < 0.25 else 0.0
    noise = float(rng.uniform(1.0, 5.0) * (2.5 if time_of_day == "night" else 1.0))
    jpeg_quality = int(rng.integers(30, 90)) if rng.random() < 0.3 else None
    return Conditions(time_of_day, rain, blur, noise, jpeg_quality)


def random_camera(rng: np.random.Generator, width: int, height: int, road_x_m: tuple[float, float]) -> Camera:
    """A traffic camera 5-12 m up, pitched 9-24 degrees down, above the road or its edge."""
    fov = math.radians(rng.uniform(48.0, 80.0))
    focal = width * 0.5 / math.tan(fov * 0.5)
    x_m = float(rng.uniform(road_x_m[0] - 2.0, road_x_m[1] + 2.0))
    return Camera(
        width=width,
        height=height,
        focal_px=focal,
        height_m=float(rng.uniform(5.0, 12.0)),
        pitch_rad=math.radians(rng.uniform(9.0, 24.0)),
        x_m=x_m,
        yaw_rad=math.radians(rng.uniform(-6.0, 6.0)) - math.atan(x_m / 70.0),  # looking down the street
    )


def random_layout(rng: np.random.Generator) -> tuple[tuple[Lane, ...], tuple[float, float], float]:
    """Lanes and road edges for a 2-4 lane street, two-way (right-hand traffic) or one-way."""
    n = int(rng.integers(2, 5))
    lane_w = float(rng.uniform(3.1, 3.7))
    left = -n * lane_w / 2
    centers = [left + lane_w * (i + 0.5) for i in range(n)]
    if rng.random() < 0.75:  # two-way: traffic away from the camera keeps right
        dirs = [-1 if i < n // 2 else 1 for i in range(n)] if n > 1 else [1]
    else:
        dirs = [int(rng.choice([-1, 1]))] * n
    lanes = tuple(Lane(round(c, 3), d) for c, d in zip(centers, dirs, strict=True))
    return lanes, (left, -left), lane_w


def random_scene(
    rng: np.random.Generator, width: int, height: int, time_of_day: str | None = None, *, paint: bool = True
) -> Scene:
    """A random street, camera and conditions, with the static backdrop painted (``paint=False`` skips it)."""
    from lanner.data.synth.backdrop import paint_background  # backdrop imports this module's types

    lanes, road, lane_w = random_layout(rng)
    walk_w = float(rng.uniform(2.5, 5.0))
    sidewalks = ((road[0] - walk_w, road[0]), (road[1], road[1] + walk_w))
    camera = random_camera(rng, width, height, road)
    conditions = random_conditions(rng, time_of_day)
    z_near = max(1.0, camera.ground_z_at_row(height - 1))
    z_far = float(np.clip(camera.focal_px * 0.3, 60.0, 220.0))
    crosswalk = float(rng.uniform(z_near + 3, z_near + 30)) if rng.random() < 0.45 else None
    layout = Layout(lanes, road, sidewalks, z_near, z_far, lane_w, crosswalk)
    seed = int(rng.integers(2**31))
    scene = Scene(camera, layout, conditions, np.zeros((height, width, 3), np.uint8), seed=seed)
    if paint:
        scene.background, scene.lights_xyz, scene.props = paint_background(scene, np.random.default_rng(seed))
    return scene


def make_actor(
    rng: np.random.Generator,
    actor_id: int,
    cls: str,
    x_m: float,
    z_m: float,
    heading_rad: float,
    body_type: str | None = None,
    color: str | None = None,
    *,
    rider: bool = True,
) -> Actor:
    """An actor with a size drawn from realistic ranges for its class (and body type, for cars).

    All its random draws come from one ``rng.random`` call (a dataset makes thousands of actors).
    """
    if cls not in CLASSES:
        raise ValueError(f"cls must be one of {CLASSES}, got {cls!r}")
    u = rng.random(9)
    if cls == "car":
        body_type = body_type or weighted_choice(u[0], BODY_TYPE_WEIGHTS)
        if body_type not in BODY_TYPES:
            raise ValueError(f"body_type must be one of {BODY_TYPES}, got {body_type!r}")
        if color is None:
            weights = BUS_COLOR_WEIGHTS if body_type == "bus" else CAR_COLOR_WEIGHTS
            color = "white" if body_type == "truck" and u[1] < 0.3 else weighted_choice(u[2], weights)
        key = body_type
    else:
        body_type = None
        key = cls
        if cls != "road_sign":  # a person's shirt, a bicycle's frame; a sign has no colour label
            color = color or _COLOR_NAMES[int(u[1] * len(_COLOR_NAMES))]
    (l_lo, l_hi), (w_lo, w_hi), (h_lo, h_hi) = SIZE_RANGES_M[key]
    height = h_lo + (h_hi - h_lo) * u[5] if cls != "bicycle" or rider else 0.95 + 0.15 * u[5]
    return Actor(
        actor_id=actor_id,
        cls=cls,
        body_type=body_type,
        color=color,
        x_m=float(x_m),
        z_m=float(z_m),
        heading_rad=float(heading_rad),
        length_m=float(l_lo + (l_hi - l_lo) * u[3]),
        width_m=float(w_lo + (w_hi - w_lo) * u[4]),
        height_m=float(height),
        phase=float(2 * math.pi * u[6]),
        style=int(u[7] * 2**31),
        rider=rider if cls == "bicycle" else True,
        lights_on=bool(u[8] < 0.15),
    )


_COLOR_NAMES = tuple(COLORS)


@functools.lru_cache(maxsize=8)
def _cumulative(weights: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(k for k, _ in weights)
    cum = np.cumsum([w for _, w in weights])
    return names, cum / cum[-1]


def weighted_choice(u: float, weights: dict[str, float]) -> str:
    """The name whose share of the cumulative weights holds ``u`` (uniform in 0..1)."""
    names, cum = _cumulative(tuple(weights.items()))
    return names[min(int(np.searchsorted(cum, u, side="right")), len(names) - 1)]
