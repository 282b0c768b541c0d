"""Ground truth of random frames is consistent with their own masks and depth."""
import numpy as np
import pytest

from depthdet_ros.sim.objects import CLASS_NAMES
from depthdet_ros.sim.world import SimWorld, generate_frames, generate_sequence

SIZE = (160, 120)


@pytest.fixture(scope='module')
def world():
    with SimWorld(*SIZE) as sim:
        yield sim


@pytest.fixture(scope='module')
def frames(world):
    return list(generate_frames(21, 6, 'mixed', (SIZE,), world=world))


def test_boxes_counts_and_depths_agree_with_the_masks(frames):
    assert sum(len(f.objects) for f in frames) > 10
    for frame in frames:
        ids = [obj.instance_id for obj in frame.objects]
        assert len(set(ids)) == len(ids)
        present = set(np.unique(frame.instance_mask)) - {0}
        assert present == set(ids)
        for obj in frame.objects:
            mask = frame.instance_mask == obj.instance_id
            ys, xs = np.nonzero(mask)
            assert (obj.box.x1, obj.box.y1, obj.box.x2, obj.box.y2) == \
                (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert obj.visible_pixels == mask.sum()
            assert np.all(frame.class_mask[mask] == obj.class_id + 1)
            assert obj.class_name == CLASS_NAMES[obj.class_id]
            assert obj.depth == pytest.approx(float(np.median(frame.depth[mask])))
            assert np.all(np.isfinite(frame.depth[mask]))
            assert obj.unoccluded_pixels >= obj.visible_pixels
            assert 0.0 < obj.visibility <= 1.0
            assert obj.center.z > 0 and obj.distance >= obj.center.z
        assert np.all((frame.class_mask > 0) == (frame.instance_mask > 0))


def test_frames_carry_consistent_types_and_intrinsics(frames):
    for frame in frames:
        height, width = frame.rgb.shape[:2]
        assert (width, height) == SIZE and frame.rgb.dtype == np.uint8
        assert frame.depth.dtype == np.float32 and frame.instance_mask.dtype == np.uint16
        assert frame.class_mask.dtype == np.uint8
        frame.camera.validate((height, width))
        assert frame.camera.frame_id == 'camera_optical_frame'
        assert frame.camera.cx == (width - 1) / 2 and frame.camera.fx == frame.camera.fy
        assert np.allclose(frame.camera_pose[:3, :3].T @ frame.camera_pose[:3, :3], np.eye(3))
    assert {f.scene for f in frames} == {'room', 'tabletop'}


def test_sequence_camera_moves_smoothly_through_a_fixed_scene(world):
    frames = list(generate_sequence(4, 4, 'room', SIZE, rate_hz=10.0, speed=0.5, world=world))
    steps = [np.linalg.norm(b.camera_pose[:3, 3] - a.camera_pose[:3, 3])
             for a, b in zip(frames, frames[1:])]
    # 0.5 m/s at 10 Hz: about 5 cm per frame (the path bobs a little).
    assert all(0.03 < step < 0.08 for step in steps)
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert all(np.array_equal(f.camera.K, frames[0].camera.K) for f in frames)
    tracked = set.intersection(*({o.instance_id for o in f.objects} for f in frames))
    first = {o.instance_id: o for o in frames[0].objects}
    second = {o.instance_id: o for o in frames[1].objects}
    assert tracked  # objects seen in every frame, checked below
    for instance_id in tracked:
        assert first[instance_id].class_name == second[instance_id].class_name
        assert first[instance_id].size == second[instance_id].size
