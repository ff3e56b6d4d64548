"""Shared setup for the models tests: one torch thread (the CI machine is shared), seeded RNG."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
