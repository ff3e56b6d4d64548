"""A constant-velocity Kalman filter on box state, vectorised over tracks.

State (8): box centre ``x, y``, aspect ratio ``a = w / h``, height ``h``, and their velocities. This is the
parameterisation of DeepSORT and ByteTrack (Zhang et al. 2022, ``yolox/tracker/kalman_filter.py``): the
process and measurement noise scale with the box height, so small far objects and large near ones are
equally smooth. SORT (Bewley et al. 2016) uses ``[x, y, s, r]`` (area and aspect) with fixed noise; the
two are the same constant-velocity model, and one filter keeps both trackers simple.

All functions take ``mean (T, 8)`` and ``cov (T, 8, 8)`` and return new arrays (no per-track loop).

Example:
    >>> import numpy as np
    >>> mean, cov = initiate(xyxy_to_xyah(np.array([[0.0, 0.0, 10.0, 20.0]])))
    >>> mean, cov = predict(mean, cov)
    >>> mean, cov = update(mean, cov, xyxy_to_xyah(np.array([[2.0, 0.0, 12.0, 20.0]])))
    >>> bool(mean[0, 4] > 0)  # it has started to learn the rightward motion
    True
"""

from __future__ import annotations

import numpy as np

# Noise as a fraction of box height (DeepSORT / ByteTrack defaults).
STD_WEIGHT_POSITION = 1.0 / 20
STD_WEIGHT_VELOCITY = 1.0 / 160


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """Corners ``(N, 4)`` to centre x, centre y, aspect ratio w/h, height."""
    xyxy = np.asarray(xyxy, np.float64)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """Centre x, centre y, aspect ratio, height ``(N, >=4)`` to corners ``(N, 4)``."""
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    cx, cy = xyah[:, 0], xyah[:, 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _diagonal(std: np.ndarray) -> np.ndarray:
    """``(T, k)`` standard deviations to ``(T, k, k)`` diagonal covariances."""
    out = np.zeros((*std.shape, std.shape[1]))
    k = np.arange(std.shape[1])
    out[:, k, k] = std**2
    return out


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from measurements ``(T, 4)``: zero velocity, uncertainty scaled by height."""
    h = xyah[:, 3:4]
    mean = np.concatenate([xyah, np.zeros_like(xyah)], axis=1)
    pos, vel = 2 * STD_WEIGHT_POSITION * h, 10 * STD_WEIGHT_VELOCITY * h
    ones = np.ones_like(h)
    std = np.concatenate([pos, pos, 1e-2 * ones, pos, vel, vel, 1e-5 * ones, vel], axis=1)
    return mean, _diagonal(std)


def predict(
    mean: np.ndarray, cov: np.ndarray, dt: int = 1, freeze_height: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Step every track ``dt`` frames ahead under constant velocity.

    ``freeze_height`` (bool per track) zeroes the height velocity first, as ByteTrack does for lost
    tracks (``STrack.multi_predict``) so a coasting box cannot shrink to nothing.
    """
    if len(mean) == 0:
        return mean, cov
    mean = mean.copy()
    if freeze_height is not None:
        mean[freeze_height, 7] = 0.0
    motion = np.eye(8)
    motion[np.arange(4), np.arange(4) + 4] = dt
    h = mean[:, 3:4]
    pos, vel = STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h
    ones = np.ones_like(h)
    std = np.concatenate([pos, pos, 1e-2 * ones, pos, vel, vel, 1e-5 * ones, vel], axis=1)
    mean = mean @ motion.T
    cov = motion @ cov @ motion.T + dt * _diagonal(std)  # process noise grows with the gap
    return mean, cov


def project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The predicted measurement ``(T, 4)`` and its covariance ``(T, 4, 4)`` (adds measurement noise)."""
    h = mean[:, 3:4]
    pos = STD_WEIGHT_POSITION * h
    std = np.concatenate([pos, pos, 1e-1 * np.ones_like(h), pos], axis=1)
    return mean[:, :4], cov[:, :4, :4] + _diagonal(std)


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct every track with its measurement ``(T, 4)`` (one matched box per track)."""
    if len(mean) == 0:
        return mean, cov
    projected_mean, projected_cov = project(mean, cov)
    # Kalman gain K = P H^T S^-1, solved rather than inverted (S is symmetric positive definite).
    gain = np.linalg.solve(projected_cov, np.swapaxes(cov[:, :, :4], 1, 2))  # (T, 4, 8) = K^T
    gain = np.swapaxes(gain, 1, 2)
    innovation = xyah - projected_mean
    mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
    cov = cov - gain @ projected_cov @ np.swapaxes(gain, 1, 2)
    return mean, cov
