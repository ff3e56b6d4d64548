"""How each actor class looks: world-space drawing lists for cars, people, bicycles and road signs.

Cars are stacks of shaded boxes (a sedan is a body plus a sloped cabin, a truck a cab plus a cargo box,
a bus one long box with a window band) with wheels, lights and glass. People and riders are flat
"billboards" turned to the camera, with legs and arms swinging with ``Actor.phase``. Only the labelled
part of an object goes into its mask: a road sign's plate, not its pole; a car's body, not its shadow.

Example:
    >>> from lanner.data.synth.world import make_actor
    >>> car = make_actor(np.random.default_rng(0), 1, "car", 0.0, 20.0, 0.0, body_type="bus")
    >>> sketch, lights = sketch_actor(car, "night")
    >>> len(lights)
    4
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lanner.data.synth.sketch import Sketch, box_corners, face_quad
from lanner.data.synth.world import COLORS, SIZE_RANGES_M, Actor, lit

Color = tuple[int, int, int]
GLASS = (78, 62, 50)
TYRE = (28, 28, 30)
SKIN = ((150, 180, 225), (110, 150, 200), (70, 105, 150), (50, 70, 100))
PANTS = ((90, 50, 30), (35, 35, 38), (100, 100, 100), (120, 150, 170), (60, 40, 30))
HAIR = ((25, 30, 35), (30, 50, 80), (60, 90, 140), (150, 150, 150))


@dataclass(frozen=True)
class Light:
    """A lamp on an actor: world position, the direction it shines (for visibility), colour and glow radius."""

    xyz: np.ndarray
    normal: np.ndarray
    color: Color
    radius_m: float


@dataclass(frozen=True)
class CarShape:
    """Proportions of a body type: belt line and cabin as fractions of height and length."""

    belt: float  # top of the body box / height
    cabin_len: float  # cabin length / length
    cabin_shift: float  # cabin centre offset / length (negative: toward the back)
    inset: tuple[float, float, float]  # cabin top inset front, back, side (m)


CAR_SHAPES = {
    "sedan": CarShape(0.52, 0.48, -0.04, (0.55, 0.35, 0.12)),
    "suv": CarShape(0.55, 0.62, -0.08, (0.35, 0.12, 0.10)),
    "van": CarShape(0.50, 0.80, -0.08, (0.45, 0.02, 0.08)),
}


def sketch_actor(actor: Actor, time_of_day: str) -> tuple[Sketch, list[Light]]:
    """The drawing list and lamps of one actor, lit for ``time_of_day``."""
    if actor.cls == "car":
        return _car(actor, time_of_day)
    sk = Sketch()
    rng = np.random.default_rng(actor.style)
    if actor.cls == "person":
        _person(sk, actor, rng, time_of_day, hip_y=None)
    elif actor.cls == "bicycle":
        _bicycle(sk, actor, rng, time_of_day)
    else:
        _sign(sk, actor, rng, time_of_day)
    return sk, []


def _shades(color: Color, tod: str) -> dict[str, Color]:
    return {
        "top": lit(color, 1.0, tod),
        "front": lit(color, 0.82, tod),
        "back": lit(color, 0.78, tod),
        "left": lit(color, 0.66, tod),
        "right": lit(color, 0.70, tod),
    }


def _car(a: Actor, tod: str) -> tuple[Sketch, list[Light]]:
    """A car from its cached template (body type, colour, light) stretched to the actor's size and placed.

    Building the boxes, windows and wheels costs far more than moving them, and a car looks the same
    in every frame of a video; the template is made at the body type's mean size, so stretching it
    changes wheel roundness by a few percent at most.
    """
    on = a.lights_on or tod != "day"
    body_type = a.body_type or "sedan"
    cab_far = body_type != "truck" or math.cos(a.heading_rad) > 0  # painter's order of a truck's two boxes
    cargo = a.style % len(CARGO_COLORS) if body_type == "truck" else 0
    key = (body_type, a.color or "gray", tod, on, cargo, cab_far)
    points, sizes, meta, lights = _car_template(*key)
    (l_lo, l_hi), (w_lo, w_hi), (h_lo, h_hi) = SIZE_RANGES_M[body_type]
    scale = np.array([a.width_m * 2 / (w_lo + w_hi), a.height_m * 2 / (h_lo + h_hi), a.length_m * 2 / (l_lo + l_hi)])
    c, s = math.cos(a.heading_rad), math.sin(a.heading_rad)
    rot = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # row vectors: local (x, y, z) -> world
    offset = np.array([a.x_m, 0.0, a.z_m])
    sk = Sketch(polys=[(points * scale) @ rot + offset], meta=list(meta), sizes=sizes)
    placed = [Light((lt.xyz * scale) @ rot + offset, lt.normal @ rot, lt.color, lt.radius_m) for lt in lights]
    return sk, placed


CARGO_COLORS = ("white", "silver", "gray", "blue", "red", "beige")


@functools.lru_cache(maxsize=4096)
def _car_template(body_type: str, color: str, tod: str, lights_on: bool, cargo: int, cab_far: bool):
    """Concatenated local-frame points, polygon sizes, draw metadata and lamps of a mean-sized car at the origin."""
    (l_lo, l_hi), (w_lo, w_hi), (h_lo, h_hi) = SIZE_RANGES_M[body_type]
    mean = {"length_m": (l_lo + l_hi) / 2, "width_m": (w_lo + w_hi) / 2, "height_m": (h_lo + h_hi) / 2}
    a = Actor(0, "car", body_type, color, 0.0, 0.0, 0.0, **mean, style=cargo, lights_on=lights_on)
    sk = Sketch()
    rgb = COLORS.get(color, COLORS["gray"])
    length, width, height = a.length_m, a.width_m, a.height_m
    shadow = box_corners(0.0, 0.0, 0.0, length + 0.4, width + 0.3, 0.0, 0.0)
    sk.add(shadow[[4, 7, 6, 5]], lit((22, 22, 24), 1.0, tod), mask=False, cull=False)
    clear = 0.22 if body_type in ("sedan", "suv", "van") else 0.35
    chassis = box_corners(0.0, 0.0, 0.0, length - 0.5, width - 0.15, 0.05, clear + 0.05)
    sk.add_box(chassis, {k: lit(TYRE, 1.0, tod) for k in ("front", "back", "left", "right")})
    if body_type == "bus":
        body = _bus(sk, a, rgb, clear, tod)
    elif body_type == "truck":
        body = _truck(sk, a, rgb, clear, tod, cab_far)
    else:
        shape = CAR_SHAPES[body_type]
        body = box_corners(0.0, 0.0, 0.0, length, width, clear, height * shape.belt)
        sk.add_box(body, _shades(rgb, tod))
        cab_z = shape.cabin_shift * length
        cab = box_corners(
            0.0, cab_z, 0.0, length * shape.cabin_len, width * 0.96, height * shape.belt, height, shape.inset
        )
        _glass_box(sk, cab, rgb, tod)
    _wheels(sk, a, tod)
    lights = _car_lights(sk, a, body, tod)
    sizes = np.fromiter((len(p) for p in sk.polys), np.int64, len(sk.polys))
    return np.concatenate(sk.polys), sizes, tuple(sk.meta), tuple(lights)


def _glass_box(sk: Sketch, corners: np.ndarray, color: Color, tod: str) -> None:
    """A cabin: body-coloured roof and pillars around glass on every side."""
    shades = _shades(color, tod)
    sk.add_box(corners, shades)
    for face in ("front", "back", "left", "right"):
        sk.add(face_quad(corners, face, 0.07, 0.93, 0.0, 0.86), lit(GLASS, 0.9 if face == "front" else 1.0, tod))


def _bus(sk: Sketch, a: Actor, color: Color, clear: float, tod: str) -> np.ndarray:
    body = box_corners(a.x_m, a.z_m, a.heading_rad, a.length_m, a.width_m, clear, a.height_m)
    sk.add_box(body, _shades(color, tod))
    glass = lit(GLASS, 1.0, tod)
    n = max(3, int(a.length_m / 2.2))
    for face in ("left", "right"):
        for i in range(n):
            u0 = 0.03 + 0.94 * i / n
            sk.add(face_quad(body, face, u0 + 0.01, u0 + 0.94 / n - 0.01, 0.50, 0.88), glass)
    sk.add(face_quad(body, "front", 0.05, 0.95, 0.45, 0.92), glass)
    sk.add(face_quad(body, "back", 0.15, 0.85, 0.6, 0.9), glass)
    roof_unit = box_corners(a.x_m, a.z_m, a.heading_rad, 2.6, 1.5, a.height_m, a.height_m + 0.3)
    sk.add_box(roof_unit, _shades((170, 170, 168), tod))  # air conditioning: what a camera above sees
    return body


def _truck(sk: Sketch, a: Actor, color: Color, clear: float, tod: str, cab_far: bool) -> np.ndarray:
    s, c = math.sin(a.heading_rad), math.cos(a.heading_rad)
    cab_len = 2.2
    off = a.length_m / 2 - cab_len / 2
    cab = box_corners(a.x_m + s * off, a.z_m + c * off, a.heading_rad, cab_len, a.width_m, clear, a.height_m * 0.78)
    cargo_len = a.length_m - cab_len - 0.25
    off = -a.length_m / 2 + cargo_len / 2
    cargo = box_corners(a.x_m + s * off, a.z_m + c * off, a.heading_rad, cargo_len, a.width_m, clear + 0.5, a.height_m)
    cargo_color = COLORS[CARGO_COLORS[a.style % len(CARGO_COLORS)]]
    glass = lit(GLASS, 1.0, tod)
    # Painter's order between the two boxes: the cab is the far one when the truck drives away.
    order = [(cab, color, True), (cargo, cargo_color, False)]
    for corners, col, is_cab in order if cab_far else order[::-1]:
        sk.add_box(corners, _shades(col, tod))
        if is_cab:
            sk.add(face_quad(corners, "front", 0.05, 0.95, 0.55, 0.92), glass)
            sk.add(face_quad(corners, "left", 0.45, 0.92, 0.55, 0.9), glass)
            sk.add(face_quad(corners, "right", 0.08, 0.55, 0.55, 0.9), glass)
    return cab


def _wheels(sk: Sketch, a: Actor, tod: str) -> None:
    """Dark discs on both flanks (the far one is culled) at the axles."""
    r = 0.42 if a.body_type in ("truck", "bus") else 0.32
    frame = box_corners(a.x_m, a.z_m, a.heading_rad, a.length_m, a.width_m + 0.02, 0.0, 1.0)
    t = np.linspace(0, 2 * math.pi, 10, endpoint=False)
    axle = 0.5 - min(0.2, 1.1 / a.length_m)
    color = lit(TYRE, 1.0, tod)
    for face in ("left", "right"):
        a0, b0, _, d0 = (frame[i] for i in {"left": (0, 3, 7, 4), "right": (2, 1, 5, 6)}[face])
        along, up = (b0 - a0) / a.length_m, d0 - a0
        for u in (0.5 - axle, 0.5 + axle):
            centre = a0 + (b0 - a0) * u + up * r
            pts = centre + np.outer(np.cos(t) * r, along) + np.outer(np.sin(t) * r, up)
            sk.add(pts, color)


def _car_lights(sk: Sketch, a: Actor, body: np.ndarray, tod: str) -> list[Light]:
    on = a.lights_on or tod != "day"
    head = (235, 250, 255) if on else lit((190, 205, 210), 1.0, tod)
    tail = (70, 70, 255) if on else lit((40, 40, 150), 1.0, tod)
    fwd = np.array([math.sin(a.heading_rad), 0.0, math.cos(a.heading_rad)])
    lights = []
    for face, color, sign in (("front", head, 1.0), ("back", tail, -1.0)):
        for u0, u1 in ((0.06, 0.22), (0.78, 0.94)):
            quad = face_quad(body, face, u0, u1, 0.55, 0.78)
            sk.add(quad, color)
            if on:
                lights.append(Light(quad.mean(axis=0), fwd * sign, color, 0.9 if face == "front" else 0.45))
    return lights


def _billboard(a: Actor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (right, up, forward) for a figure drawn flat toward a camera near x = 0, z = 0."""
    view = np.array([a.x_m, 0.0, a.z_m]) / max(1e-6, math.hypot(a.x_m, a.z_m))
    right = np.array([view[2], 0.0, -view[0]])
    forward = np.array([math.sin(a.heading_rad), 0.0, math.cos(a.heading_rad)])
    return right, np.array([0.0, 1.0, 0.0]), forward


_RING8 = np.stack([np.cos(np.arange(8) * math.pi / 4), np.sin(np.arange(8) * math.pi / 4)], axis=1)


def _person(sk: Sketch, a: Actor, rng: np.random.Generator, tod: str, hip_y: float | None) -> None:
    """Legs, torso, arms and head; ``hip_y`` set seats the figure on a bicycle saddle.

    The figure is laid out in a local (across, up, along-heading) frame as one array and moved into the
    world with one matrix product: a person is drawn every frame of a video, so this path stays lean.
    """
    H = a.height_m if hip_y is None else a.height_m * 0.98
    shirt = COLORS.get(a.color or "", COLORS["blue"]) if a.cls == "person" else COLORS[str(rng.choice(list(COLORS)))]
    pants, skin, hair = (p[int(rng.integers(len(p)))] for p in (PANTS, SKIN, HAIR))
    sw = max(0.8 * a.width_m, 0.3) / 2
    sh, r = 0.82 * H, 0.065 * H
    if hip_y is None:  # walking: feet and hands swing along the heading
        hip, lean, knee_t, hand_y = 0.5 * H, 0.0, 0.04 * H, 0.45 * H
        stride = 0.16 * H * math.sin(a.phase)
        feet = [(-0.05 * H, 0.0, stride), (0.05 * H, 0.0, -stride)]
        hands_t = (0.12 * H * math.sin(a.phase), -0.12 * H * math.sin(a.phase))
    else:  # pedalling: feet turn round the crank, hands on the bar
        hip, lean, knee_t, hand_y = hip_y, 0.22, 0.18, 0.45 * H + 0.1
        feet = [(0.0, 0.3 + 0.17 * math.sin(a.phase + k), 0.05 + 0.17 * math.cos(a.phase + k)) for k in (0, math.pi)]
        hands_t = (0.35, 0.35)
    pts = []
    for side, foot in zip((-0.05 * H, 0.05 * H), feet, strict=True):
        top = (side, hip, 0.0)
        pts += [top, ((side + foot[0]) / 2, (hip + foot[1]) / 2, foot[2] / 2 + knee_t), foot]
    pts += [(-sw * 0.8, hip, 0.0), (sw * 0.8, hip, 0.0), (sw, sh, lean), (-sw, sh, lean)]
    for side, t in zip((-1, 1), hands_t, strict=True):
        pts += [(side * sw, sh - 0.03, lean), (side * sw * 1.05, hand_y, t)]
    head = np.column_stack([_RING8[:, 0] * r, H - r + _RING8[:, 1] * r, np.full(8, lean)])
    local = np.concatenate([np.array(pts), head, head[:5] + (0.0, 0.003 * H, 0.0)])
    right, up, fwd = _billboard(a)
    world = local @ np.stack([right, up, fwd]) + np.array([a.x_m, 0.0, a.z_m])
    leg_w, arm_w = 0.11 * H / 1.75, 0.07 * H / 1.75
    sk.add_line(world[0:3], lit(pants, 0.9, tod), leg_w)
    sk.add_line(world[3:6], lit(pants, 0.9, tod), leg_w)
    sk.add(world[6:10], lit(shirt, 0.95, tod), cull=False)
    sk.add_line(world[10:12], lit(shirt, 0.8, tod), arm_w)
    sk.add_line(world[12:14], lit(shirt, 0.8, tod), arm_w)
    sk.add(world[14:22], lit(skin, 1.0, tod), cull=False)
    sk.add(world[22:27], lit(hair, 1.0, tod), cull=False)


def _bicycle(sk: Sketch, a: Actor, rng: np.random.Generator, tod: str) -> None:
    """Two wheels, a diamond frame and handlebar; a rider on top unless parked."""
    fwd = np.array([math.sin(a.heading_rad), 0.0, math.cos(a.heading_rad)])
    up = np.array([0.0, 1.0, 0.0])
    base = np.array([a.x_m, 0.0, a.z_m])
    r, half = 0.34, a.length_m * 0.31
    t = np.linspace(0, 2 * math.pi, 13)
    tyre = lit(TYRE, 1.0, tod)
    for k in (-1, 1):
        hub = base + fwd * k * half + up * r
        sk.add_line(hub + np.outer(np.cos(t) * r, fwd) + np.outer(np.sin(t) * r, up), tyre, 0.05)
    frame_color = lit(COLORS.get(a.color or "", COLORS["black"]), 1.0, tod)
    rear, front = base - fwd * half + up * r, base + fwd * half + up * r
    crank, seat, head = base + up * 0.3 + fwd * 0.05, base + up * 0.92 - fwd * 0.15, base + up * 0.9 + fwd * 0.38
    sk.add_line(np.array([rear, seat, crank, rear]), frame_color, 0.035)
    sk.add_line(np.array([seat, head, front]), frame_color, 0.035)
    sk.add_line(np.array([crank, head, head + up * 0.12 - fwd * 0.05]), frame_color, 0.035)
    if a.rider:
        _person(sk, a, rng, tod, hip_y=0.97)


SIGN_SHAPES = (
    ("circle", (40, 40, 200), (245, 245, 245)),  # prohibition / speed limit
    ("triangle", (40, 40, 200), (245, 245, 245)),  # warning
    ("square", (170, 90, 20), (245, 245, 245)),  # information
    ("octagon", (40, 40, 200), (40, 40, 200)),  # stop
    ("diamond", (20, 190, 240), (20, 190, 240)),  # priority / yellow warning
    ("circle", (170, 90, 20), (170, 90, 20)),  # mandatory (blue)
)


def _sign(sk: Sketch, a: Actor, rng: np.random.Generator, tod: str) -> None:
    """A pole (unlabelled) and a plate facing ``heading_rad``: rim, inner field and a dark symbol."""
    size = a.width_m
    centre = np.array([a.x_m, a.height_m - size / 2, a.z_m])
    sk.add_line(np.array([[a.x_m, 0.0, a.z_m], centre]), lit((120, 120, 125), 1.0, tod), 0.07, mask=False)
    shape, rim, inner = SIGN_SHAPES[int(rng.integers(len(SIGN_SHAPES)))]
    n = {"circle": 12, "triangle": 3, "square": 4, "octagon": 8, "diamond": 4}[shape]
    start = {"triangle": math.pi / 2, "square": math.pi / 4, "octagon": math.pi / 8}.get(shape, 0.0)
    t = start + np.linspace(0, 2 * math.pi, n, endpoint=False)
    across = np.array([math.cos(a.heading_rad), 0.0, -math.sin(a.heading_rad)])
    up = np.array([0.0, 1.0, 0.0])
    normal = np.array([math.sin(a.heading_rad), 0.0, math.cos(a.heading_rad)]) * 0.01

    def ring(scale: float, push: float) -> np.ndarray:
        return (
            centre
            + normal * push
            + np.outer(np.cos(t) * size / 2 * scale, across)
            + np.outer(np.sin(t) * size / 2 * scale, up)
        )

    sk.add(ring(1.0, 0.0), lit(rim, 1.0, tod))
    sk.add(ring(1.0, -1.0)[::-1], lit((150, 150, 155), 0.8, tod))
    if inner != rim:
        sk.add(ring(0.74, 1.0), lit(inner, 1.0, tod))
    glyph = (
        centre
        + normal * 2
        + np.outer([-1, 1, 1, -1], across * size * 0.14)
        + np.outer([-1, -1, 1, 1], up * size * 0.16)
    )
    sk.add(glyph, lit((30, 30, 30) if inner != rim else (245, 245, 245), 1.0, tod))
