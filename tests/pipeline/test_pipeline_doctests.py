"""The examples in the tracking and metrics docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lanner.pipeline.track",
    "lanner.pipeline.track.base",
    "lanner.pipeline.track.kalman",
    "lanner.pipeline.track.matching",
    "lanner.pipeline.track.iou",
    "lanner.pipeline.track.sort",
    "lanner.pipeline.track.bytetrack",
    "lanner.pipeline.metrics",
    "lanner.pipeline.metrics.mot",
    "lanner.pipeline.deepstream_analytics",
    "lanner.pipeline.deepstream_ini",
    "lanner.pipeline.analytics.config",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
