"""The synthetic traffic world: procedurally rendered, labelled street scenes from fixed cameras.

``world`` (camera, street, actors), ``render`` (draw + label), ``images`` / ``crops`` (datasets) and
``video`` (labelled MP4 sequences). Nothing is downloaded: tests and demos render their own data.
"""

from lanner.data.synth.images import SynthConfig, generate_images
from lanner.data.synth.lines import (
    CountLine,
    Crossing,
    LineCounter,
    auto_lines,
    count_crossings,
    read_lines,
    write_lines,
)
from lanner.data.synth.mot import SeqInfo, read_gt, read_seqinfo, write_gt, write_seqinfo
from lanner.data.synth.render import random_actors, render
from lanner.data.synth.traffic import Traffic
from lanner.data.synth.video import VideoSynthConfig, generate_videos
from lanner.data.synth.world import BODY_TYPES, CLASSES, COLORS, Actor, ActorBox, Scene, make_actor, random_scene

__all__ = [
    "BODY_TYPES",
    "CLASSES",
    "COLORS",
    "Actor",
    "ActorBox",
    "CountLine",
    "Crossing",
    "LineCounter",
    "Scene",
    "SeqInfo",
    "SynthConfig",
    "Traffic",
    "VideoSynthConfig",
    "auto_lines",
    "count_crossings",
    "generate_images",
    "generate_videos",
    "make_actor",
    "random_actors",
    "random_scene",
    "read_gt",
    "read_lines",
    "read_seqinfo",
    "render",
    "write_gt",
    "write_lines",
    "write_seqinfo",
]
