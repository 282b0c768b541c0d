"""Colour descriptors (core.appearance) of hand-painted boxes, bins computed by hand."""
import numpy as np
import pytest

from depthdet_ros.core import appearance

# OpenCV's 8-bit HSV: pure red is hue 0, saturation 255; its saturation bin is
# (255 - 40) * 3 // 216 = 2, so its bin is 0 * 3 + 2.
RED_BIN = 2
# Pure blue: hue 120 -> hue bin 120 * 16 // 180 = 10, bin 10 * 3 + 2.
BLUE_BIN = 32
# Mid grey (128, 128, 128): no saturation, a grey bin by value, 48 + 128 * 4 // 256.
GREY_BIN = 50


def image_with(*rectangles, size=(480, 640)):
    """Paint (x1, y1, x2, y2, rgb) rectangles on a black RGB image."""
    image = np.zeros((*size, 3), np.uint8)
    for x1, y1, x2, y2, rgb in rectangles:
        image[y1:y2, x1:x2] = rgb
    return image


def one_hot(index):
    vector = np.zeros(appearance.SIZE)
    vector[index] = 1.0
    return vector


def test_a_uniform_box_fills_one_bin():
    red = image_with((100, 100, 200, 300, (255, 0, 0)), (300, 100, 400, 300, (0, 0, 255)))
    assert appearance.descriptor(red, (100, 100, 200, 300)) == pytest.approx(one_hot(RED_BIN))
    assert appearance.descriptor(red, (300, 100, 400, 300)) == pytest.approx(one_hot(BLUE_BIN))


def test_grey_pixels_go_by_brightness_and_a_grey_box_has_none():
    # Top half red, bottom half mid grey: sqrt(1/2) in the red bin and in a grey bin.
    image = image_with((100, 100, 200, 200, (255, 0, 0)), (100, 200, 200, 300, (128,) * 3))
    expected = np.zeros(appearance.SIZE)
    expected[[RED_BIN, GREY_BIN]] = np.sqrt(0.5)
    described = appearance.descriptor(image, (100, 100, 200, 300))
    assert described == pytest.approx(expected, abs=0.02)
    # All grey (as every box of a mono camera): no descriptor, however bright.
    grey = image_with((100, 100, 200, 300, (128,) * 3), (300, 100, 400, 300, (20,) * 3))
    assert appearance.descriptor(grey, (100, 100, 200, 300)) is None
    assert appearance.descriptor(grey, (300, 100, 400, 300)) is None
    # 85 % grey (the 10 % inset box: 85 of its 100 px rows) still has one.
    image = image_with((100, 100, 200, 300, (128,) * 3), (100, 105, 200, 140, (255, 0, 0)))
    assert appearance.descriptor(image, (100, 100, 200, 300)) is not None


def test_the_grid_holds_at_most_samples_squared_pixels():
    # Red and blue columns in turn. An inner box 47 px wide is sampled every 2nd column
    # (24 columns, not 47), all of one parity: one colour, not both.
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, ::2] = (255, 0, 0)
    image[:, 1::2] = (0, 0, 255)
    x1, x2 = 100.0, 100.0 + 47 / 0.6
    described = appearance.descriptor(image, (x1, 100, x2, 200))
    left, right = int(x1 + 0.2 * (x2 - x1)), int(x2 - 0.2 * (x2 - x1))
    assert right - left == 47
    assert described == pytest.approx(one_hot(RED_BIN if left % 2 == 0 else BLUE_BIN))


def test_a_box_too_small_outside_the_image_or_not_finite_has_no_descriptor():
    image = image_with((0, 0, 640, 480, (255, 0, 0)))
    assert appearance.descriptor(image, (10, 10, 14, 40)) is None  # 2 px wide inside
    assert appearance.descriptor(image, (700, 10, 800, 100)) is None
    assert appearance.descriptor(image, (10, 10, float('nan'), 100)) is None
    assert appearance.descriptor(image, (10, 10, float('inf'), 100)) is None
    # Partly outside: only the pixels in the image count.
    image = image_with((600, 0, 640, 100, (255, 0, 0)))
    assert appearance.descriptor(image, (600, 0, 700, 100)) == pytest.approx(one_hot(RED_BIN))


def test_blend_is_a_weighted_average_kept_unit_length():
    red, blue = one_hot(RED_BIN), one_hot(BLUE_BIN)
    mixed = appearance.blend(red, blue, 0.25)
    assert np.linalg.norm(mixed) == pytest.approx(1.0)
    assert mixed[RED_BIN] / mixed[BLUE_BIN] == pytest.approx(3.0)
    both = appearance.blend(np.stack([red, blue]), np.stack([blue, red]), 0.5)
    assert both == pytest.approx(np.full((2, 1), np.sqrt(0.5)) * (red + blue))
