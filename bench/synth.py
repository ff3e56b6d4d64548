"""How fast the synthetic world renders, on one CPU core.

Measures, in one run:
  * still images at 640x384: new scene + actors + render + JPEG encode, with several shots per scene
    (``images_per_scene`` = 4, the dataset default) and with a new street for every image (1);
  * video frames at 1280x720 from one fixed camera with moving actors: render only, and render +
    H.264 encode (PyAV libx264, preset veryfast, one thread).
Targets: >= 100 images/s and >= 60 frames/s. Prints one JSON line at the end.

Each rate is given twice: by wall clock, and by this process's CPU time (``*_cpu``), which is what the
rate would be with the core to itself; on a shared machine the wall-clock figure can be far lower.

Usage: python bench/synth.py [--images 200] [--frames 150] [--core 0]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import time

import cv2
import numpy as np

from lanner.data.synth.images import SynthConfig, render_sample
from lanner.data.synth.render import random_actors, render
from lanner.data.synth.world import random_scene


class Clock:
    """Wall-clock and CPU seconds since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, n: int) -> tuple[float, float]:
        """``n`` items per wall second and per CPU second."""
        return n / (time.perf_counter() - self.wall), n / (time.process_time() - self.cpu)


def bench_images(n: int, images_per_scene: int) -> tuple[float, float]:
    """Images per second for ``n`` images (render + JPEG encode, nothing written to disk)."""
    config = SynthConfig(images=n, width=640, height=384, seed=1, images_per_scene=images_per_scene)
    render_sample(config, 0)  # warm caches (textures, car templates) like a long run would be
    clock = Clock()
    for i in range(n):
        image, _, _, _ = render_sample(config, i + images_per_scene)
        cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    return clock.rates(n)


def moving_frames(n: int, width: int, height: int):
    """Frames of one camera with 20-25 actors moving along their headings (10 m/s cars, 1.4 m/s people)."""
    rng = np.random.default_rng(5)
    scene = random_scene(rng, width, height, "day")
    actors = random_actors(scene, rng, 20, 25)
    speed = {"car": 10.0, "bicycle": 5.0, "person": 1.4, "road_sign": 0.0}
    z_lo, z_hi = scene.layout.z_near_m * 0.8, scene.layout.z_far_m
    for _ in range(n):
        for a in actors:
            step = speed[a.cls] / 30.0
            a.x_m += step * math.sin(a.heading_rad)
            a.z_m = z_lo + (a.z_m + step * math.cos(a.heading_rad) - z_lo) % (z_hi - z_lo)  # wrap: stay in view
            a.phase += step * 2.0
        yield render(scene, actors, rng)[0]


def bench_video(n: int, encode: bool) -> tuple[float, float]:
    """Frames per second at 1280x720, optionally encoding each frame to H.264 in memory."""
    import av

    width, height = 1280, 720
    frames = moving_frames(n + 5, width, height)
    for _ in range(5):
        next(frames)  # warm-up
    if not encode:
        clock = Clock()
        for _ in frames:
            pass
        return clock.rates(n)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        stream.codec_context.thread_count = 1
        clock = Clock()
        for image in frames:
            yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # faster than swscale's bgr24 -> yuv420p
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        return clock.rates(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--core", type=int, default=0, help="CPU to pin to")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    cv2.setNumThreads(1)
    runs = {
        "images_per_s_640x384": lambda: bench_images(args.images, 4),
        "images_per_s_640x384_new_scene_each": lambda: bench_images(args.images, 1),
        "frames_per_s_1280x720_render": lambda: bench_video(args.frames, encode=False),
        "frames_per_s_1280x720_render_h264": lambda: bench_video(args.frames, encode=True),
    }
    result: dict[str, float] = {}
    for key, run in runs.items():
        wall, cpu = run()
        result[key], result[f"{key}_cpu"] = round(wall, 1), round(cpu, 1)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    for key, value in result.items():
        print(f"{key:40s} {value}")
    print(json.dumps({"bench": "synth", **result}))


if __name__ == "__main__":
    main()
