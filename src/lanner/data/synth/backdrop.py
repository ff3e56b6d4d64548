"""The static backdrop of a scene: sky, skyline, facades with windows, road, markings and street furniture.

Painted once per ``Scene`` (``random_scene`` calls ``paint_background``), so a video of a thousand
frames pays for it once. The street furniture (lamp posts, trees, bins, bollards, hydrants, benches,
advert panels, traffic lights) and the cast shadows are deliberately unlabelled: they are the clutter a
detector must learn to ignore, and an advert panel or traffic light looks enough like a sign to be a
hard negative.

Example:
    >>> from lanner.data.synth.world import random_scene
    >>> scene = random_scene(np.random.default_rng(1), 320, 192, "night")
    >>> bool(scene.background.mean() < 100)
    True
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lanner.data.synth.effects import add_glow, noise_texture
from lanner.data.synth.sketch import (
    NEAR_M,
    SCALE,
    SHIFT,
    Prop,
    Sketch,
    box_corners,
    draw_parts,
    parts_extent,
    project_many,
)
from lanner.data.synth.world import Camera, Scene, lit

SKY = {  # (top, horizon) BGR
    "day": ((205, 150, 95), (240, 225, 205)),
    "dusk": ((120, 75, 80), (90, 160, 245)),
    "night": ((28, 14, 10), (62, 45, 40)),
}
FACADES = ((60, 80, 150), (140, 170, 190), (150, 150, 150), (210, 210, 205), (120, 100, 80), (90, 110, 120))
FACADES += ((70, 60, 110), (180, 190, 200), (100, 90, 70))
FAR_Z_M = 900.0
_T10 = np.linspace(0, 2 * math.pi, 10, endpoint=False)
_RING10 = np.stack([np.cos(_T10), 0.9 * np.sin(_T10), np.zeros(10)], axis=1)  # a tree crown's outline


def paint_background(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[Prop]]:
    """The backdrop image (HxWx3 uint8), the world positions of its street lamps (N,3) and its props."""
    cam, tod = scene.camera, scene.conditions.time_of_day
    img = _sky(cam, tod)
    _skyline(img, cam, rng, tod)
    _ground(img, scene, rng)
    _markings(img, scene, rng)
    if tod != "night":
        _shadows(img, scene, rng)
    _buildings(img, scene, rng)
    lamps, props = _furniture(img, scene, rng)
    if tod != "day":
        _lamp_light(img, cam, lamps, 1.0 if tod == "night" else 0.5)
    tex = noise_texture(cam.height, cam.width)[: cam.height, : cam.width]
    img = cv2.addWeighted(img, 1.0, tex, 0.12, -128 * 0.12)
    return img, lamps, props


def _sky(cam: Camera, tod: str) -> np.ndarray:
    top, horizon = (np.array(c, np.float32) for c in SKY[tod])
    hv = max(cam.horizon_v, 1.0)
    t = np.clip(np.arange(cam.height, dtype=np.float32) / hv, 0, 1)[:, None]
    column = (top * (1 - t) + horizon * t).astype(np.uint8)[:, None, :]
    return cv2.resize(column, (cam.width, cam.height), interpolation=cv2.INTER_NEAREST)


def _skyline(img: np.ndarray, cam: Camera, rng: np.random.Generator, tod: str) -> None:
    """Far blocks along the horizon, hazy (mixed with the horizon colour)."""
    hv = cam.horizon_v
    if not 2 < hv < cam.height:
        return
    haze = np.array(SKY[tod][1], np.float32)
    x = 0
    while x < cam.width:
        w = int(rng.integers(max(3, cam.width // 60), max(6, cam.width // 12)))
        h = rng.uniform(0.01, 0.08) * cam.height
        base = np.array(lit(FACADES[int(rng.integers(len(FACADES)))], 0.7, tod), np.float32)
        color = tuple(int(v) for v in 0.45 * base + 0.55 * haze)
        cv2.rectangle(img, (x, int(hv - h)), (x + w, int(hv) + 2), color, -1)
        x += w


def _ground(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Far-ground fill, sidewalks with kerbs, the road and a few asphalt patches (unlabelled clutter)."""
    cam, lay, tod = scene.camera, scene.layout, scene.conditions.time_of_day
    hv = int(max(0, cam.horizon_v))
    g = int(rng.integers(135, 185))
    walk = (g, g, g - 4)
    cv2.rectangle(img, (0, hv), (cam.width, cam.height), lit(walk, 0.85, tod), -1)
    asphalt = int(rng.integers(70, 105))
    road = (asphalt + 2, asphalt, asphalt - 2)
    sk = Sketch()
    for x0, x1 in lay.sidewalks:
        sk.add(_ground_quad(x0 - 40 if x0 < 0 else x0, x1 + 40 if x0 > 0 else x1, -5, FAR_Z_M), lit(walk, 1, tod))
    sk.add(_ground_quad(lay.road_x_m[0], lay.road_x_m[1], -5, FAR_Z_M), lit(road, 1.0, tod))
    for edge in lay.road_x_m:
        sk.add(_ground_quad(edge - 0.12, edge + 0.12, -5, FAR_Z_M), lit((200, 200, 198), 0.9, tod))
    for _ in range(int(rng.integers(2, 8))):
        x = rng.uniform(*lay.road_x_m)
        z = rng.uniform(lay.z_near_m, lay.z_far_m * 0.6)
        shade = float(rng.uniform(0.75, 1.15))
        sk.add(
            _ground_quad(x - rng.uniform(0.3, 1.5), x + rng.uniform(0.3, 1.5), z, z + rng.uniform(1, 6)),
            lit(road, shade, tod),
        )
    _draw(img, sk, cam)


def _ground_quad(x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> np.ndarray:
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def _draw(img: np.ndarray, sk: Sketch, cam: Camera) -> None:
    """Draw ground shapes, which are seen from above whatever their winding: no back-face culling."""
    sk.meta = [(kind, color, False, False, width) for kind, color, _, _, width in sk.meta]
    draw_parts(img, sk.project(cam))


def _markings(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Edge lines, dashed lane lines, a (double yellow) centre line and the zebra crossing."""
    lay, tod = scene.layout, scene.conditions.time_of_day
    white, yellow = lit((215, 220, 220), 1.0, tod), lit((40, 185, 225), 1.0, tod)
    sk = Sketch()
    y = 0.0
    for edge, inward in ((lay.road_x_m[0], 0.3), (lay.road_x_m[1], -0.3)):
        sk.add(_ground_quad(edge + inward - 0.07, edge + inward + 0.07, -5, FAR_Z_M, y), white)
    dash, gap = float(rng.uniform(2.5, 4.0)), float(rng.uniform(5.0, 9.0))
    for left, right in zip(lay.lanes, lay.lanes[1:]):
        x = (left.x_m + right.x_m) / 2
        if left.direction != right.direction:
            color = yellow if rng.random() < 0.6 else white
            for dx in (-0.12, 0.12):
                sk.add(_ground_quad(x + dx - 0.06, x + dx + 0.06, -5, FAR_Z_M, y), color)
            continue
        z = -5.0 + rng.uniform(0, dash + gap)
        while z < min(lay.z_far_m * 1.5, 250):
            sk.add(_ground_quad(x - 0.07, x + 0.07, z, z + dash, y), white)
            z += dash + gap
    if lay.crosswalk_z_m is not None:
        z0 = lay.crosswalk_z_m
        x = lay.road_x_m[0] + 0.5
        while x < lay.road_x_m[1] - 0.5:
            sk.add(_ground_quad(x, x + 0.5, z0, z0 + 3.5, y), white)
            x += 1.0
        sk.add(_ground_quad(lay.road_x_m[0], lay.road_x_m[1], z0 - 1.8, z0 - 1.5, y), white)
    _draw(img, sk, scene.camera)


def _shadows(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Darken cast-shadow bands from the buildings on one side of the street (sun low at one side)."""
    lay, cam = scene.layout, scene.camera
    if rng.random() < 0.35:
        return
    side = int(rng.integers(2))
    outer = lay.sidewalks[side][0] if side == 0 else lay.sidewalks[side][1]
    reach = rng.uniform(2.0, 14.0) * (1 if side == 0 else -1)
    sk = Sketch()
    z = -5.0
    while z < 300:
        length = rng.uniform(8, 40)
        if rng.random() < 0.8:
            x0, x1 = sorted((outer, outer + reach * rng.uniform(0.6, 1.0)))
            sk.add(_ground_quad(x0, x1, z, z + length), (255, 255, 255))
        z += length
    mask = np.zeros(img.shape[:2], np.uint8)
    _draw(mask, sk, cam)
    dark = cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.5, 0.7)))
    cv2.copyTo(dark, mask, img)


def _buildings(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Rows of boxes behind both sidewalks, drawn far to near, then the window grids on their street faces.

    Windows go on after all the boxes in one batch: along a street the facades of one side lie in (nearly)
    one plane, so a nearer block hides almost nothing of a farther block's facade.
    """
    lay, cam, tod = scene.layout, scene.camera, scene.conditions.time_of_day
    blocks = []
    for side, (x0, x1) in enumerate(lay.sidewalks):
        face_x = x0 if side == 0 else x1
        z = -10.0
        while z < 320:
            length = rng.uniform(8, 26) * (1.0 if z < 120 else 2.5)
            if rng.random() < 0.15:
                z += rng.uniform(3, 8)  # an alley
                continue
            setback = rng.uniform(0, 1.5) * (-1 if side == 0 else 1)
            blocks.append((side, face_x + setback, z, z + length, rng.uniform(6, 36)))
            z += length
    blocks.sort(key=lambda b: -b[2])  # painter's order: far blocks first
    sk = Sketch()
    windows = []
    for side, face_x, z0, z1, height in blocks:
        depth = 20.0
        cx = face_x - depth / 2 if side == 0 else face_x + depth / 2
        corners = box_corners(cx, (z0 + z1) / 2, 0.0, z1 - z0, depth, 0.0, height)
        color = FACADES[int(rng.integers(len(FACADES)))]
        sk.add_box(
            corners, {k: lit(color, s, tod) for k, s in (("top", 0.9), ("back", 0.8), ("left", 0.7), ("right", 0.7))}
        )
        if z0 < 160 and (side == 0) == (face_x < cam.x_m):  # street face turned to the camera
            windows.append(_window_grid(side, face_x, max(z0, 0.0), z1, height, rng))
    draw_parts(img, sk.project(cam))
    if windows:
        _draw_windows(img, cam, np.concatenate(windows), rng, tod)


def _window_grid(side: int, face_x: float, z0: float, z1: float, height: float, rng) -> np.ndarray:
    """Window quads (N,4,3) on the facade plane x = face_x."""
    floor_h, pitch = rng.uniform(3.0, 3.6), rng.uniform(2.4, 3.6)
    win_w, win_h = pitch * rng.uniform(0.45, 0.75), floor_h * rng.uniform(0.4, 0.6)
    ys = np.arange(floor_h + 0.8, height - win_h - 0.3, floor_h)
    zs = np.arange(z0 + 0.8, z1 - win_w - 0.3, pitch)
    yy, zz = (a.ravel() for a in np.meshgrid(ys, zs, indexing="ij"))
    base = np.stack([np.full_like(yy, face_x + (0.03 if side == 0 else -0.03)), yy, zz], axis=1)
    corners = np.array([[0, 0, 0], [0, 0, win_w], [0, win_h, win_w], [0, win_h, 0]])
    return base[:, None, :] + corners[None]


def _draw_windows(img: np.ndarray, cam: Camera, quads: np.ndarray, rng, tod: str) -> None:
    """Rasterize window quads with one fillPoly per colour (reflections by day, lit rooms at night)."""
    cam_pts = cam.to_camera(quads.reshape(-1, 3)).reshape(-1, 4, 3)
    keep = cam_pts[:, :, 2].min(axis=1) > NEAR_M
    pix = cam.to_pixels(cam_pts[keep].reshape(-1, 3)).reshape(-1, 4, 2)
    fixed = np.round(pix * SCALE).astype(np.int32)
    if tod == "day":
        palette = [lit((95, 85, 75), 1.0, tod), lit((150, 135, 120), 1.0, tod), lit((60, 55, 50), 1.0, tod)]
        p = [0.5, 0.3, 0.2]
    else:
        palette = [(35, 30, 28), (110, 195, 245), (200, 210, 220)]
        p = [0.55, 0.35, 0.1] if tod == "night" else [0.7, 0.25, 0.05]
    which = rng.choice(len(palette), size=len(fixed), p=p)
    for k, color in enumerate(palette):
        sel = fixed[which == k]
        if len(sel):
            cv2.fillPoly(img, list(sel), color, cv2.LINE_8, SHIFT)


def _furniture(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, list[Prop]]:
    """Street lamps, trees and small clutter along both kerbs; returns the lamp heads (N,3) and the props.

    Each piece is also kept as a projected ``Prop`` so ``render`` can draw it again over an actor that
    stands behind it: a person behind a tree is hidden (and counted as occluded), not pasted on top.
    """
    lay, tod = scene.layout, scene.conditions.time_of_day
    items: list[tuple[float, str, float, int]] = []  # (z, kind, x, side)
    for side, (x0, x1) in enumerate(lay.sidewalks):
        kerb = x1 - 0.5 if side == 0 else x0 + 0.5
        outer = x0 + 0.8 if side == 0 else x1 - 0.8
        spacing = rng.uniform(22, 36)
        items += [(z, "lamp", kerb, side) for z in np.arange(rng.uniform(0, spacing), 200, spacing)]
        if rng.random() < 0.6:
            step = rng.uniform(8, 16)
            items += [
                (z, "tree", kerb + (0.6 if side == 0 else -0.6) * -1, side)
                for z in np.arange(rng.uniform(0, step), 120, step)
            ]
        for _ in range(int(rng.integers(0, 8))):
            kind = str(rng.choice(["bin", "bollard", "hydrant", "bench", "panel", "traffic_light"]))
            x = outer if kind in ("bench", "panel", "bin") else kerb
            items.append((float(rng.uniform(lay.z_near_m * 0.7, lay.z_far_m * 0.7)), kind, x, side))
    # Nothing tall right under the camera: installers mount cameras clear of trees and poles.
    clear_z = lay.z_near_m + 2.0 * scene.camera.height_m
    items = [it for it in items if it[0] > clear_z or it[1] in ("bin", "bollard", "hydrant", "bench")]
    items.sort(key=lambda it: -it[0])
    sketches, lamps = [], []
    for z, kind, x, side in items:
        sk = Sketch()
        head = _sketch_item(sk, kind, x, float(z), side, rng, tod)
        sketches.append(sk)
        if head is not None:
            lamps.append(head)
    cam = scene.camera
    props = []
    depths = cam.to_camera(np.array([[x, 0.0, z] for z, _, x, _ in items]).reshape(-1, 3))[:, 2]
    for parts, depth in zip(project_many(cam, sketches), depths, strict=True):
        extent = parts_extent(parts)
        if extent is not None:
            draw_parts(img, parts)
            props.append(Prop(float(depth), extent, parts))
    return np.array(lamps).reshape(-1, 3), props


def _sketch_item(sk: Sketch, kind: str, x: float, z: float, side: int, rng, tod: str) -> np.ndarray | None:
    """Add one piece of furniture at (x, z); returns a lamp head position for lamps."""
    toward = 1.0 if side == 0 else -1.0  # +x points at the road from the left kerb
    if kind == "lamp":
        h = 8.0
        arm = np.array([x + toward * 1.8, h + 0.15, z])
        sk.add_line(np.array([[x, 0, z], [x, h, z], arm]), lit((90, 95, 100), 1.0, tod), 0.18)
        sk.add_box(box_corners(arm[0], z, 0.0, 0.35, 0.7, h - 0.1, h + 0.1), _flat((50, 50, 55), tod))
        return arm - np.array([0, 0.2, 0])
    if kind == "tree":
        sk.add_line(np.array([[x, 0, z], [x, 3.0, z]]), lit((40, 55, 70), 1.0, tod), 0.3)
        u = rng.random((3, 7))  # per blob: centre x, y, z offsets, radius, three green levels
        for row in u:
            centre = np.array([x + 1.6 * row[0] - 0.8, 3.5 + 1.5 * row[1], z + row[2] - 0.5])
            green = (30 + int(30 * row[4]), 80 + int(50 * row[5]), 40 + int(30 * row[6]))
            sk.add(centre + _RING10 * (1.2 + row[3]), lit(green, 1.0, tod), cull=False)
        return None
    if kind == "traffic_light":
        sk.add_line(np.array([[x, 0, z], [x, 3.2, z]]), lit((60, 60, 60), 1.0, tod), 0.14)
        sk.add_box(box_corners(x, z, 0.0, 0.3, 0.35, 3.2, 4.2), _flat((30, 30, 30), tod))
        lamp = [(40, 40, 230), (40, 200, 240), (60, 200, 60)][int(rng.integers(3))]
        sk.add(box_corners(x, z - 0.16, 0.0, 0.01, 0.2, 3.5, 3.7)[[1, 0, 4, 5]], lamp)
        return None
    dims = {"bin": (0.6, 0.6, 1.0), "bollard": (0.18, 0.18, 0.9), "hydrant": (0.3, 0.3, 0.7)}
    dims |= {"bench": (1.8, 0.55, 0.5), "panel": (1.3, 0.3, 2.2)}
    colors = {"bin": (50, 80, 40), "bollard": (40, 40, 40), "hydrant": (30, 40, 200), "bench": (40, 70, 110)}
    colors["panel"] = tuple(int(v) for v in rng.integers(40, 240, 3))
    length, width, height = dims[kind]
    sk.add_box(box_corners(x, z, 0.0, length, width, 0.0, height), _flat(colors[kind], tod))
    return None


def _flat(color, tod: str) -> dict[str, tuple[int, int, int]]:
    return {
        k: lit(color, s, tod) for k, s in (("top", 1.0), ("back", 0.85), ("left", 0.7), ("right", 0.75), ("front", 0.8))
    }


def _lamp_light(img: np.ndarray, cam: Camera, lamps: np.ndarray, strength: float) -> None:
    """Pools of light on the ground under each lamp and a glow around its head."""
    if len(lamps) == 0:
        return
    small = np.zeros((cam.height // 4 + 1, cam.width // 4 + 1, 3), np.uint8)
    sk = Sketch()
    t = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    for head in lamps:
        ring = np.stack([head[0] + 5.5 * np.cos(t), np.zeros_like(t), head[2] + 5.5 * np.sin(t)], axis=1)
        sk.add(ring, (int(60 * strength), int(95 * strength), int(120 * strength)), cull=False)
    parts = sk.project(cam)
    for part in parts:
        part.points = part.points // 4
    draw_parts(small, parts)
    small = cv2.GaussianBlur(small, (0, 0), 3)
    cv2.add(img, cv2.resize(small, (cam.width, cam.height))[: cam.height, : cam.width], dst=img)
    pix, depth = cam.project(lamps)
    for (u, v), d in zip(pix, depth, strict=True):
        if d > NEAR_M:
            add_glow(img, (u, v), min(cam.focal_px * 1.6 / d, cam.width / 4), (150, 215, 255), strength)
