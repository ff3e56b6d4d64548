"""Letterbox/stretch preprocessing and the box mapping back."""

import json

import numpy as np
import pytest

from lanner.core.errors import ConfigError, DataError
from lanner.data.preprocess import (
    InputSpec,
    boxes_to_image,
    letterbox,
    resize_image,
    to_network_input,
    to_network_pixels,
)


@pytest.mark.parametrize(
    ("hw", "size", "scale", "filled"),
    [
        ((720, 1280), (384, 640), 0.5, (360, 640)),
        ((100, 50), (64, 64), 0.64, (64, 32)),
        ((64, 64), (64, 64), 1.0, (64, 64)),
    ],
)
def test_letterbox_keeps_aspect_top_left_and_pads(hw, size, scale, filled):
    image = np.full((*hw, 3), 200, np.uint8)
    out, s = letterbox(image, size, pad_value=114)
    assert out.shape == (*size, 3) and s == pytest.approx(scale)
    assert (out[: filled[0], : filled[1]] == 200).all()
    assert (out[filled[0] :, :] == 114).all() and (out[:, filled[1] :] == 114).all()


def test_boxes_map_back_through_letterbox_and_stretch():
    image = np.zeros((720, 1280, 3), np.uint8)
    box = np.array([[100.0, 200.0, 300.0, 400.0]])
    for resize in ("letterbox", "stretch"):
        _, scale = resize_image(image, InputSpec((384, 512), resize=resize))
        in_net = box * np.array([*scale, *scale])
        np.testing.assert_allclose(boxes_to_image(in_net, scale, (720, 1280)), box, atol=1e-3)
    assert boxes_to_image(np.array([[-5, -5, 2000, 900]]), (1.0, 1.0), (720, 1280)).tolist() == [[0, 0, 1280, 720]]


def test_network_input_normalises_and_swaps_to_rgb():
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 10  # blue
    bgr[..., 2] = 250  # red
    spec = InputSpec((8, 8), resize="stretch", color_order="RGB", mean=(100, 0, 0), std=(2, 1, 1))
    nchw, scales = to_network_input([bgr, bgr], spec)
    assert nchw.shape == (2, 3, 8, 8) and nchw.dtype == np.float32 and scales == [(1.0, 1.0)] * 2
    assert nchw[0, 0, 0, 0] == pytest.approx((250 - 100) / 2)  # R first, normalised
    assert nchw[0, 2, 0, 0] == pytest.approx(10)
    bgr_spec = InputSpec((8, 8), resize="stretch", color_order="BGR")
    assert to_network_input([bgr], bgr_spec)[0][0, 0, 0, 0] == 10


def test_spec_from_onnx_metadata_and_errors():
    meta = {
        "input_size": json.dumps([384, 640]),
        "resize": "letterbox",
        "color_order": "RGB",
        "mean": "[0, 0, 0]",
        "std": "[1, 1, 1]",
        "pad_value": "114.0",
    }
    spec = InputSpec.from_metadata(meta)
    assert spec.size_hw == (384, 640) and spec.resize == "letterbox" and spec.pad_value == 114.0
    with pytest.raises(DataError, match="input_size"):
        InputSpec.from_metadata({})
    with pytest.raises(ConfigError, match="resize mode"):
        InputSpec((8, 8), resize="crop")
    with pytest.raises(DataError, match="HxWx3"):
        to_network_input([np.zeros((8, 8), np.uint8)], InputSpec((8, 8)))


def test_module_example_runs():
    import doctest

    import lanner.data.preprocess as module

    assert doctest.testmod(module).failed == 0


def test_large_downscales_box_filter_by_an_integer_factor_then_bilinear():
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 2)
    out, scale = letterbox(image, (288, 512))
    assert scale == 0.4 and out.shape == (288, 512, 3)
    two_step = cv2.resize(cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA), (512, 288))
    np.testing.assert_array_equal(out, two_step)  # the fast path: integer INTER_AREA, then bilinear
    direct = cv2.resize(image, (512, 288), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(np.int16) - direct).mean() < 2.0  # and close to a single box filter
    half, _ = letterbox(image, (360, 640))  # at exactly half, bilinear is the 2x2 box filter, bit for bit
    np.testing.assert_array_equal(half, cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA))


def test_downscales_from_half_size_up_are_one_bilinear_pass():
    # INTER_AREA at a fractional factor is 7x slower (8.9 vs 1.3 ms per 720p frame at 448x800), and from
    # half size up bilinear taps every source pixel, so the 720p -> 448x800 letterbox is bilinear.
    import cv2

    image = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    out, scale = letterbox(image, (448, 800))
    assert scale == pytest.approx(448 / 720) and out.shape == (448, 800, 3)
    np.testing.assert_array_equal(out[:448, :796], cv2.resize(image, (796, 448), interpolation=cv2.INTER_LINEAR))
    assert (out[:, 796:] == 114).all()  # the padding column block on the right


@pytest.mark.parametrize("order", ["BGR", "RGB"])
def test_raw_pixel_models_skip_the_normalisation_arithmetic_with_the_same_bits(order):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (6, 10, 3), dtype=np.uint8) for _ in range(3)]
    for mean, std in (((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), ((1.0, 2.0, 3.0), (2.0, 2.0, 2.0))):
        spec = InputSpec(size_hw=(6, 10), color_order=order, mean=mean, std=std)
        pixels, _ = to_network_pixels(images, spec)
        expected = np.subtract(pixels, np.float32(mean).reshape(3, 1, 1), dtype=np.float32)
        expected *= (1.0 / np.float32(std)).reshape(3, 1, 1)
        assert np.array_equal(to_network_input(images, spec)[0], expected)


def test_images_already_at_the_input_size_are_not_letterboxed_again(monkeypatch):
    # the muxer hands frames the decode threads already letterboxed: a second pass copied each one for nothing
    import lanner.data.preprocess as module

    images = [np.random.default_rng(2).integers(0, 256, (6, 10, 3), dtype=np.uint8)]
    spec = InputSpec(size_hw=(6, 10), color_order="RGB")
    expected = to_network_pixels(images, spec)
    monkeypatch.setattr(module, "resize_image", lambda *a: pytest.fail("an already-sized image was resized"))
    pixels, scales = to_network_pixels(images, spec)
    assert np.array_equal(pixels, expected[0]) and scales == [(1.0, 1.0)]
    assert np.array_equal(pixels[0], images[0][:, :, ::-1].transpose(2, 0, 1))


class StripedPicture:
    """A ``Picture`` that records how it was read: ``to_bgr`` and ``resized_bgr`` calls."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width, self.calls = height, width, []
        self.bgr = np.zeros((height, width, 3), np.uint8)
        self.bgr[:, : width // 2] = (10, 20, 30)

    def to_bgr(self) -> np.ndarray:
        self.calls.append("to_bgr")
        return self.bgr.copy()

    def resized_bgr(self, width: int, height: int) -> np.ndarray:
        import cv2

        self.calls.append(("resized_bgr", width, height))
        return cv2.resize(self.bgr, (width, height), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_a_decoders_picture_is_resized_from_its_planes_never_converted_at_full_size(resize):
    picture = StripedPicture(72, 128)
    spec = InputSpec(size_hw=(48, 64), resize=resize)
    pixels, scales = to_network_pixels([picture], spec)
    from_bgr, bgr_scales = to_network_pixels([picture.bgr], spec)
    assert picture.calls == [("resized_bgr", 64, 36 if resize == "letterbox" else 48)]  # no to_bgr
    assert np.array_equal(pixels, from_bgr) and scales == bgr_scales
