"""NVDEC on one GPU: how many 1080p30 H.264 camera streams its decode and batching keep in real time.

DeepStream's published whole-pipeline figure for an H100 is 148 streams of 1080p30 H.264, and NVDEC is the
ceiling it measures against. This bench measures that ceiling for lanner's GPU path, in two modes per
stream count N, all in one process run:

- ``decode``: N threads, each with its own PyNvVideoCodec demuxer and NVDEC decoder, frames left in GPU
  memory. The clip is re-opened at its end, so a 10 s clip stands for a camera that never stops.
- ``decode+batch``: the same decoders hand each frame (copied out of the decoder's surface on the GPU) to
  a queue of 2; one batcher takes a frame from every stream, stacks the N NV12 frames, converts them to RGB
  and letterboxes them to 640x384 float NCHW on the GPU in one batch (what nvstreammux plus nvinfer's
  preprocessing do). Sources run in lockstep, as nvstreammux does for files.

For each N it prints aggregate frames/s, the slowest stream's frames/s, and whether every stream kept
30 frames/s. ``--pipeline-sources 4`` then runs lanner's own ``FileSource`` that many at once, looping the clip,
with ``hwaccel: nvdec`` and with PyAV on the CPU, in alternating rounds, and prints frames/s and the process
CPU time per frame of each (BGR frames on the host, as the pipeline takes them) with their ratio.
Needs a GPU with NVDEC, torch with CUDA and ``PyNvVideoCodec`` (``pip install PyNvVideoCodec``).

    python bench/nvdec.py [--clip cam0.mp4] [--streams 1,32,64,128,160,192] [--seconds 6] [--pipeline-sources 4]
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

NET_HW = (384, 640)


class Stream(threading.Thread):
    """One camera: demux + NVDEC decode in a loop until ``stop``; counts frames, optionally queues copies."""

    def __init__(self, nvc, clip: Path, stop: threading.Event, out: queue.Queue | None) -> None:
        super().__init__(daemon=True)
        self.nvc, self.clip, self.stop, self.out = nvc, clip, stop, out
        self.frames = 0
        self.error = ""
        self.shape: tuple[int, ...] = ()

    def run(self) -> None:
        try:
            cuda_stream = torch.cuda.Stream()
            decoder = None
            while not self.stop.is_set():
                demuxer = self.nvc.CreateDemuxer(filename=str(self.clip))
                if decoder is None:
                    decoder = self.nvc.CreateDecoder(gpuid=0, codec=demuxer.GetNvCodecId(), usedevicememory=True)
                for packet in demuxer:
                    for frame in decoder.Decode(packet):
                        self.frames += 1
                        if self.out is not None:
                            self.hand_over(frame, cuda_stream)
                    if self.stop.is_set():
                        return
        except Exception as exc:  # reported in the table, the other streams go on
            self.error = f"{type(exc).__name__}: {exc}"

    def hand_over(self, frame, cuda_stream: torch.cuda.Stream) -> None:
        with torch.cuda.stream(cuda_stream):
            nv12 = torch.from_dlpack(frame).clone()  # off the decoder's surface before it is reused
        cuda_stream.synchronize()
        self.shape = tuple(nv12.shape)
        while not self.stop.is_set():
            try:
                self.out.put(nv12, timeout=0.1)
                return
            except queue.Full:
                continue


def nv12_to_letterbox(batch: torch.Tensor, height: int) -> torch.Tensor:
    """(N, 1.5H, W) uint8 NV12 -> (N, 3, 384, 640) float RGB in [0, 1], letterboxed (BT.601 limited range)."""
    n, _, width = batch.shape
    scale = min(NET_HW[0] / height, NET_HW[1] / width)
    out_hw = (round(height * scale), round(width * scale))
    y = batch[:, :height].unsqueeze(1).float()
    uv = batch[:, height:].reshape(n, height // 2, width // 2, 2).permute(0, 3, 1, 2).float()
    y = F.interpolate(y, size=out_hw, mode="bilinear", align_corners=False) - 16.0
    uv = F.interpolate(uv, size=out_hw, mode="bilinear", align_corners=False) - 128.0
    u, v = uv[:, :1], uv[:, 1:]
    rgb = torch.cat((1.164 * y + 1.596 * v, 1.164 * y - 0.392 * u - 0.813 * v, 1.164 * y + 2.017 * u), dim=1)
    out = torch.full((n, 3, *NET_HW), 114 / 255, device=batch.device)
    top, left = (NET_HW[0] - out_hw[0]) // 2, (NET_HW[1] - out_hw[1]) // 2
    out[:, :, top : top + out_hw[0], left : left + out_hw[1]] = (rgb / 255.0).clamp_(0, 1)
    return out


def run_case(nvc, clip: Path, n: int, batch: bool, warmup: float, seconds: float) -> dict:
    stop = threading.Event()
    queues = [queue.Queue(maxsize=2) if batch else None for _ in range(n)]
    streams = [Stream(nvc, clip, stop, q) for q in queues]
    for s in streams:
        s.start()
    batches = [0]

    def batcher() -> None:
        cuda_stream = torch.cuda.Stream()
        while not stop.is_set():
            frames = []
            for q in queues:
                while not stop.is_set():
                    try:
                        frames.append(q.get(timeout=0.1))
                        break
                    except queue.Empty:
                        continue
            if len(frames) < n:
                return
            with torch.cuda.stream(cuda_stream):
                tensor = nv12_to_letterbox(torch.stack(frames), height=frames[0].shape[0] * 2 // 3)
            cuda_stream.synchronize()
            assert tensor.shape == (n, 3, *NET_HW)
            batches[0] += 1

    worker = threading.Thread(target=batcher, daemon=True) if batch else None
    if worker is not None:
        worker.start()
    time.sleep(warmup)
    start_frames = [s.frames for s in streams]
    t0 = time.perf_counter()
    time.sleep(seconds)
    counts = [s.frames - f0 for s, f0 in zip(streams, start_frames, strict=True)]
    elapsed = time.perf_counter() - t0
    stop.set()
    for s in streams:
        s.join(timeout=10)
    if worker is not None:
        worker.join(timeout=10)
    errors = sorted({s.error for s in streams if s.error})
    return {
        "mode": "decode+batch" if batch else "decode",
        "streams": n,
        "fps": sum(counts) / elapsed,
        "slowest": min(counts) / elapsed,
        "errors": errors,
    }


def source_round(clip: Path, hwaccel: str, sources: int, frames: int) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of ``sources`` looping FileSources taking ``frames`` frames together."""
    from lanner.pipeline.sources import SourceConfig, open_source

    opened = [open_source(SourceConfig(uri=str(clip), hwaccel=hwaccel, loop=True), i) for i in range(sources)]
    for source in opened:
        source.start()
    wall0, cpu0, n = time.perf_counter(), time.process_time(), 0
    try:
        while n < frames:
            for source in opened:
                if source.get(10.0) is None:
                    raise SystemExit(f"nvdec bench: {source.where} stalled or failed: {source.error}")
                n += 1
    finally:
        for source in opened:
            source.stop()
    return n / (time.perf_counter() - wall0), (time.process_time() - cpu0) / n * 1e3


def compare_sources(clip: Path, sources: int, frames: int, rounds: int) -> None:
    """lanner's FileSource with ``hwaccel: nvdec`` against PyAV on the CPU, alternating rounds."""
    print(f"{sources} FileSources looping {clip.name}, {frames} frames a round (BGR on the host):")
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for hwaccel in ("nvdec", "none"):
            fps, cpu_ms = source_round(clip, hwaccel, sources, frames)
            print(f"  hwaccel={hwaccel:<6} {fps:8.1f} frames/s {cpu_ms:7.2f} CPU ms/frame", flush=True)
            if hwaccel not in best or cpu_ms < best[hwaccel][1]:
                best[hwaccel] = (fps, cpu_ms)
    (nv_fps, nv_cpu), (cpu_fps, cpu_cpu) = best["nvdec"], best["none"]
    print(f"best rounds: CPU per frame PyAV / NVDEC = {cpu_cpu / nv_cpu:.2f}x; frames/s NVDEC / PyAV = "
          f"{nv_fps / cpu_fps:.2f}x")  # fmt: skip


def synthetic_clip(cache: Path) -> Path:
    """10 s of the synthetic traffic world at 1920x1080 30 fps, x264 "veryfast" (B-frames, as IP cameras)."""
    from lanner.data.synth import VideoSynthConfig, generate_videos  # needs PyAV, only when a clip must be made

    clip = cache / "cam0.mp4"
    if not clip.is_file():
        config = VideoSynthConfig(cameras=1, seconds=10, fps=30, width=1920, height=1080, seed=11, preset="veryfast")
        generate_videos(config, cache)
    return clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="an H.264 file (default: a synthetic 1080p30 one)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lanner-bench-nvdec")
    parser.add_argument("--streams", default="1,32,64,128,160,192")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (decoder start-up)")
    parser.add_argument("--modes", default="decode,decode+batch", help="'' to skip the NVDEC stream table")
    parser.add_argument(
        "--pipeline-sources", type=int, default=4, help="FileSources for the nvdec-vs-PyAV run (0: none)"
    )
    parser.add_argument("--source-frames", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not torch.cuda.is_available():  # `make bench` runs every script: say why this one has nothing to measure
        print("nvdec bench: skipped, torch sees no CUDA GPU (run it on a machine with an NVIDIA GPU)")
        return
    try:
        import PyNvVideoCodec as nvc
    except ImportError as exc:
        print(f"nvdec bench: skipped, PyNvVideoCodec is not importable ({exc}); pip install PyNvVideoCodec")
        return
    if args.clip is None:
        args.clip = synthetic_clip(args.cache)
    if not args.clip.is_file():
        raise SystemExit(f"nvdec bench: --clip {args.clip}: no such file (leave --clip out for a synthetic one)")
    version = getattr(nvc, "__version__", "?")
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, PyNvVideoCodec {version}")
    print(f"clip {args.clip} ({args.clip.stat().st_size / 1e6:.1f} MB); {args.seconds:g} s measured per case")
    print(f"{'mode':<13} {'streams':>7} {'frames/s':>9} {'slowest stream':>15} {'real time (30 fps)':>19}")
    best = {}
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        for n in (int(v) for v in args.streams.split(",")):
            r = run_case(nvc, args.clip, n, mode == "decode+batch", args.warmup, args.seconds)
            ok = r["slowest"] >= 30 and not r["errors"]
            if ok:
                best[mode] = max(best.get(mode, 0), n)
            print(f"{r['mode']:<13} {n:7d} {r['fps']:9.1f} {r['slowest']:15.1f} {'yes' if ok else 'no':>19}"
                  + (f"  errors: {r['errors'][:2]}" if r["errors"] else ""), flush=True)  # fmt: skip
            if r["errors"] and n == 1:
                break
    for mode in modes:
        print(f"{mode}: aggregate frames/s / 30 = streams one GPU keeps at 30 fps; most streams tried that kept "
              f"real time: {best.get(mode, 0)}")  # fmt: skip

    if args.pipeline_sources:
        compare_sources(args.clip, args.pipeline_sources, args.source_frames, args.rounds)


if __name__ == "__main__":
    main()
