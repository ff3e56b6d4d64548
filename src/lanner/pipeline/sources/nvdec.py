"""``hwaccel: nvdec``: files decoded on the GPU's NVDEC through PyNvVideoCodec.

``hwaccel: cuda`` asks PyAV's FFmpeg for NVDEC; ``nvdec`` uses NVIDIA's own Python bindings of the Video
Codec SDK instead (``pip install "lanner[nvdec]"``: PyNvVideoCodec, with torch for CUDA), the path measured
on an H200. The demuxer is PyNvVideoCodec's, the decoder writes NV12 into GPU memory, each frame is turned
into BGR on the GPU (``nv12_to_bgr``, BT.601 limited range as OpenCV's ``COLOR_YUV2BGR_NV12``) and copied to
host memory, where the rest of the pipeline takes it. Timestamps count frames at the container's frame rate.
Unlike the PyAV path, a truncated file ends the source early without the "truncated" error (PyNvVideoCodec's
demuxer announces no frame count to check against).

Measured on one H200 (docs/benchmarks.md, ``bench/nvdec.py``): NVDEC decodes about 4470 frames/s of 1080p
H.264, 128 streams at 30 fps each.

Example:
    >>> reader = NvdecReader("cam0.mp4", gpu_id=0, where="source 0")  # doctest: +SKIP
    >>> pts_ns, bgr = next(reader.frames())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np

from lanner.core.errors import SourceError

NVDEC_FIX = 'pip install "lanner[nvdec]" (torch must be a CUDA build; `lanner env` checks), or hwaccel: none'
# BT.601 limited range, OpenCV's YUV->RGB integer coefficients (ITU-R BT.601, scaled by 2^20)
_CY, _CRV, _CGU, _CGV, _CBU = 1220542, 1673527, -409993, -852492, 2116026


def load_nvc(where: str) -> Any:
    """The ``PyNvVideoCodec`` module, or one ``SourceError`` line saying how to get it."""
    try:
        import PyNvVideoCodec as nvc
    except ImportError as exc:  # also a broken install: its native library fails to load
        raise SourceError(f"hwaccel: nvdec needs PyNvVideoCodec ({exc})", where=where, fix=NVDEC_FIX) from None
    return nvc


def cuda_devices() -> int:
    """How many CUDA GPUs torch sees (0 without torch or without a CUDA build)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def nv12_to_bgr(nv12: Any, height: int) -> Any:
    """A ``(1.5*H, W)`` uint8 NV12 torch tensor -> ``(H, W, 3)`` uint8 BGR, on the tensor's device.

    Integer arithmetic with OpenCV's coefficients and rounding, chroma repeated over each 2x2 block: the
    result equals ``cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)`` (tested).
    """
    import torch

    width = nv12.shape[1]
    y = nv12[:height].to(torch.int32)
    uv = nv12[height : height + height // 2].reshape(height // 2, width // 2, 2).to(torch.int32) - 128
    uv = uv.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)
    u, v = uv[..., 0], uv[..., 1]
    yy = (y - 16).clamp_(min=0) * _CY
    half = 1 << 19
    b = (yy + _CBU * u + half) >> 20
    g = (yy + _CGU * u + _CGV * v + half) >> 20
    r = (yy + _CRV * v + half) >> 20
    return torch.stack((b, g, r), dim=-1).clamp_(0, 255).to(torch.uint8)


class NvdecReader:
    """One pass over a file on NVDEC: ``frames()`` yields ``(pts_ns, image_bgr)``.

    Construction opens the file and the decoder, so a missing package, a GPU that is not there or a codec
    NVDEC cannot decode fails at once, with one line.
    """

    def __init__(self, path: str, gpu_id: int, where: str) -> None:
        nvc = load_nvc(where)
        self.gpu_id = gpu_id
        visible = cuda_devices()
        if gpu_id >= visible:
            fix = f"use gpu_id below {visible}, or hwaccel: none" if visible else NVDEC_FIX
            message = f"hwaccel: nvdec on GPU {gpu_id}, but {visible} CUDA GPU(s) are visible"
            raise SourceError(message, where=where, fix=fix)
        try:
            self.demuxer = nvc.CreateDemuxer(filename=path)
            codec = self.demuxer.GetNvCodecId()
            self.decoder = nvc.CreateDecoder(gpuid=gpu_id, codec=codec, usedevicememory=True)
            self.width, self.height = int(self.demuxer.Width()), int(self.demuxer.Height())
            self.fps = float(self.demuxer.FrameRate()) or None
        except Exception as exc:  # PyNvVideoCodec raises its own exception types, all with a message
            raise SourceError(f"cannot start NVDEC decode on GPU {gpu_id}: {exc}", where=where,
                              fix="check that the file plays (ffprobe FILE) and that NVDEC decodes its codec; "
                                  "or set hwaccel: none") from None  # fmt: skip

    def frames(self, fallback_fps: float) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame of the file as ``(pts_ns, HxWx3 uint8 BGR)``; pts from the frame count and rate."""
        import torch

        period_ns = 1e9 / (self.fps or fallback_fps)
        count = 0
        with torch.cuda.device(self.gpu_id) if torch.cuda.is_available() else nullcontext():
            for packet in self.demuxer:
                for frame in self.decoder.Decode(packet):
                    nv12 = torch.from_dlpack(frame)
                    if nv12.shape[0] * 2 != self.height * 3:  # a decoder that pads rows: crop both planes
                        luma_rows = nv12.shape[0] * 2 // 3
                        nv12 = torch.cat((nv12[: self.height], nv12[luma_rows : luma_rows + self.height // 2]))
                    image = nv12_to_bgr(nv12, self.height).cpu().numpy()
                    yield round(count * period_ns), image
                    count += 1
