"""A real RTSP stream that dies and comes back: the source reconnects, frames resume, others go on.

No RTSP server ships with this environment (no ffmpeg/mediamtx binary), so ``TinyRtspServer`` below is
one: RTSP/1.0 over TCP (OPTIONS, DESCRIBE, SETUP with interleaved transport, PLAY, TEARDOWN), H.264 in
RTP per RFC 6184 (single NAL unit packets and FU-A fragments) interleaved on the RTSP connection
(RFC 2326 section 10.12). Every session streams the same numbered frames from a keyframe, paced at
``pace_fps``; RTP timestamps advance 1/30 s a frame. ``kill()`` drops the listener and every client;
``revive()`` listens on the same port again.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import struct
import threading
import time
from fractions import Fraction

import av
import pytest
from test_sources_media import frame_image, frame_number, write_video

from lanner.pipeline.mux import MuxConfig, Muxer
from lanner.pipeline.sources import RtspSource, SourceConfig, open_source

RTP_MTU = 1400
CLOCK = 90_000


def encode_access_units(frames: int, first: int = 0, fps: int = 30) -> list[list[bytes]]:
    """H.264 NAL units (no start codes) of frames numbered from ``first``; SPS/PPS precede every keyframe."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 48, "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.options = {"crf": "12", "g": "10", "bf": "0", "tune": "zerolatency", "repeat-headers": "1"}
    units = []
    for i in range(frames + 1):
        frame = None
        if i < frames:
            frame = av.VideoFrame.from_ndarray(frame_image(first + i)[:, :, ::-1].copy(), format="rgb24")
            frame.pts = i
        for packet in codec.encode(frame):
            units.append(split_annexb(bytes(packet)))
    return units


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream."""
    parts, i, starts = [], 0, []
    while (i := data.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(i + 3)
        i += 3
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        parts.append(data[start:end].rstrip(b"\x00") if k + 1 < len(starts) else data[start:end])
    return [p for p in parts if p]


def rtp_packets(nal: bytes, seq: int, ts: int, last: bool) -> list[bytes]:
    """RFC 6184 packets for one NAL unit: whole when it fits, else FU-A fragments."""

    def header(marker: bool, n: int) -> bytes:
        return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, n & 0xFFFF, ts & 0xFFFFFFFF, 0x1A2B3C4D)

    if len(nal) <= RTP_MTU:
        return [header(last, seq) + nal]
    indicator, kind, body = (nal[0] & 0xE0) | 28, nal[0] & 0x1F, nal[1:]
    chunks = [body[i : i + RTP_MTU] for i in range(0, len(body), RTP_MTU)]
    out = []
    for k, chunk in enumerate(chunks):
        first, end = k == 0, k == len(chunks) - 1
        fu = (0x80 if first else 0) | (0x40 if end else 0) | kind
        out.append(header(last and end, seq + k) + bytes([indicator, fu]) + chunk)
    return out


class TinyRtspServer:
    """Serve clips (lists of access units) over RTSP/TCP at ``pace_fps`` (see the module docstring).

    Session ``k`` loops ``clips[min(k, len(clips) - 1)]``, so a test can tell a new session's frames.
    """

    def __init__(self, clips: list[list[list[bytes]]], pace_fps: float = 120.0) -> None:
        self.clips, self.pace_fps = clips, pace_fps
        units = clips[0]
        sps = next(n for au in units for n in au if n[0] & 0x1F == 7)
        pps = next(n for au in units for n in au if n[0] & 0x1F == 8)
        self.sprop = f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}"
        self.port = 0
        self.sessions = 0
        self._clients: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.revive()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def revive(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def kill(self) -> None:
        """The camera dies: no listener, every connection reset."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in self._clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._clients.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self._clients.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while (request := read_request(reader)) is not None:
                method, headers = request
                cseq = headers.get("cseq", "0")
                if method == "PLAY":
                    self._reply(conn, cseq, {"Session": "1234", "Range": "npt=0.000-"})
                    clip = self.clips[min(self.sessions, len(self.clips) - 1)]
                    self.sessions += 1
                    threading.Thread(target=self._stream, args=(conn, clip), daemon=True).start()
                elif method == "DESCRIBE":
                    sdp = (
                        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=lanner\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={self.sprop}\r\na=control:track0\r\n"
                    )
                    self._reply(conn, cseq, {"Content-Base": self.url + "/", "Content-Type": "application/sdp"}, sdp)
                elif method == "SETUP":
                    self._reply(conn, cseq, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1", "Session": "1234"})
                else:  # OPTIONS, GET_PARAMETER, TEARDOWN, ...
                    self._reply(conn, cseq, {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"})
        except OSError:
            pass

    def _reply(self, conn: socket.socket, cseq: str, headers: dict, body: str = "") -> None:
        lines = ["RTSP/1.0 200 OK", f"CSeq: {cseq}", *(f"{k}: {v}" for k, v in headers.items())]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n" + body).encode())

    def _stream(self, conn: socket.socket, clip: list[list[bytes]]) -> None:
        seq, t0 = 0, time.monotonic()
        try:
            for i in range(10**6):
                units = clip[i % len(clip)]
                ts = i * CLOCK // 30
                for k, nal in enumerate(units):
                    for packet in rtp_packets(nal, seq, ts, last=k == len(units) - 1):
                        conn.sendall(b"$\x00" + struct.pack("!H", len(packet)) + packet)
                        seq += 1
                time.sleep(max(0.0, t0 + (i + 1) / self.pace_fps - time.monotonic()))
        except OSError:
            return


def read_request(reader) -> tuple[str, dict] | None:
    """One RTSP request (skipping interleaved RTCP the client sends); ``None`` at EOF."""
    while True:
        first = reader.read(1)
        if not first:
            return None
        if first == b"$":
            channel_len = reader.read(3)
            reader.read(struct.unpack("!H", channel_len[1:])[0])
            continue
        line = first + reader.readline()
        if not line.strip():
            continue
        headers, body_len = {}, 0
        while (h := reader.readline()).strip():
            key, _, value = h.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        body_len = int(headers.get("content-length", 0))
        if body_len:
            reader.read(body_len)
        return line.decode().split()[0], headers


@pytest.fixture(scope="module")
def clips() -> list[list[list[bytes]]]:
    """Frames 0-29 for the first session, 100-129 for every later one."""
    return [encode_access_units(30), encode_access_units(30, first=100)]


def take(source, n: int, timeout_s: float = 20.0) -> list:
    frames = []
    for _ in range(n):
        item = source.get(timeout_s)
        assert item is not None, f"no frame; state {source.state}, error {source.error}"
        frames.append(item.frame)
    return frames


def test_rtp_packetization_round_trips_fragments() -> None:
    nal = bytes([0x65]) + bytes(range(256)) * 12  # an IDR slice larger than the MTU
    packets = rtp_packets(nal, seq=7, ts=3000, last=True)
    assert len(packets) == 3 and [struct.unpack("!H", p[2:4])[0] for p in packets] == [7, 8, 9]
    assert [p[1] >> 7 for p in packets] == [0, 0, 1]  # marker only on the last fragment of the frame
    assert bytes([(packets[0][12] & 0xE0) | (packets[0][13] & 0x1F)]) + b"".join(p[14:] for p in packets) == nal


@pytest.mark.slow
def test_rtsp_server_dies_and_returns(clips, tmp_path) -> None:
    server = TinyRtspServer(clips)
    cfg = SourceConfig(
        uri=server.url,
        name="gate",
        reconnect_interval_s=0.05,
        reconnect_max_interval_s=0.2,
        timeout_s=2.0,
        queue_size=64,
    )
    camera = open_source(cfg, 0)
    assert isinstance(camera, RtspSource) and camera.live
    clip = open_source(SourceConfig(uri=str(write_video(tmp_path / "clip.mp4", frames=60))), 1)
    mux = Muxer(MuxConfig(batch_size=2, batched_push_timeout_ms=10))
    mux.add_source(camera)
    mux.add_source(clip)
    mux.start()
    got: dict[int, list] = {0: [], 1: []}

    def pump(until) -> None:
        deadline = time.monotonic() + 30
        while not until():
            assert time.monotonic() < deadline, f"stalled: {mux.stats()}"
            batch = mux.next_batch(timeout_s=1.0)
            for f in batch.frames if batch else []:
                got[f.source_id].append(f)

    pump(lambda: len(got[0]) >= 12)
    assert camera.info.codec == "h264" and (camera.info.width, camera.info.height) == (64, 48)
    server.kill()
    time.sleep(0.3)  # the camera is away for a while: the source backs off and retries
    server.revive()

    def resumed() -> int:
        numbers = [frame_number(f.image) for f in got[0]]
        return len(numbers) - numbers.index(100) if 100 in numbers else 0

    pump(lambda: resumed() >= 12 and clip.exhausted)
    camera.stop()
    numbers = [frame_number(f.image) for f in got[0]]
    assert numbers[:12] == list(range(12)) and camera.reconnects >= 1 and server.sessions >= 2
    new = numbers[numbers.index(100) :]
    assert new[:12] == list(range(100, 112)) and camera.error is None  # the new session, from its keyframe
    assert all(n < 30 for n in numbers[: numbers.index(100)])
    assert [f.frame_idx for f in got[0]] == sorted({f.frame_idx for f in got[0]})
    pts = [f.pts_ns for f in got[0]]
    assert all(b > a for a, b in itertools.pairwise(pts)), (pts, numbers)
    assert [frame_number(f.image) for f in got[1]] == list(range(60)) and clip.state == "eos"  # unaffected


def test_unreachable_camera_fails_with_one_line_and_others_finish(tmp_path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = SourceConfig(uri=f"rtsp://127.0.0.1:{port}/cam", name="door", reconnect_interval_s=0.01, reconnect_attempts=2)
    clip = open_source(SourceConfig(uri=str(write_video(tmp_path / "clip.mp4", frames=15))), 1)
    mux = Muxer(MuxConfig(batch_size=2, batched_push_timeout_ms=5))
    mux.add_source(open_source(cfg, 0))
    mux.add_source(clip)
    mux.start()
    frames, failed = [], {}
    while not mux.done:
        batch = mux.next_batch(timeout_s=10)
        frames += batch.frames
        failed.update(batch.meta["failed"])
    assert [frame_number(f.image) for f in frames] == list(range(15)) and list(failed) == [0]
    assert failed[0].startswith(f"source 0 'door' (rtsp://127.0.0.1:{port}/cam): cannot open")
    assert "gave up after 2 reconnect attempts" in failed[0] and "\n" not in failed[0]
