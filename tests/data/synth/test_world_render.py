"""The synthetic world's geometry and labels: projection, truncation, occlusion, tiny objects, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lanner.data.synth.render import random_actors, render
from lanner.data.synth.sketch import Prop, Sketch, box_corners, parts_extent
from lanner.data.synth.world import (
    BODY_TYPES,
    CLASSES,
    Camera,
    Conditions,
    Lane,
    Layout,
    Scene,
    make_actor,
    random_scene,
)

CLEAN = Conditions("day", rain=0.0, blur=0.0, noise=0.0, jpeg_quality=None)


def plain_scene(width: int = 320, height: int = 192, pitch_deg: float = 14.0) -> Scene:
    """A fixed camera over a bare street with no effects, so a test controls every actor."""
    camera = Camera(width, height, focal_px=width * 0.8, height_m=6.0, pitch_rad=math.radians(pitch_deg))
    layout = Layout((Lane(-1.75, -1), Lane(1.75, 1)), (-3.5, 3.5), ((-6.5, -3.5), (3.5, 6.5)), 8.0, 120.0)
    return Scene(camera, layout, CLEAN, np.full((height, width, 3), 90, np.uint8))


def car(actor_id: int, x: float, z: float, body_type: str = "sedan", heading: float = 0.0):
    return make_actor(np.random.default_rng(actor_id), actor_id, "car", x, z, heading, body_type=body_type)


def test_projection_puts_farther_points_higher_and_smaller():
    cam = plain_scene().camera
    near, far = 10.0, 40.0
    pts = np.array([[0, 0, near], [1, 0, near], [0, 0, far], [1, 0, far]], float)
    px, depth = cam.project(pts)
    assert px[2, 1] < px[0, 1]  # farther ground point is higher in the image (smaller row)
    assert (px[3, 0] - px[2, 0]) < (px[1, 0] - px[0, 0])  # and a metre spans fewer pixels
    assert depth[2] > depth[0] > 0
    assert cam.project(np.array([[0.0, 0.0, -5.0]]))[1][0] < 0  # behind the camera: negative depth
    assert px[0, 1] > cam.horizon_v  # ground points lie below the horizon


def test_lone_car_is_fully_visible_and_inside():
    scene = plain_scene()
    _, boxes = render(scene, [car(1, 1.75, 25.0)])
    (box,) = boxes
    assert box.cls == "car" and box.body_type == "sedan"
    assert box.occluded == 0 and box.visible_fraction == pytest.approx(1.0)
    assert box.truncated == 0.0
    x0, y0, x1, y1 = box.xyxy
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 192


def test_car_directly_behind_another_is_occluded():
    scene = plain_scene()
    front, back = car(1, 1.75, 16.0, "van"), car(2, 1.75, 22.0, "sedan")
    _, boxes = render(scene, [front, back])
    by_id = {b.actor_id: b for b in boxes}
    assert by_id[1].occluded == 0
    assert by_id[2].occluded >= 1
    assert by_id[2].visible_fraction < by_id[1].visible_fraction


def test_truncation_of_a_car_half_outside_matches_a_wider_view():
    scene = plain_scene()
    cam = scene.camera
    z = 20.0
    depth = cam.project(np.array([[0.0, 0.0, z]]))[1][0]
    x = cam.x_m + (0 - cam.width / 2) * depth / cam.focal_px  # car centre on the left image border
    actor = car(1, x, z, heading=math.pi / 2)  # side-on: wide in the image
    _, (box,) = render(scene, [actor])
    pad = 200  # the same camera with the image widened on both sides sees the whole car
    wide_cam = Camera(cam.width + 2 * pad, cam.height, cam.focal_px, cam.height_m, cam.pitch_rad)
    wide = Scene(wide_cam, scene.layout, CLEAN, np.zeros((cam.height, cam.width + 2 * pad, 3), np.uint8))
    _, (full,) = render(wide, [actor])
    fx0, fy0, fx1, fy1 = full.xyxy - np.array([pad, 0, pad, 0])
    expected = 1 - (fx1 - max(fx0, 0)) * (fy1 - fy0) / ((fx1 - fx0) * (fy1 - fy0))
    assert full.truncated == 0.0
    assert 0.3 < box.truncated < 0.7
    assert box.truncated == pytest.approx(expected, abs=0.03)
    assert box.xyxy[0] == 0.0


def test_street_furniture_in_front_hides_an_actor_behind_it():
    scene = plain_scene()
    actor = car(1, 1.75, 25.0, heading=math.pi / 2)
    wall = Sketch()
    wall.add_box(box_corners(1.75, 15.0, 0.0, 0.3, 1.2, 0.0, 3.0), {"back": (0, 255, 0), "top": (0, 255, 0)})
    parts = wall.project(scene.camera)
    depth = float(scene.camera.to_camera(np.array([[1.75, 0.0, 15.0]]))[0, 2])
    _, (alone,) = render(scene, [actor])
    scene.props = [Prop(depth, parts_extent(parts), parts)]
    image, (hidden,) = render(scene, [actor])
    assert alone.occluded == 0
    assert hidden.occluded >= 1 and hidden.visible_fraction < 0.9
    np.testing.assert_array_equal(hidden.xyxy, alone.xyxy)  # the box stays amodal
    x0, y0, x1, y1 = parts_extent(parts).astype(int)
    assert (image[(y0 + y1) // 2, (x0 + x1) // 2] == (0, 255, 0)).all()  # the prop is drawn over the car


@pytest.mark.parametrize("cls", CLASSES)
def test_tiny_far_objects_are_dropped(cls):
    scene = plain_scene()
    far = make_actor(np.random.default_rng(0), 1, cls, 1.0, 1500.0, 0.0)
    _, boxes = render(scene, [far], min_visible_px=12)
    assert boxes == []


def test_behind_camera_and_off_image_actors_have_no_box():
    scene = plain_scene()
    _, boxes = render(scene, [car(1, 0.0, -20.0), car(2, 200.0, 20.0)])
    assert boxes == []


def random_frames(n: int, width: int = 320, height: int = 192, time_of_day: str | None = None):
    for i in range(n):
        rng = np.random.default_rng([7, i])
        scene = random_scene(rng, width, height, time_of_day)
        yield scene, render(scene, random_actors(scene, rng), rng)


def test_boxes_are_inside_and_truncated_only_at_borders():
    for _, (image, boxes) in random_frames(20):
        h, w = image.shape[:2]
        for b in boxes:
            x0, y0, x1, y1 = b.xyxy
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert 0 <= b.visible_fraction <= 1 and b.occluded in (0, 1, 2)
            at_border = x0 <= 0 or y0 <= 0 or x1 >= w or y1 >= h
            assert (b.truncated > 0) <= at_border
            if not at_border:
                assert b.truncated == 0


def test_all_classes_and_body_types_appear_over_50_images():
    seen_cls, seen_body = set(), set()
    for _, (_, boxes) in random_frames(50):
        seen_cls |= {b.cls for b in boxes}
        seen_body |= {b.body_type for b in boxes if b.cls == "car"}
    assert seen_cls == set(CLASSES)
    assert seen_body == set(BODY_TYPES)


def test_night_images_are_darker_than_day():
    day = np.mean([img.mean() for _, (img, _) in random_frames(6, time_of_day="day")])
    night = np.mean([img.mean() for _, (img, _) in random_frames(6, time_of_day="night")])
    assert night < 0.6 * day


def test_render_is_deterministic_for_a_seed():
    def frame(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        scene = random_scene(rng, 320, 192, "night")
        image, boxes = render(scene, random_actors(scene, rng), rng)
        return image.tobytes() + repr([(b.actor_id, b.xyxy.tolist(), b.occluded) for b in boxes]).encode()

    assert frame(3) == frame(3)
    assert frame(3) != frame(4)


def test_make_actor_sizes_are_realistic():
    rng = np.random.default_rng(0)
    bus = make_actor(rng, 1, "car", 0, 10, 0, body_type="bus")
    sedan = make_actor(rng, 2, "car", 0, 10, 0, body_type="sedan")
    person = make_actor(rng, 3, "person", 0, 10, 0)
    assert bus.length_m > 2 * sedan.length_m
    assert 1.4 < person.height_m < 2.0 and person.body_type is None
    with pytest.raises(ValueError):
        make_actor(rng, 4, "tram", 0, 10, 0)


@pytest.mark.parametrize("index", [512, 574])
def test_parts_drawn_outside_the_projected_box_never_give_an_inverted_box(index):
    # seed 0 images 512 and 574 once labelled a sign whose projected box lay above the image while its
    # pole showed: the label must be the visible part, never y2 < y1
    from lanner.data.synth.images import SynthConfig, render_sample

    image, boxes, _, _ = render_sample(SynthConfig(images=1000), index)
    h, w = image.shape[:2]
    assert boxes
    for b in boxes:
        x0, y0, x1, y1 = b.xyxy
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, b
