"""GT object depth and visibility recovered from bag messages agree with the simulator's.

The simulator knows each object's mask: its depth is the median over the mask and its
visibility a ratio of rendered pixel counts. A bag only carries the depth map and the
2D/3D boxes; ground_truth recovers both from those, and this checks how closely.
"""
import numpy as np
import pytest

mujoco = pytest.importorskip('mujoco')


def test_recovered_depth_and_visibility_match_the_simulator():
    from depthdet_ros.bags import header, make_typestore
    from depthdet_ros.eval.ground_truth import DEPTH_FROM_BOX3D, frame_ground_truth
    from depthdet_ros.eval.object_errors import occlusion_level
    from depthdet_ros.sim.messages import detections_2d, detections_3d, rosbags_factory
    from depthdet_ros.sim.world import generate_frames

    store = make_typestore()
    make = rosbags_factory(store)
    depth_error, centre_error, visibility_pairs = [], [], []
    for scene in ('room', 'tabletop'):
        for frame in generate_frames(11, 6, scene=scene, sizes=((320, 240),), quality='fast'):
            msg_header = header(store, 0, frame.camera.frame_id)
            recovered = frame_ground_truth(detections_2d(make, msg_header, frame.objects),
                                           detections_3d(make, msg_header, frame.objects),
                                           frame.depth, frame.camera)
            for truth, obj in zip(frame.objects, recovered):
                if obj.depth_source != DEPTH_FROM_BOX3D:
                    continue
                depth_error.append(abs(obj.depth - truth.depth) / truth.depth)
                centre_error.append(abs(truth.center.z - truth.depth) / truth.depth)
                visibility_pairs.append((truth.visibility, obj.visibility))
    assert len(depth_error) > 40
    # Far closer than the 3D centre, which sits behind the visible surface.
    assert np.median(depth_error) < 0.005 and np.percentile(depth_error, 90) < 0.05
    assert np.median(centre_error) > 5 * np.median(depth_error)
    exact, estimated = np.array(visibility_pairs).T
    assert np.mean(np.abs(exact - estimated)) < 0.1
    same_level = [occlusion_level(a) == occlusion_level(b) for a, b in visibility_pairs]
    assert np.mean(same_level) > 0.8
