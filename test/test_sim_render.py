"""Rendered depth and per-object truth agree with geometry built by hand."""
import numpy as np
import pytest

from depthdet_ros.sim.geometry import forward_vector, look_rotation
from depthdet_ros.sim.objects import CLASS_NAMES, Shape, box
from depthdet_ros.sim.render import HIDDEN_GROUP
from depthdet_ros.sim.scene import MATERIALS, Appearance, CameraSpec, Item, Light, Room, \
    SceneLayout
from depthdet_ros.sim.world import SimWorld, frame_layout

WIDTH, HEIGHT = 320, 240
PLAIN = Appearance(len(MATERIALS) - 1, (0.7, 0.7, 0.7, 1.0))
ROOM = Room(3.0, 2.5, 2.8, PLAIN, (PLAIN,) * 4, PLAIN)
LIGHT = Light((0, 0, 2.7), (0, 0, -1), (0.6,) * 3, (0.2,) * 3, (0.1,) * 3, 80.0, False)


@pytest.fixture(scope='module')
def world():
    with SimWorld(WIDTH, HEIGHT) as sim:
        yield sim


def layout(camera, items=()):
    return SceneLayout('room', ROOM, tuple(items), (LIGHT,), (0.1, 0.1), camera, 1)


def box_item(centre_xyz, half, yaw=0.0, kind='box'):
    """Make a solid box object standing on the floor under `centre_xyz`."""
    x, y, z = centre_xyz
    shape = Shape((box((0, 0, z), half),))
    return Item(kind, CLASS_NAMES.index(kind), shape, (PLAIN,), (x, y, 0.0), yaw)


def analytic_room_depth(camera):
    """Ray-cast the z-depth of the empty room's six planes for each pixel of `camera`."""
    K = camera.model().K
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1)
    directions = rays @ camera.rotation.T  # world direction per unit of optical z
    depth = np.full(u.shape, np.inf)
    for axis, planes in ((0, (ROOM.half_x, -ROOM.half_x)), (1, (ROOM.half_y, -ROOM.half_y)),
                         (2, (0.0, ROOM.height))):
        for plane in planes:
            with np.errstate(divide='ignore', invalid='ignore'):
                distance = (plane - camera.position[axis]) / directions[..., axis]
            distance[~(distance > 0)] = np.inf
            depth = np.minimum(depth, distance)
    return depth


@pytest.mark.parametrize('trial', range(3))
def test_depth_of_room_planes_matches_ray_casting_within_1mm(world, trial):
    rng = np.random.default_rng(trial)
    position = np.array([rng.uniform(-2, 2), rng.uniform(-1.5, 1.5), rng.uniform(0.3, 2)])
    camera = CameraSpec(position,
                        look_rotation(forward_vector(rng.uniform(-3, 3), rng.uniform(-0.6, 0.3)),
                                      rng.uniform(-0.3, 0.3)),
                        WIDTH, HEIGHT, rng.uniform(35, 80))
    frame = world.render(layout(camera))
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (HEIGHT, WIDTH)
    assert np.nanmax(np.abs(frame.depth - analytic_room_depth(camera))) < 1e-3
    assert frame.objects == [] and not frame.instance_mask.any()


def level_camera(height=1.0, fovy=50.0):
    """Place a camera at (0, 0, height) looking along +x, horizon level."""
    return CameraSpec(np.array([0.0, 0.0, height]), look_rotation((1.0, 0.0, 0.0)),
                      WIDTH, HEIGHT, fovy)


def test_box_face_depth_centre_and_box_match_geometry(world):
    camera = level_camera()
    half = (0.2, 0.3, 0.25)
    frame = world.render(layout(camera, [box_item((2.5, 0.0, 1.0), half)]))
    (obj,) = frame.objects
    cam = frame.camera
    # The front face is a plane x = 2.3 m facing the camera: constant z-depth.
    assert abs(frame.depth[HEIGHT // 2, WIDTH // 2] - 2.3) < 1e-3
    assert abs(obj.depth - 2.3) < 1e-3
    assert np.allclose([obj.center.x, obj.center.y, obj.center.z], [0.0, 0.0, 2.5], atol=1e-9)
    assert np.allclose([obj.size.x, obj.size.y, obj.size.z], [0.4, 0.6, 0.5])
    assert obj.distance == pytest.approx(2.5)
    # Front face corners projected with K, in pixel-edge coordinates (+0.5).
    half_w = cam.fx * half[1] / 2.3
    half_h = cam.fy * half[2] / 2.3
    expected = (cam.cx + 0.5 - half_w, cam.cy + 0.5 - half_h,
                cam.cx + 0.5 + half_w, cam.cy + 0.5 + half_h)
    assert np.allclose([obj.box.x1, obj.box.y1, obj.box.x2, obj.box.y2], expected, atol=1.0)
    assert obj.visibility == 1.0 and obj.class_name == 'box'
    # Object x (forward in the world) is optical z; object z (up) is optical -y.
    x, y, z, w = obj.orientation_xyzw
    assert np.allclose(np.abs([x, y, z, w]), [0.5, 0.5, 0.5, 0.5])


def test_camera_pose_and_intrinsics_put_an_off_axis_object_where_k_says(world):
    camera = CameraSpec(np.array([0.5, -1.0, 1.4]),
                        look_rotation(forward_vector(0.4, -0.2), 0.1), WIDTH, HEIGHT, 60.0)
    item = box_item((2.6, 0.4, 0.8), (0.05, 0.05, 0.05))
    frame = world.render(layout(camera, [item]))
    (obj,) = frame.objects
    optical = np.linalg.inv(frame.camera_pose) @ [2.6, 0.4, 0.8, 1.0]
    assert np.allclose([obj.center.x, obj.center.y, obj.center.z], optical[:3], atol=1e-9)
    ys, xs = np.nonzero(frame.instance_mask == obj.instance_id)
    u = frame.camera.fx * optical[0] / optical[2] + frame.camera.cx
    v = frame.camera.fy * optical[1] / optical[2] + frame.camera.cy
    assert abs(xs.mean() - u) < 1.0 and abs(ys.mean() - v) < 1.0


def test_partly_hidden_object_reports_its_visible_share(world):
    camera = level_camera()
    back = box_item((3.0, 0.0, 1.0), (0.05, 0.4, 0.3))
    # The front box hides the left half (+y in the world) of the back one.
    front = box_item((1.5, 0.2, 1.0), (0.05, 0.2, 0.4))
    frame = world.render(layout(camera, [back, front]))
    by_id = {obj.instance_id: obj for obj in frame.objects}
    assert by_id[2].visibility == 1.0
    assert by_id[1].visibility == pytest.approx(0.5, abs=0.03)
    assert by_id[1].visible_pixels < by_id[1].unoccluded_pixels
    # The visible part's box is the right half only.
    assert by_id[1].box.x1 >= by_id[2].box.x2 - 1


def test_windowed_occlusion_passes_count_like_full_renders(world):
    for index in range(2):
        scene_layout = frame_layout(5, index, 'mixed', ((WIDTH, HEIGHT),))
        frame = world.render(scene_layout, index)
        model = world.model
        assert frame.objects  # the checks below run on each
        for obj in frame.objects:
            slot = world._object_geoms[obj.instance_id - 1]
            groups = np.full(model.ngeom, HIDDEN_GROUP, dtype=model.geom_group.dtype)
            groups[slot[:len(scene_layout.objects[obj.instance_id - 1].shape.parts)]] = 0
            world.apply_groups(groups)
            world.renderer.update_scene(world.data)
            geom_ids, _ = world.renderer.render_labels(WIDTH, HEIGHT, with_depth=False)
            assert np.isin(geom_ids, slot).sum() == obj.unoccluded_pixels
