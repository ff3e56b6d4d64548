"""Tracking quality behind a real detector: MOTA / IDF1 on held-out synthetic videos (issue 5, "Done when").

``bench/trackers.py`` and ``tests/pipeline/test_tracking_*.py`` measure the trackers on perturbed ground
truth; this script measures what a user gets: decoded frames -> the detector -> ByteTrack, scored against
the renderer's MOTChallenge ground truth with ``lanner.pipeline.metrics.evaluate_mot``.

Videos are rendered with a seed used nowhere else (``--seed``, default 9090). Ground truth is filtered as
MOTChallenge does: boxes flagged "ignore" (``conf`` 0: mostly hidden, or interpolated through occlusion),
boxes of other classes and, with ``--min-height``, boxes too small for the detector's input are *ignored*:
they are not counted as misses, and a track box that overlaps one (IoU >= 0.5) is removed before scoring
instead of counting as a false positive. Rows are printed for ``--min-height 0`` (every considered box)
and for the given height.

    python bench/tracking_detector.py [--model builtin:traffic_detector] [--cameras 5] [--seconds 10]
                                      [--classes car] [--min-height 24] [--conf 0.3] [--track-thresh 0.5]
                                      [--new-track-thresh 0.6]
                                      [--input-size 448x800] [--extra-input-sizes 224x384] [--json out.json]

``--decode pipeline`` feeds the detector what ``lanner run``'s file source gives it (PyAV, YUV pictures
letterboxed from their planes) instead of OpenCV's BGR frames.

``--counts`` also tracks every class and counts line crossings (the videos' own ``lines.json``, each line
``once_per_track`` as in the demo's config, ``lanner/assets/demo.yaml``) against the renderer's
``counts.json``: the demo's count check on videos it was not tuned on.

``--sweep "conf=0.2,0.3;track_thresh=0.4,0.5"`` runs the detector once per video at ``--conf`` (use a low
one, e.g. 0.05: filtering greedy-NMS output at a higher threshold gives exactly NMS at that threshold), keeps
the detections in ``/tmp/lanner_bench_tracking``, and scores every combination of the listed values
(``conf`` plus any ByteTrack config key) with the mean MOTA / IDF1 over the videos, best MOTA first.
Tune on development seeds, then score the winner once on a seed never used before.

``--input-size HxW`` runs the detector at another network input (``primary.input_size``; default: the
size the model was exported at); ``--extra-input-sizes`` (comma-separated) also runs it at those sizes and
merges the boxes by NMS (``primary.extra_input_sizes``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanner.core.assets import resolve_asset
from lanner.core.detections import Detections
from lanner.data.synth.mot import read_gt
from lanner.data.synth.video import VideoSynthConfig, generate_videos
from lanner.data.synth.world import CLASSES  # gt.txt's class column is 1 + an index into this
from lanner.pipeline.analytics import LineConfig
from lanner.pipeline.analytics.lines import LineCrossing
from lanner.pipeline.infer import Detector, DetectorConfig
from lanner.pipeline.metrics import evaluate_mot
from lanner.pipeline.sources import SourceConfig, open_source
from lanner.pipeline.track import create_tracker
from lanner.pipeline.track.matching import box_iou

CACHE = Path("/tmp/lanner_bench_tracking")


def render(cameras: int, seconds: float, seed: int) -> list[Path]:
    out = CACHE / f"seed{seed}_{cameras}x{seconds:g}s"
    paths = [out / f"cam{i}.mp4" for i in range(cameras)]
    if not all(p.is_file() for p in paths):
        config = VideoSynthConfig(cameras=cameras, seconds=seconds, fps=30, width=1280, height=720, seed=seed)
        paths = generate_videos(config, out, workers=1)
    return paths


def decoded_images(path: Path, decode: str) -> Iterator[Any]:
    """Every frame of ``path``: OpenCV's BGR arrays (``opencv``), or what ``lanner run``'s file source hands
    the detector (``pipeline``: PyAV, YUV pictures letterboxed from their planes)."""
    if decode == "opencv":
        capture = cv2.VideoCapture(str(path))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield frame
        capture.release()
        return
    source = open_source(SourceConfig(uri=str(path), queue_size=8), 0)
    source.start()
    while (item := source.get(timeout_s=30.0)) is not None:
        yield item.frame.decoded
    if source.error is not None:
        raise source.error


def detected_frames(path: Path, detector: Detector, batch: int = 4, decode: str = "opencv") -> Iterator[Detections]:
    """The detector's output (all classes) for every frame of ``path``, in order, run ``batch`` frames at a time."""
    frames: list[Any] = []
    for frame in decoded_images(path, decode):
        frames.append(frame)
        if len(frames) == batch:
            yield from detector.detect(frames)
            frames = []
    if frames:
        yield from detector.detect(frames)


def track_video(
    path: Path,
    detector: Detector,
    class_ids: list[int],
    tracker_config: dict[str, float],
    batch: int = 4,
    decode: str = "opencv",
) -> list[Detections]:
    """Per-frame ByteTrack output (boxes of ``class_ids`` only) for every frame of ``path``."""
    tracker, out = create_tracker("bytetrack", tracker_config), []
    for detections in detected_frames(path, detector, batch, decode):
        out.append(tracker.update(detections[np.isin(detections.class_id, class_ids)], len(out)))
    return out


def detect_video(path: Path, detector: Detector, key: str, decode: str = "opencv") -> list[Detections]:
    """Every frame's detections (all classes) of ``path``, cached as ``<CACHE>/dets_<key>/<video>.npz``."""
    cache = CACHE / f"dets_{key}" / f"{path.parent.name}_{path.stem}.npz"
    if cache.is_file():
        data = np.load(cache)
        ends = data["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        return [
            Detections(xyxy=data["xyxy"][a:b], confidence=data["confidence"][a:b], class_id=data["class_id"][a:b])
            for a, b in zip(starts, ends, strict=True)
        ]
    found = list(detected_frames(path, detector, decode=decode))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        xyxy=np.concatenate([d.xyxy for d in found]).astype(np.float32),
        confidence=np.concatenate([d.confidence for d in found]).astype(np.float32),
        class_id=np.concatenate([d.class_id for d in found]).astype(np.int64),
        ends=np.cumsum([len(d) for d in found]),
    )
    return found


def sweep(
    paths: list[Path], detector: Detector, key: str, grid: str, class_ids: list[int], min_height: float, decode: str
) -> None:
    """Score every combination of ``grid`` ("name=v1,v2;name=...") on cached detections; best mean MOTA first."""
    import itertools

    axes = [(name.strip(), [float(v) for v in values.split(",")]) for name, values in
            (item.split("=") for item in grid.split(";") if item.strip())]  # fmt: skip
    videos = [(p, detect_video(p, detector, key, decode)) for p in paths]
    results = []
    for combo in itertools.product(*(values for _, values in axes)):
        setting = dict(zip((name for name, _ in axes), combo, strict=True))
        conf = setting.pop("conf", 0.0)
        tracker_config = {k: int(v) if k == "track_buffer" else v for k, v in setting.items()}
        try:
            metrics = []
            for path, dets in videos:
                tracker = create_tracker("bytetrack", tracker_config)
                tracks = [tracker.update(d[(d.confidence >= conf) & np.isin(d.class_id, class_ids)], i)
                          for i, d in enumerate(dets)]  # fmt: skip
                metrics.append(score(path.with_suffix("") / "gt" / "gt.txt", tracks, class_ids, min_height))
        except Exception as exc:  # an invalid combination (e.g. track_low_thresh >= track_thresh)
            print(f"skip {setting | {'conf': conf}}: {exc}")
            continue
        mota = float(np.mean([m["mota"] for m in metrics]))
        idf1 = float(np.mean([m["idf1"] for m in metrics]))
        results.append((mota, idf1, {"conf": conf, **tracker_config}))
    for mota, idf1, setting in sorted(results, key=lambda r: -r[0]):
        print(f"MOTA {mota:.3f}  IDF1 {idf1:.3f}  {setting}")


def score(gt_path: Path, tracks: list[Detections], class_ids: list[int], min_height: float) -> dict[str, float]:
    """MOT metrics of ``tracks`` against the considered, large-enough ground truth of ``class_ids``."""
    truth = read_gt(gt_path, num_frames=len(tracks))
    gt_frames, hyp_frames = {}, {}
    for f, (g, h) in enumerate(zip(truth, tracks, strict=True)):
        height = g.xyxy[:, 3] - g.xyxy[:, 1]
        kept = (g.confidence >= 1) & np.isin(g.class_id, class_ids) & (height >= min_height)
        gt_frames[f] = (g.tracker_id[kept], g.xyxy[kept].astype(np.float64))
        ignored = g.xyxy[~kept]
        drop = np.zeros(len(h), bool)
        if len(h) and len(ignored):
            iou = box_iou(h.xyxy, g.xyxy)  # against every ground-truth box: ignore only the best match
            best = iou.argmax(1)
            drop = (iou.max(1) >= 0.5) & ~kept[best]
        ids = h.tracker_id if h.tracker_id is not None else np.zeros(len(h), np.int64)
        hyp_frames[f] = (ids[~drop], h.xyxy[~drop].astype(np.float64))
    return evaluate_mot(gt_frames, hyp_frames)


def count_lines(
    path: Path, detector: Detector, tracker_config: dict[str, float], decode: str = "opencv"
) -> tuple[int, int]:
    """(counted, true) line crossings of one video: every class tracked, each line once per track."""
    folder = path.with_suffix("")
    meta = json.loads((folder / "lines.json").read_text())
    lines = [LineConfig(name=x["name"], p1=x["p1_xy"], p2=x["p2_xy"], once_per_track=True) for x in meta["lines"]]
    crossing = LineCrossing(lines, CLASSES)
    all_classes = list(range(len(CLASSES)))
    for index, tracks in enumerate(track_video(path, detector, all_classes, tracker_config, decode=decode)):
        crossing.update(tracks, index)
    truth = json.loads((folder / "counts.json").read_text())
    counted = sum(c["in"] + c["out"] for c in crossing.counts.values())
    return counted, sum(truth[x["name"]]["in"] + truth[x["name"]]["out"] for x in meta["lines"])


def parse_size(text: str) -> tuple[int, int]:
    """``"448x800"`` -> ``(448, 800)`` (height x width)."""
    height, width = text.lower().split("x")
    return int(height), int(width)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:traffic_detector")
    p.add_argument("--cameras", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--seed", type=int, default=9090)
    p.add_argument("--classes", default="car", help="comma-separated class names scored (world classes)")
    p.add_argument("--min-height", type=float, default=24.0, help="ground truth shorter than this is ignored")
    p.add_argument("--conf", type=float, default=0.3)
    p.add_argument("--track-thresh", type=float, default=None, help="ByteTrack track_thresh (default: its own)")
    p.add_argument("--new-track-thresh", type=float, default=None, help="ByteTrack new_track_thresh (default: its own)")
    p.add_argument("--input-size", default=None, help="detector network input HxW (default: the model's own)")
    p.add_argument("--extra-input-sizes", default="", help="more network inputs HxW,HxW (merged by NMS)")
    p.add_argument("--counts", action="store_true", help="also count line crossings vs counts.json")
    p.add_argument("--sweep", default="", help='score a grid on cached detections: "conf=0.2,0.3;track_thresh=0.4,0.5"')
    p.add_argument("--decode", choices=["opencv", "pipeline"], default="opencv",
                   help="frames from OpenCV (BGR) or as lanner run's file source gives them")  # fmt: skip
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    class_ids = [CLASSES.index(c) for c in args.classes.split(",")]
    size = parse_size(args.input_size) if args.input_size else None
    extra = [parse_size(s) for s in args.extra_input_sizes.split(",") if s]
    config = DetectorConfig(
        model=str(resolve_asset(args.model)), conf_threshold=args.conf, input_size=size, extra_input_sizes=extra
    )
    detector = Detector(config)
    if args.sweep:
        key = f"{Path(config.model).stem}_{args.input_size}_{args.extra_input_sizes}_{args.conf:g}_{args.decode}"
        paths = render(args.cameras, args.seconds, args.seed)
        sweep(paths, detector, key.replace(",", "+"), args.sweep, class_ids, args.min_height, args.decode)
        return
    rows = []
    for path in render(args.cameras, args.seconds, args.seed):
        tracker_config = {k: v for k, v in (("track_thresh", args.track_thresh),
                          ("new_track_thresh", args.new_track_thresh)) if v is not None}  # fmt: skip
        tracks = track_video(path, detector, class_ids, tracker_config, decode=args.decode)
        gt = path.with_suffix("") / "gt" / "gt.txt"
        for min_height in sorted({0.0, args.min_height}):
            m = score(gt, tracks, class_ids, min_height)
            rows.append({"video": path.stem, "min_height": min_height, **{k: float(v) for k, v in m.items()}})
            print(
                f"{path.stem} min_height {min_height:>4g}: {int(m['num_objects']):>6} boxes  MOTA {m['mota']:.3f}  "
                f"IDF1 {m['idf1']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
                f"IDSW {int(m['num_switches'])}",
                flush=True,
            )
        if args.counts:
            counted, true = count_lines(path, detector, tracker_config, args.decode)
            rows.append({"video": path.stem, "counted": counted, "true": true})
            print(f"{path.stem} line crossings: {counted} counted, {true} true", flush=True)
    if args.counts:
        counted, true = (sum(r.get(k, 0) for r in rows) for k in ("counted", "true"))
        print(f"line crossings over all videos: {counted} counted, {true} true ({abs(counted - true) / true:.1%} off)")
    for min_height in sorted({0.0, args.min_height}):
        sel = [r for r in rows if r.get("min_height") == min_height]
        print(
            f"mean over {len(sel)} videos, min_height {min_height:g}: MOTA {np.mean([r['mota'] for r in sel]):.3f}  "
            f"IDF1 {np.mean([r['idf1'] for r in sel]):.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
