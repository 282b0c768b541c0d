"""Augmentations keep image, depth and boxes consistent (no torch needed)."""
import numpy as np
import pytest

from depthdet_ros.core.depth import DepthEstimator, DepthView
from depthdet_ros.core.detector import letterbox
from depthdet_ros.train.augment import (
    BoxSample, depth_sample, DepthAugmentConfig, DetectAugmentConfig, detection_train_sample,
    flip_lr, letterbox_sample, mosaic, random_affine)

INPUT = (64, 96)  # (height, width) of a small depth net input


def ramp_frame(height=120, width=160):
    """RGB whose red channel is the column and a depth that grows with the column."""
    cols = np.arange(width, dtype=np.float32)
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = cols.astype(np.uint8)
    rgb[..., 1] = 100
    depth = np.tile(1.0 + cols / 40.0, (height, 1)).astype(np.float32)
    return rgb, depth


def no_randomness(**overrides):
    """Return an augmentation config that applies only the given ranges."""
    base = dict(scale=(1.0, 1.0), rotate_deg=0.0, color_gain=(1.0, 1.0), flip_prob=0.0)
    base.update(overrides)
    return DepthAugmentConfig(**base)


def test_validation_sample_is_the_runtime_view():
    # Without randomness the target is the frame's depth sampled where the runtime maps
    # each output pixel (core.depth.DepthView), so a perfect net scores zero error there.
    rgb, depth = ramp_frame()
    sample = depth_sample(rgb, depth, INPUT)
    assert sample.rgb.shape == (*INPUT, 3) and sample.depth.shape == (32, 48)
    view = DepthView.for_image(120, 160, *INPUT, 32, 48, 'cover_crop')
    _, _, xs = view.output_coords('x')  # output-grid x of each input column
    # Output column u holds the depth of the input column nearest to where u maps back.
    for u in (0, 10, 47):
        column = int(np.argmin(np.abs(xs - u)))
        assert sample.depth[5, u] == pytest.approx(depth[0, column], abs=1.0 / 40 + 1e-6)
    # Warping the target back with the runtime's own inverse mapping recovers the frame.
    back = DepthEstimator.to_image(sample.depth, view)
    valid = np.isfinite(back)
    assert valid.mean() >= 0.85  # the runtime crops 8 of 72 rows
    assert np.abs(back[valid] - depth[valid]).max() < 2.5 / 40


def test_scale_divides_depth_and_zooms_the_image():
    rgb, depth = ramp_frame()
    depth[:] = 3.0
    rng = np.random.default_rng(0)
    sample = depth_sample(rgb, depth, INPUT, rng, no_randomness(scale=(1.5, 1.5)))
    assert np.all(sample.depth == pytest.approx(2.0))
    plain = depth_sample(rgb, depth, INPUT)
    # Zoomed 1.5x, neighbouring output columns are 1.5x fewer source columns apart.
    span_plain = np.ptp(plain.rgb[10, :, 0].astype(float))
    span_zoom = np.ptp(sample.rgb[10, :, 0].astype(float))
    assert span_zoom == pytest.approx(span_plain / 1.5, rel=0.05)


def test_flip_mirrors_image_and_depth_together():
    rgb, depth = ramp_frame()
    rng = np.random.default_rng(0)
    flipped = depth_sample(rgb, depth, INPUT, rng, no_randomness(flip_prob=1.0))
    plain = depth_sample(rgb, depth, INPUT)
    np.testing.assert_array_equal(flipped.rgb, plain.rgb[:, ::-1])
    # The depth target is sampled on a half-resolution grid, where output pixels fall
    # exactly between two source columns: which one nearest-neighbour takes can differ
    # between a view and its mirror, by CPU (OpenCV's dispatch; session 22's VM took the
    # other column for a sixth of them). One column of the ramp is 1/40 m; a depth left
    # unflipped would be metres off.
    np.testing.assert_allclose(flipped.depth, plain.depth[:, ::-1], rtol=0, atol=1 / 40 + 1e-6)


def test_rotation_marks_uncovered_corners_invalid_and_keeps_depth_values():
    rgb, depth = ramp_frame()
    depth[:] = 2.0
    sample = depth_sample(rgb, depth, INPUT, np.random.default_rng(1),
                          no_randomness(rotate_deg=30.0))
    values = np.unique(sample.depth)
    # Depths are not blended (only 2.0), the corners the turn leaves uncovered are invalid
    # (0) and the centre keeps its depth (test audit: replicated borders passed).
    assert set(values.tolist()) == {0.0, 2.0}
    h, w = sample.depth.shape
    assert [sample.depth[y, x] for y in (0, h - 1) for x in (0, w - 1)] == [0.0] * 4
    assert sample.depth[h // 2, w // 2] == 2.0


def test_colour_gain_stays_in_range_per_channel():
    rgb, depth = ramp_frame()
    rgb[:] = 200
    sample = depth_sample(rgb, depth, INPUT, np.random.default_rng(3),
                          no_randomness(color_gain=(0.8, 1.2)))
    per_channel = sample.rgb.reshape(-1, 3).astype(float).mean(axis=0)
    assert np.all(per_channel >= 160 - 1) and np.all(per_channel <= 240 + 1)
    assert len(set(per_channel.round().tolist())) > 1  # independent gains


def boxed_frame(height=100, width=140):
    """Grey frame with one red and one blue rectangle and their boxes."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    rgb[10:40, 20:60] = (255, 0, 0)
    rgb[50:90, 90:130] = (0, 0, 255)
    boxes = np.array([[20, 10, 60, 40], [90, 50, 130, 90]], np.float64)
    return BoxSample(rgb, boxes, np.array([0, 1]))


def box_colour(sample, k):
    """Mean colour inside box k (shrunk by 2 px against interpolation at the edge)."""
    x1, y1, x2, y2 = sample.boxes[k]
    patch = sample.rgb[int(np.ceil(y1)) + 2:int(y2) - 2, int(np.ceil(x1)) + 2:int(x2) - 2]
    return patch.reshape(-1, 3).mean(axis=0)


def test_flip_moves_boxes_with_the_pixels():
    flipped = flip_lr(boxed_frame())
    np.testing.assert_array_equal(flipped.boxes, [[80, 10, 120, 40], [10, 50, 50, 90]])
    assert box_colour(flipped, 0) == pytest.approx([255, 0, 0])
    assert box_colour(flipped, 1) == pytest.approx([0, 0, 255])


def test_letterbox_sample_matches_the_runtime_letterbox():
    sample = letterbox_sample(boxed_frame(), 64)
    image, lb = letterbox(boxed_frame().rgb, 64, 64)
    np.testing.assert_array_equal(sample.rgb, image)
    np.testing.assert_allclose(lb.to_image(sample.boxes), boxed_frame().boxes, atol=1e-9)


def test_mosaic_and_affine_keep_boxes_on_their_objects():
    rng = np.random.default_rng(5)
    config = DetectAugmentConfig()
    for _ in range(5):
        frames = [boxed_frame() for _ in range(4)]
        tiled = mosaic(frames, 128, rng)
        assert tiled.rgb.shape == (256, 256, 3)
        out = random_affine(tiled, 128, rng, config, centred_from=256)
        assert out.rgb.shape == (128, 128, 3)
        for k, cls in enumerate(out.classes):
            x1, y1, x2, y2 = out.boxes[k]
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
            if min(x2 - x1, y2 - y1) > 8:
                colour = box_colour(out, k)
                expected = [255, 0, 0] if cls == 0 else [0, 0, 255]
                assert colour == pytest.approx(expected, abs=40)


def test_training_sample_is_square_and_deterministic_for_a_seed():
    frames = [boxed_frame() for _ in range(4)]
    config = DetectAugmentConfig()
    a = detection_train_sample(frames, 96, np.random.default_rng(9), config, True)
    b = detection_train_sample(frames, 96, np.random.default_rng(9), config, True)
    assert a.rgb.shape == (96, 96, 3)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.boxes, b.boxes)
