"""Learning-rate schedules as pure functions of the step: ``lr = base_lr * factor(step)``.

* ``cosine``: quadratic warm-up from 0 over ``warmup_epochs`` (YOLOX's "yoloxwarmcos"), then cosine
  annealing to ``min_lr_ratio`` at the last step.
* ``soft_start``: TAO's soft-start annealing: exponential ramp from ``min_lr_ratio`` to 1 over the
  first ``soft_start`` fraction, flat, then exponential decay back to ``min_lr_ratio`` over the last
  ``annealing`` fraction.

Being stateless (the step is the state), a resumed run lands on the exact same learning rate.

Example:
    >>> from lanner.train.spec import TrainingSection
    >>> schedule = LRSchedule(TrainingSection(epochs=10, warmup_epochs=1), steps_per_epoch=100)
    >>> round(schedule.factor(50), 3), schedule.factor(100), round(schedule.factor(1000), 3)
    (0.25, 1.0, 0.05)
"""

from __future__ import annotations

import math

import torch

from lanner.train.spec import TrainingSection


class LRSchedule:
    """``factor(step)`` for a run of ``epochs * steps_per_epoch`` steps; ``apply`` sets the optimizer's lrs."""

    def __init__(self, section: TrainingSection, steps_per_epoch: int) -> None:
        self.section = section
        self.total = max(1, section.epochs * steps_per_epoch)
        self.warmup = round(section.warmup_epochs * steps_per_epoch)

    def factor(self, step: int) -> float:
        s, low = self.section, self.section.min_lr_ratio
        t = min(step, self.total) / self.total
        if s.schedule == "soft_start":
            low = max(low, 1e-6)  # exponential ramps need a non-zero floor
            if t < s.soft_start:
                return low ** (1 - t / s.soft_start)
            if t > 1 - s.annealing:
                return low ** ((t - (1 - s.annealing)) / max(s.annealing, 1e-12))
            return 1.0
        if step < self.warmup:
            return (step / self.warmup) ** 2
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's ``lr = base lr * lr_mult * factor(step)``; returns the factor."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = self.section.lr * group.get("lr_mult", 1.0) * factor
        return factor
