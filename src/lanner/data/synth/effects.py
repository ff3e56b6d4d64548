"""Image-space effects: light glows, rain, blur, sensor noise and JPEG artefacts.

Everything random here is a crop of a texture made once per image size (and cached for the process)
at a random offset: a full-frame ``rng.normal`` per frame would cost more than drawing the scene.
Each effect is one or two cv2 calls on uint8 images (``addWeighted`` saturates, so no float copies).

Example:
    >>> img = np.full((48, 64, 3), 100, np.uint8)
    >>> out = apply_conditions(img, Conditions("day", 0.5, 1.0, 4.0, 60), np.random.default_rng(0))
    >>> out.shape, out.dtype
    ((48, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from lanner.data.synth.world import Conditions

MARGIN = 64  # textures are this much larger than the frame so a random offset gives a fresh crop
NOISE_STD = 24.0  # std of the cached noise texture; conditions scale it down with addWeighted's alpha


@functools.lru_cache(maxsize=1)
def glow_sprite() -> np.ndarray:
    """A 65x65 float32 radial falloff in 0..1 (Gaussian core plus a soft halo), drawn once."""
    r = np.linspace(-1.0, 1.0, 65, dtype=np.float32)
    d2 = r[None, :] ** 2 + r[:, None] ** 2
    return np.clip(np.exp(-d2 * 9.0) + 0.25 * np.exp(-d2 * 3.0) - 0.0125, 0.0, 1.0).astype(np.float32)


def add_glow(image: np.ndarray, centre: tuple[float, float], radius_px: float, color, strength: float = 1.0) -> None:
    """Add a light's halo around ``centre`` in place (saturating), clipped to the image."""
    size = int(2 * radius_px) | 1
    if size < 3:
        return
    h, w = image.shape[:2]
    x0, y0 = int(centre[0]) - size // 2, int(centre[1]) - size // 2
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    sprite = cv2.resize(glow_sprite(), (size, size), interpolation=cv2.INTER_LINEAR)
    sprite = sprite[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    patch = (sprite[..., None] * (np.asarray(color, np.float32) * strength)).astype(np.uint8)
    roi = image[iy0:iy1, ix0:ix1]
    cv2.add(roi, patch, dst=roi)


@functools.lru_cache(maxsize=4)
def noise_texture(height: int, width: int) -> np.ndarray:
    """Sensor noise around 128 with std ``NOISE_STD``: mostly luminance, a little chroma."""
    rng = np.random.default_rng(12345)
    shape = (height + MARGIN, width + MARGIN)
    luma = rng.normal(0.0, NOISE_STD * 0.85, shape)[..., None]
    chroma = rng.normal(0.0, NOISE_STD * 0.5, (*shape, 3))
    return np.clip(128 + luma + chroma, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def rain_texture(height: int, width: int) -> np.ndarray:
    """Bright, slanted, slightly blurred streaks on black (grayscale, 3 channels)."""
    rng = np.random.default_rng(54321)
    h, w = height + MARGIN, width + MARGIN
    tex = np.zeros((h, w), np.uint8)
    n = int(h * w / 900)
    x0, y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
    length = rng.uniform(0.02, 0.06, n) * height
    slant = rng.normal(0.25, 0.05)
    levels = rng.integers(90, 220, n)
    for xa, ya, ln, lv in zip(x0, y0, length, levels, strict=True):
        cv2.line(tex, (int(xa), int(ya)), (int(xa + slant * ln), int(ya + ln)), int(lv), 1, cv2.LINE_AA)
    return cv2.cvtColor(cv2.GaussianBlur(tex, (3, 3), 0), cv2.COLOR_GRAY2BGR)


def _crop(texture: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    dy, dx = (int(v) for v in rng.integers(0, MARGIN, 2))
    return texture[dy : dy + height, dx : dx + width]


def apply_conditions(image: np.ndarray, conditions: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Rain, blur, noise and JPEG artefacts of ``conditions``, in the order a camera adds them."""
    h, w = image.shape[:2]
    if conditions.rain > 0:
        haze = 18.0 * conditions.rain
        tex = _crop(rain_texture(h, w), h, w, rng)
        image = cv2.addWeighted(image, 1.0 - 0.2 * conditions.rain, tex, 0.55 * conditions.rain, haze)
    if conditions.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), conditions.blur)
    if conditions.noise > 0:
        alpha = conditions.noise / NOISE_STD
        image = cv2.addWeighted(image, 1.0, _crop(noise_texture(h, w), h, w, rng), alpha, -128.0 * alpha)
    if conditions.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(conditions.jpeg_quality)])
        if ok:
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image)
