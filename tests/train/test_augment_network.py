"""Training never touches the network: albumentations' import-time PyPI version check is switched off."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import socket
tried = []
def refuse(*args, **kwargs):
    tried.append(args[:1])
    raise OSError("no network here")
socket.getaddrinfo = refuse
socket.create_connection = refuse
from lanner.train.augment import Augment
from lanner.train.spec import AugmentationSection
Augment(AugmentationSection())
print("network calls:", tried)
"""


def test_building_the_augmentation_asks_nothing_of_the_network() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "network calls: []" in done.stdout, done.stdout + done.stderr
