"""Depth strategies and back-projection on hand-made depth maps."""
import numpy as np
import pytest

from depthdet_ros.core.camera import CameraModel, CameraModelError
from depthdet_ros.core.object_depth import estimate_objects, object_depth, STRATEGIES
from depthdet_ros.core.types import Box, Detection2D


def hollow_chair():
    """Paint a chair-like frame at 2 m (two legs and a top bar) in front of a wall at 6 m."""
    depth = np.full((100, 100), 6.0, np.float32)
    depth[20:80, 20:28] = 2.0
    depth[20:80, 72:80] = 2.0
    depth[20:28, 20:80] = 2.0
    return depth, Box(20, 20, 80, 80)


def test_strategies_on_a_solid_object():
    depth = np.full((50, 50), 9.0, np.float32)
    depth[10:40, 10:40] = 3.0
    depth[24:26, 24:26] = 3.4  # centre window 12x12 px: 4 px at 3.4, 140 at 3.0
    box = Box(10, 10, 40, 40)
    assert object_depth(depth, box, 'box_median').depth == pytest.approx(3.0)
    assert object_depth(depth, box, 'center_mean').depth == pytest.approx(
        (140 * 3.0 + 4 * 3.4) / 144, rel=1e-6)
    assert object_depth(depth, box, 'robust').depth == pytest.approx(3.0)


def test_hollow_object_box_median_is_wrong_robust_is_right():
    depth, box = hollow_chair()
    # Frame pixels: 2*60*8 + 8*44 = 1312 of 3600 (36 %); the median falls on the wall.
    assert object_depth(depth, box, 'box_median').depth == pytest.approx(6.0)
    assert object_depth(depth, box, 'center_mean').depth == pytest.approx(6.0)
    robust = object_depth(depth, box, 'robust')
    assert robust.depth == pytest.approx(2.0)
    assert robust.fraction == pytest.approx(1312 / 3600)
    # The nearest 30 % of the box lie within the frame's 36 %.
    assert object_depth(depth, box, 'near_median').depth == pytest.approx(2.0)


def test_small_near_clutter_does_not_capture_robust():
    depth = np.full((100, 100), 4.0, np.float32)
    depth[50:55, 50:55] = 1.0  # 25 px of 3600: below the 10 % mode share
    depth[:20, :] = 8.0
    (result,) = [object_depth(depth, Box(20, 20, 80, 80), 'robust')]
    assert result.depth == pytest.approx(4.0)


def test_near_median_on_a_blurred_object():
    """A network's blur: the object runs into the wall with no distinct near mode."""
    depth = np.full((10, 10), 4.0, np.float32)
    # 40 object pixels, 2.00, 2.04, ... 3.56 m: at most 9 fall in any 10 %-deep slice, so
    # no slice holds 10 % of the box and `robust` falls back to the strongest mode, the wall.
    depth.flat[:40] = 2.0 + 0.04 * np.arange(40)
    box = Box(0, 0, 10, 10)
    assert object_depth(depth, box, 'robust').depth == pytest.approx(4.0)
    assert object_depth(depth, box, 'box_median').depth == pytest.approx(4.0)
    near = object_depth(depth, box, 'near_median')
    # The nearest 30 of 100 pixels are 2.00-3.16 m: median 2.00 + 0.04 * 14.5; their
    # absolute deviations 0.02, 0.02, 0.06, 0.06, ... 0.58 have the median 0.04 * 7.5.
    assert near.depth == pytest.approx(2.58, abs=1e-5)
    assert near.spread == pytest.approx(1.4826 * 0.3, abs=1e-5)
    assert near.fraction == pytest.approx(0.3)


def test_near_median_needs_four_pixels_and_takes_them_all_below_that():
    depth = np.full((3, 3), np.nan, np.float32)
    depth.flat[:4] = [1.0, 2.0, 3.0, 9.0]
    # 30 % of 4 pixels is 2; the floor of MIN_VALID_PIXELS takes all four: median 2.5.
    result = object_depth(depth, Box(0, 0, 3, 3), 'near_median')
    assert result.depth == pytest.approx(2.5) and result.fraction == pytest.approx(1.0)
    depth.flat[3] = np.inf
    assert not object_depth(depth, Box(0, 0, 3, 3), 'near_median').valid


def test_nan_pixels_are_ignored_and_empty_box_is_invalid():
    depth = np.full((40, 40), np.nan, np.float32)
    for strategy in STRATEGIES:
        assert not object_depth(depth, Box(5, 5, 30, 30), strategy).valid
    depth[5:30, 5:30] = 2.5
    depth[5:10, 5:30] = np.nan
    for strategy in STRATEGIES:
        assert object_depth(depth, Box(5, 5, 30, 30), strategy).depth == pytest.approx(2.5)
    with pytest.raises(ValueError, match='unknown depth strategy'):
        object_depth(depth, Box(5, 5, 30, 30), 'mean')


def test_back_projection_with_and_without_distortion():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    camera = CameraModel(K=K, width=640, height=480)
    # u = 420 is 100 px right of cx: x = 100 / 500 * 2 m = 0.4 m.
    np.testing.assert_allclose(camera.back_project(np.array([[420, 140]]), [2.0]),
                               [[0.4, -0.4, 2.0]])
    distorted = CameraModel(K=K, width=640, height=480, D=np.array([-0.2, 0.05, 0, 0, 0]))
    (x, y, z), = distorted.back_project(np.array([[420, 240]]), [2.0])
    # Barrel distortion pulls image points inwards, so the true ray is further out.
    assert x > 0.4 and y == pytest.approx(0.0, abs=1e-9) and z == 2.0
    with pytest.raises(CameraModelError, match='focal lengths must be positive'):
        CameraModel(K=np.zeros((3, 3)), width=640, height=480).validate()
    with pytest.raises(CameraModelError, match='K must be a finite'):
        CameraModel(K=np.full((3, 3), np.nan), width=640, height=480).validate()


def test_fisheye_rays_and_unusable_distortion():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    # Equidistant (fisheye): a pixel r px from the centre is theta = r / f off the axis,
    # so x/z = tan(theta), even with all coefficients 0 (it is no pinhole). 250 px right
    # of cx: theta = 0.5 rad, x/z = tan(0.5) = 0.5463 (a pinhole would give 0.5).
    fisheye = CameraModel(K=K, width=640, height=480, distortion_model='equidistant')
    fisheye.validate()
    (x, y, z), = fisheye.back_project(np.array([[570.0, 240.0]]), [2.0])
    assert (x, y, z) == pytest.approx((2.0 * np.tan(0.5), 0.0, 2.0), abs=1e-6)
    # With k1: theta_d = theta (1 + k1 theta^2) = 0.5 at theta 0.482075 for k1 = 0.16.
    theta = 0.482075
    assert theta * (1 + 0.16 * theta ** 2) == pytest.approx(0.5, abs=1e-5)
    curved = CameraModel(K=K, width=640, height=480, D=np.array([0.16, 0.0, 0.0, 0.0]),
                         distortion_model='equidistant')
    (x, _, _), = curved.back_project(np.array([[570.0, 240.0]]), [1.0])
    assert x == pytest.approx(np.tan(theta), abs=1e-4)
    # Refused (before: a ZeroDivisionError or an OpenCV assertion on every frame).
    for camera, message in (
            (CameraModel(K=K, width=0, height=0), 'width and height must be positive'),
            (CameraModel(K=K, width=640, height=480, D=np.array([0.1, 0.01, 0.0])),
             'plumb_bob takes 4 / 5 / 8 / 12 / 14 coefficients in D, got 3'),
            (CameraModel(K=K, width=640, height=480, D=np.zeros(3)),  # zeros, still malformed
             'plumb_bob takes 4 / 5 / 8 / 12 / 14 coefficients in D, got 3'),
            (CameraModel(K=K, width=640, height=480, D=np.array([0.1, 0.0, 0.0, 0.0, 0.0]),
                         distortion_model='kannala_brandt'),
             "distortion_model 'kannala_brandt' is not supported")):
        with pytest.raises(CameraModelError, match=message):
            camera.validate()
    # Size from the box's edges through the lens: 150 and 250 px right of the centre are
    # 0.3 and 0.5 rad off the axis, so the box is 2 (tan 0.5 - tan 0.3) = 0.474 m wide at
    # 2 m (a pinhole formula would say 100 px x 2 / 500 = 0.4 m).
    depth = np.full((480, 640), 2.0, np.float32)

    def off_axis(du, dv):  # x/z, y/z of an equidistant pixel (du, dv) px from the centre
        r = np.hypot(du, dv)
        return np.array([du, dv]) / r * np.tan(r / 500.0)
    box = Box(470, 190, 570, 290)
    (obj,) = estimate_objects([Detection2D(box, 0.9, 0, 'box')], depth, fisheye, 'robust', 9.0)
    assert obj.position.x == pytest.approx(2.0 * off_axis(200, 0)[0], abs=1e-5)
    assert obj.size.x == pytest.approx(2.0 * (np.tan(0.5) - np.tan(0.3)), abs=1e-5)
    assert obj.size.y == pytest.approx(2.0 * (off_axis(200, 50)[1] - off_axis(200, -50)[1]),
                                       abs=1e-5)
    # Beyond 85 deg off the axis (here 1.6 rad: behind the image plane) there is no ray.
    wide = CameraModel(K=np.array([[100.0, 0, 320], [0, 100.0, 240], [0, 0, 1]]), width=640,
                       height=480, distortion_model='equidistant')
    assert np.isnan(wide.normalized_rays(np.array([[480.0, 240.0]]))).all()
    (far_out,) = estimate_objects([Detection2D(Box(470, 200, 490, 280), 0.9, 0, 'box')],
                                  depth, wide, 'robust', 9.0)
    assert far_out.position is None and far_out.depth.depth == pytest.approx(2.0)
    # Rectified images of any model (D = 0) are pinhole.
    CameraModel(K=K, width=640, height=480, D=np.zeros(5),
                distortion_model='kannala_brandt').validate()


def test_estimate_objects_position_size_covariance_and_alerts():
    depth, box = hollow_chair()
    camera = CameraModel(K=np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]),
                         width=100, height=100)
    det = Detection2D(box, 0.9, 0, 'chair')
    (obj,) = estimate_objects([det], depth, camera, 'robust', max_depth=2.5)
    # Box centre (50, 50) is the principal point: the object is straight ahead.
    assert (obj.position.x, obj.position.y, obj.position.z) == pytest.approx((0, 0, 2.0))
    assert (obj.size.x, obj.size.y) == pytest.approx((60 * 2 / 100, 60 * 2 / 100))
    assert obj.alert
    assert obj.covariance[0, 0] == pytest.approx((0.5 * 2.0 / 100) ** 2)
    (obj,) = estimate_objects([det], depth, camera, 'robust', max_depth=1.5)
    assert not obj.alert
    (obj,) = estimate_objects([det], depth, camera, 'robust', max_depth=1.5,
                              class_max_depth={'chair': 3.0})
    assert obj.alert
    (obj,) = estimate_objects([det], depth, None, 'robust', max_depth=3.0)
    assert obj.position is None and obj.depth.depth == pytest.approx(2.0) and obj.alert
