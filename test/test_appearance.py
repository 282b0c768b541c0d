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
    red = image_with((100, 100, 200, 300, (255, 0, 0)), (300, 100, 400, 300, (0, 0, 255)),
                     (450, 100, 550, 300, (128, 128, 128)))
    assert appearance.descriptor(red, (100, 100, 200, 300)) == pytest.approx(one_hot(RED_BIN))
    assert appearance.descriptor(red, (300, 100, 400, 300)) == pytest.approx(one_hot(BLUE_BIN))
    assert appearance.descriptor(red, (450, 100, 550, 300)) == pytest.approx(one_hot(GREY_BIN))


def test_the_box_border_is_left_out_and_shares_give_square_roots():
    # Red in the middle 60 % of the width; blue in the outer 20 % each side is background.
    image = image_with((100, 100, 200, 300, (0, 0, 255)), (120, 100, 180, 300, (255, 0, 0)))
    assert appearance.descriptor(image, (100, 100, 200, 300)) == pytest.approx(one_hot(RED_BIN))
    # Top half red, bottom half blue inside the inset box: sqrt(1/2) in each bin.
    image = image_with((100, 100, 200, 200, (255, 0, 0)), (100, 200, 200, 300, (0, 0, 255)))
    split = appearance.descriptor(image, (100, 100, 200, 300))
    expected = np.zeros(appearance.SIZE)
    expected[[RED_BIN, BLUE_BIN]] = np.sqrt(0.5)
    assert split == pytest.approx(expected, abs=0.02)
    # The dot product of two descriptors is their Bhattacharyya coefficient.
    assert split @ one_hot(RED_BIN) == pytest.approx(np.sqrt(0.5), abs=0.02)


def test_a_box_too_small_or_outside_the_image_has_no_descriptor():
    image = image_with()
    assert appearance.descriptor(image, (10, 10, 14, 40)) is None  # 2 px wide inside
    assert appearance.descriptor(image, (700, 10, 800, 100)) is None
    # Partly outside: only the pixels in the image count.
    image = image_with((600, 0, 640, 100, (255, 0, 0)))
    assert appearance.descriptor(image, (600, 0, 700, 100)) == pytest.approx(one_hot(RED_BIN))


def test_blend_is_a_weighted_average_kept_unit_length():
    red, blue = one_hot(RED_BIN), one_hot(BLUE_BIN)
    mixed = appearance.blend(red, blue, 0.25)
    assert np.linalg.norm(mixed) == pytest.approx(1.0)
    assert mixed[RED_BIN] / mixed[BLUE_BIN] == pytest.approx(3.0)
    both = appearance.blend(np.stack([red, blue]), np.stack([blue, blue]), 0.5)
    assert both[1] == pytest.approx(blue)
