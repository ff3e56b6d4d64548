"""Render a scene's actors over its backdrop and label what is visible; place plausible actors.

``render`` is the painter's algorithm: actors sorted far to near are drawn over the cached backdrop
(with the scene's street furniture drawn again where it stands in front of an actor) while an id
buffer records which actor owns each pixel, so occlusion is measured, not guessed:
``visible_fraction`` = pixels still owned at the end / pixels the actor covered when drawn (MOTChallenge
visibility), and KITTI's ``occluded`` level follows from it. Boxes are the full (amodal) extent of the
actor clipped to the image; ``truncated`` is the share of the unclipped box outside it (KITTI).

Example:
    >>> from lanner.data.synth.world import random_scene
    >>> rng = np.random.default_rng(0)
    >>> scene = random_scene(rng, 320, 192)
    >>> image, boxes = render(scene, random_actors(scene, rng), rng)
    >>> image.shape, all(b.visible_fraction > 0 for b in boxes)
    ((192, 320, 3), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lanner.data.synth.effects import add_glow, apply_conditions
from lanner.data.synth.figures import Light, sketch_actor
from lanner.data.synth.sketch import Part, Prop, draw_parts, parts_extent, project_many
from lanner.data.synth.world import Actor, ActorBox, Camera, Layout, Scene, make_actor, weighted_choice

VISIBLE_FULLY = 0.9  # visible_fraction at or above which KITTI 'occluded' is 0
VISIBLE_PARTLY = 0.4  # ... at or above which it is 1 (partly); below it is 2 (largely)
CLASS_WEIGHTS = {"car": 0.5, "person": 0.25, "bicycle": 0.12, "road_sign": 0.13}


@dataclass
class _Drawn:
    index: int  # id-buffer value
    actor: Actor
    full_xyxy: np.ndarray
    roi: tuple[int, int, int, int]
    alone_px: int
    lights: list[Light]


def render(
    scene: Scene, actors: Sequence[Actor], rng: np.random.Generator | None = None, min_visible_px: int = 12
) -> tuple[np.ndarray, list[ActorBox]]:
    """Draw ``actors`` into a copy of the backdrop, apply the scene's conditions, and label visible actors.

    Deterministic for a given ``rng`` state (default: one seeded from ``scene.seed``).
    """
    cam, tod = scene.camera, scene.conditions.time_of_day
    rng = rng if rng is not None else np.random.default_rng(scene.seed)
    image = scene.background.copy()
    ids = np.zeros((cam.height, cam.width), np.int16)  # actor index per pixel (0: none); < 32768 actors
    drawn: list[_Drawn] = []
    if actors:
        depth = cam.to_camera(np.array([[a.x_m, 0.0, a.z_m] for a in actors]))[:, 2]
        order = np.argsort(-depth, kind="stable")
        ordered = [actors[int(i)] for i in order]
        sketches = [sketch_actor(a, tod) for a in ordered]
        all_parts = project_many(cam, [sk for sk, _ in sketches])
        extents = [parts_extent(parts) for parts in all_parts]
        props = _props_in_front(scene.props, depth[order], extents)
        k = 0
        for item in _painter_order(depth[order], props):
            if isinstance(item, Prop):
                draw_parts(image, item.parts, ids, 0)  # hides what it covers; not a label
                continue
            k += 1
            d = _draw_actor(image, ids, cam, ordered[item], all_parts[item], extents[item], sketches[item][1], k)
            if d is not None:
                drawn.append(d)
    for d in drawn:
        _glow(image, ids, scene, d)
    image = apply_conditions(image, scene.conditions, rng)
    boxes = [b for d in drawn if (b := _label(ids, d, min_visible_px)) is not None]
    return image, boxes


def _props_in_front(props: list[Prop], depths: np.ndarray, extents: list[np.ndarray | None]) -> list[Prop]:
    """The static props that stand in front of some actor and overlap it in the image (to draw again)."""
    boxes = [(e, d) for e, d in zip(extents, depths, strict=True) if e is not None]
    if not props or not boxes:
        return []
    ext = np.array([e for e, _ in boxes])
    far = np.array([d for _, d in boxes])
    chosen = []
    for prop in props:
        x0, y0, x1, y1 = prop.xyxy
        hit = (far > prop.depth) & (ext[:, 0] < x1) & (ext[:, 2] > x0) & (ext[:, 1] < y1) & (ext[:, 3] > y0)
        if hit.any():
            chosen.append(prop)
    return chosen


def _painter_order(depths: np.ndarray, props: list[Prop]) -> list[int | Prop]:
    """Actor indices (already far to near) merged with props by depth, farthest first."""
    items: list[tuple[float, int, int | Prop]] = [(-float(d), 0, i) for i, d in enumerate(depths)]
    items += [(-p.depth, 1, p) for p in props]
    items.sort(key=lambda t: (t[0], t[1], t[2] if isinstance(t[2], int) else 0))
    return [t[2] for t in items]


def _draw_actor(
    image: np.ndarray,
    ids: np.ndarray,
    cam: Camera,
    actor: Actor,
    parts: list[Part],
    full: np.ndarray | None,
    lights: list[Light],
    k: int,
) -> _Drawn | None:
    if full is None:
        return None
    x0, y0 = max(0, math.floor(full[0])), max(0, math.floor(full[1]))
    x1, y1 = min(cam.width, math.ceil(full[2]) + 1), min(cam.height, math.ceil(full[3]) + 1)
    if x0 >= x1 or y0 >= y1:
        draw_parts(image, parts)  # off-image, but its shadow may still fall in view
        return None
    draw_parts(image, parts, ids, k)
    # Actors are drawn far to near, so right now every pixel labelled k is one this actor covers alone.
    alone = int(np.count_nonzero(ids[y0:y1, x0:x1] == k))
    return _Drawn(k, actor, full, (x0, y0, x1, y1), alone, lights)


def _glow(image: np.ndarray, ids: np.ndarray, scene: Scene, d: _Drawn) -> None:
    """Halos for an actor's lamps that face the camera and are not hidden behind a nearer actor."""
    cam = scene.camera
    for light in d.lights:
        to_cam = np.array([cam.x_m, cam.height_m, 0.0]) - light.xyz
        if float(np.dot(to_cam, light.normal)) <= 0:
            continue
        (u, v), depth = (a[0] for a in cam.project(light.xyz[None]))
        if depth <= 0.3:
            continue
        iu, iv = int(u), int(v)
        if 0 <= iu < cam.width and 0 <= iv < cam.height and ids[iv, iu] != d.index:
            continue
        radius = cam.focal_px * light.radius_m / depth
        add_glow(image, (u, v), min(radius, cam.width / 6), light.color, 0.8)


def _label(ids: np.ndarray, d: _Drawn, min_visible_px: int) -> ActorBox | None:
    x0, y0, x1, y1 = d.roi
    visible = int(np.count_nonzero(ids[y0:y1, x0:x1] == d.index))
    if d.alone_px == 0 or visible < min_visible_px:
        return None
    h, w = ids.shape
    full = d.full_xyxy
    clipped = np.array([max(full[0], 0), max(full[1], 0), min(full[2], w), min(full[3], h)], np.float64)
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        # the projected box misses the image while some pixels show (a part drawn outside the body's box):
        # label what is visible rather than emit an inverted box
        rows, cols = np.nonzero(ids[y0:y1, x0:x1] == d.index)
        clipped = np.array([x0 + cols.min(), y0 + rows.min(), x0 + cols.max() + 1, y0 + rows.max() + 1], np.float64)
    full_area = max((full[2] - full[0]) * (full[3] - full[1]), 1e-9)
    kept = max(clipped[2] - clipped[0], 0.0) * max(clipped[3] - clipped[1], 0.0)
    truncated = 0.0 if np.array_equal(clipped, full) else float(np.clip(1 - kept / full_area, 0, 1))
    fraction = min(1.0, visible / d.alone_px)
    occluded = 0 if fraction >= VISIBLE_FULLY else 1 if fraction >= VISIBLE_PARTLY else 2
    a = d.actor
    return ActorBox(a.actor_id, a.cls, a.body_type, a.color, clipped.astype(np.float32), truncated, occluded, fraction)


def random_actors(scene: Scene, rng: np.random.Generator, n_min: int = 3, n_max: int = 25) -> list[Actor]:
    """Plausibly placed actors: cars in lanes (some parked), people on sidewalks or crossing, bikes at the
    road edge or parked, signs beside the road; distances log-uniform so sizes span tiny to huge."""
    n = int(rng.integers(n_min, n_max + 1))
    actors: list[Actor] = []
    taken: list[tuple[float, float, float, float]] = []  # footprints (x, z, half width, half length)
    while len(actors) < n:
        cls = weighted_choice(float(rng.random()), CLASS_WEIGHTS)
        for _ in range(8):  # a few tries to find a free spot
            actor = _place(scene.layout, rng, len(actors) + 1, cls)
            if not _collides(actor, taken):
                break
        actors.append(actor)
        taken.append((actor.x_m, actor.z_m, actor.width_m / 2 + 0.3, actor.length_m / 2 + 0.5))
        if cls == "person" and rng.random() < 0.3 and len(actors) < n:  # people walk in groups
            mate = make_actor(
                rng,
                len(actors) + 1,
                "person",
                actor.x_m + rng.uniform(0.5, 0.8) * rng.choice([-1, 1]),
                actor.z_m + rng.uniform(-0.6, 0.6),
                actor.heading_rad,
            )
            actors.append(mate)
    return actors


def _log_z(layout: Layout, rng: np.random.Generator, near_factor: float = 0.8) -> float:
    lo, hi = max(2.0, layout.z_near_m * near_factor), max(layout.z_far_m, layout.z_near_m + 5)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _place(layout: Layout, rng: np.random.Generator, actor_id: int, cls: str) -> Actor:
    z = _log_z(layout, rng)
    left, right = layout.road_x_m
    walk = layout.sidewalks[int(rng.integers(len(layout.sidewalks)))]
    if cls == "car":
        lane = layout.lanes[int(rng.integers(len(layout.lanes)))]
        heading = (0.0 if lane.direction > 0 else math.pi) + rng.normal(0, 0.03)
        actor = make_actor(rng, actor_id, "car", lane.x_m + rng.normal(0, 0.25), z, heading)
        if rng.random() < 0.12 and actor.body_type not in ("bus", "truck"):  # parked at the kerb
            edge = left + actor.width_m / 2 + 0.3 if lane.x_m < 0 else right - actor.width_m / 2 - 0.3
            actor.x_m, actor.lights_on = edge, False
        return actor
    if cls == "person":
        if rng.random() < 0.75:
            x, heading = rng.uniform(walk[0] + 0.3, walk[1] - 0.3), rng.choice([0.0, math.pi]) + rng.normal(0, 0.2)
        else:
            z = layout.crosswalk_z_m + rng.uniform(0.3, 3.2) if layout.crosswalk_z_m and rng.random() < 0.7 else z
            x, heading = rng.uniform(left, right), rng.choice([-1, 1]) * math.pi / 2 + rng.normal(0, 0.15)
        return make_actor(rng, actor_id, "person", x, z, float(heading))
    if cls == "bicycle":
        if rng.random() < 0.6:
            lane = layout.lanes[int(rng.integers(len(layout.lanes)))]
            x = right - 0.9 if lane.direction > 0 else left + 0.9
            return make_actor(rng, actor_id, "bicycle", x, z, 0.0 if lane.direction > 0 else math.pi)
        x, heading = rng.uniform(walk[0] + 0.5, walk[1] - 0.5), rng.choice([-1, 1]) * math.pi / 2 + rng.normal(0, 0.3)
        return make_actor(rng, actor_id, "bicycle", x, z, float(heading), rider=False)
    x = walk[1] - 0.4 if walk[1] <= left + 1e-6 else walk[0] + 0.4
    heading = math.pi + rng.normal(0, 0.35) if rng.random() < 0.8 else float(rng.uniform(-math.pi, math.pi))
    return make_actor(rng, actor_id, "road_sign", x, z, heading)


def _collides(actor: Actor, taken: list[tuple[float, float, float, float]]) -> bool:
    hw, hl = actor.width_m / 2, actor.length_m / 2
    if abs(math.sin(actor.heading_rad)) > 0.7:
        hw, hl = hl, hw
    return any(abs(actor.x_m - x) < hw + w and abs(actor.z_m - z) < hl + ln for x, z, w, ln in taken)
