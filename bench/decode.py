"""Decode and mux throughput on 720p (or ``--size``) H.264: PyAV one thread vs frame threading vs OpenCV, and the muxer.

Decode rates include the conversion to the HxWx3 BGR array every pipeline stage gets (FFmpeg's swscale,
as ``FileSource`` does). The muxer
run feeds 4 file sources (one decode thread each) into ``Muxer`` (batch 4, one frame per source per
batch, 40 ms push timeout) with a 448x800 letterbox, once in the decode threads (``preprocess_in_source``,
the default), once in the muxer's caller, and once the way it ran before decoded pictures stayed YUV (``before``
in ``mux_run``), and reports frames/s out of ``next_batch``.

Each line gives wall-clock frames/s and the process CPU time per frame (all threads): on a shared or
loaded machine the wall numbers move with the load, the CPU cost much less. Clips come from the
synthetic world (4 cameras, ``--seconds`` each, cached under ``--cache``).

    python bench/decode.py [--seconds 4] [--repeat 2] [--cache /tmp/lanner-bench-decode]
    python bench/decode.py --size 1920x1080 --streams 8,16,32 --hwaccel cuda   # NVDEC vs CPU, many streams
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2

from lanner.core.frame import Picture
from lanner.data.preprocess import InputSpec, resize_image
from lanner.pipeline.mux import MuxConfig, Muxer
from lanner.pipeline.sources import SourceConfig, open_source
from lanner.pipeline.sources.picture import frame_to_bgr


def clips(cache: Path, seconds: float, width: int, height: int) -> list[Path]:
    """Four synthetic 30 fps clips of that size (made once per size and length)."""
    from lanner.data.synth import VideoSynthConfig, generate_videos  # only when clips must be made

    config = VideoSynthConfig(cameras=4, seconds=seconds, fps=30, width=width, height=height, seed=11)
    paths = [cache / f"cam{i}.mp4" for i in range(4)]
    stamp, want = cache / "made.txt", f"{seconds} {width}x{height}"
    if not all(p.is_file() for p in paths) or not stamp.is_file() or stamp.read_text() != want:
        generate_videos(config, cache)
        stamp.write_text(want)
    return paths


def measure(run: Callable[[], int]) -> tuple[float, float]:
    """(frames/s wall, CPU ms per frame) of ``run()``, which returns its frame count."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    n = run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return n / wall, cpu / n * 1e3


def pyav_decode(path: Path, threaded: bool, convert: Callable) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        else:
            stream.codec_context.thread_count = 1
        n = 0
        for frame in container.decode(stream):
            convert(frame)
            n += 1
    return n


def opencv_decode(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def streams_run(path: Path, streams: int, hwaccel: str) -> int:
    """``streams`` sources all decoding ``path`` (``hwaccel`` none or cuda) through one Muxer; frames out."""
    mux = Muxer(MuxConfig(batch_size=streams, batched_push_timeout_ms=40))
    for i in range(streams):
        mux.add_source(open_source(SourceConfig(uri=str(path), hwaccel=hwaccel, queue_size=8), i))
    mux.start()
    n = 0
    while not mux.done:
        batch = mux.next_batch(timeout_s=30.0)
        n += len(batch) if batch is not None else 0
    failed = {sid: s["error"] for sid, s in mux.stats().items() if s["error"]}
    assert not failed, failed
    return n


def scale_table(path: Path, counts: list[int], hwaccels: list[str]) -> None:
    """Aggregate frames/s of N concurrent streams and the 30 fps streams that keeps in real time."""
    print(f"{'decode':<8} {'streams':>7} {'frames/s':>9} {'CPU ms/frame':>13} {'real-time 30 fps streams':>25}")
    for hwaccel in hwaccels:
        for n in counts:
            fps, cpu_ms = measure(lambda h=hwaccel, k=n: streams_run(path, k, h))
            print(f"{hwaccel:<8} {n:7d} {fps:9.1f} {cpu_ms:13.2f} {int(fps // 30):25d}")


def mux_run(paths: list[Path], in_source: bool, before: bool = False) -> int:
    """4 sources through one Muxer at 448x800 (the starter detector's input), OpenCV single-threaded as in a
    pipeline run. ``before``: the path until 2026-12-01 (seventh session): FFmpeg's frame threads (3, its
    choice on 2 cores), every frame converted to BGR at full size and then letterboxed, OpenCV's thread pool on.
    """
    config = MuxConfig(batch_size=4, batched_push_timeout_ms=40, preprocess_in_source=in_source)
    spec = InputSpec(size_hw=(448, 800))
    mux = Muxer(config, spec)
    for i, path in enumerate(paths):
        source = open_source(SourceConfig(uri=str(path), decode_threads=3 if before else 0), i)
        mux.add_source(source)
        if before and in_source:
            source.transform = lambda image: resize_image(image.to_bgr() if isinstance(image, Picture) else image, spec)
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(cv_threads if before else 1)
    mux.start()
    n = 0
    try:
        while not mux.done:
            batch = mux.next_batch(timeout_s=10.0)
            if batch is not None and batch.frames:
                assert batch.tensor_nchw.shape[1:] == (3, 448, 800)
                n += len(batch)
    finally:
        cv2.setNumThreads(cv_threads)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the fastest is reported")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lanner-bench-decode")
    parser.add_argument("--size", default="1280x720", help="clip WIDTHxHEIGHT (1920x1080 for the NVDEC table)")
    parser.add_argument("--streams", default="", help="e.g. 8,16,32: also run N concurrent streams per decoder")
    parser.add_argument("--hwaccel", default="", help="cuda: add NVDEC rows to the --streams table")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    paths = clips(args.cache / args.size, args.seconds, width, height)
    if args.streams:
        print(f"{args.size} H.264, {args.seconds:g} s clip decoded by N sources into one Muxer (batch N), no resize:")
        scale_table(paths[0], [int(v) for v in args.streams.split(",")], ["none", *filter(None, [args.hwaccel])])
    cases = {
        "pyav 1 thread, swscale": lambda: pyav_decode(paths[0], False, frame_to_bgr),
        "pyav frame threads, swscale": lambda: pyav_decode(paths[0], True, frame_to_bgr),
        "opencv VideoCapture": lambda: opencv_decode(paths[0]),
        "mux 4 src, letterbox in decode threads": lambda: mux_run(paths, True),
        "mux 4 src, letterbox in the muxer": lambda: mux_run(paths, False),
        "mux 4 src, in decode threads, before": lambda: mux_run(paths, True, before=True),
    }
    results = {name: max((measure(run) for _ in range(args.repeat)), key=lambda r: r[0]) for name, run in cases.items()}
    print(f"{args.size} H.264 ({args.seconds:g} s clips) to BGR; mux: 4 sources, batch 4, 448x800 NCHW float32")
    print(f"{'case':<42} {'frames/s':>9} {'CPU ms/frame':>13}")
    for name, (fps, cpu_ms) in results.items():
        print(f"{name:<42} {fps:9.1f} {cpu_ms:13.2f}")
    fps = {name: r[0] for name, r in results.items()}
    names = list(fps)
    ratios = {
        "frame threads / 1 thread": fps[names[1]] / fps[names[0]],
        "PyAV frame threads / OpenCV": fps[names[1]] / fps[names[2]],
        "letterbox in decode threads / in muxer": fps[names[3]] / fps[names[4]],
        "mux out / 1-stream threaded decode": fps[names[3]] / fps[names[1]],
        "mux CPU per frame, before / now": results[names[5]][1] / results[names[3]][1],
    }
    print("; ".join(f"{k}: {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
