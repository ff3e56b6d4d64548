"""Pipeline metrics: multi-object tracking quality (CLEAR-MOT, IDF1) and MOTChallenge files.

Example:
    >>> from lanner.pipeline.metrics import evaluate_mot
"""

from lanner.pipeline.metrics.mot import MotFrames, evaluate_mot, mot_frames, read_mot_txt, write_mot_txt

__all__ = ["MotFrames", "evaluate_mot", "mot_frames", "read_mot_txt", "write_mot_txt"]
