"""Rendered synthetic frames with exact ground truth.

`SimWorld` owns one MuJoCo model and GL context and renders `SceneLayout`s into
`SimFrame`s: RGB, z-depth, instance and class masks, and a record per visible
object (class, visible box, visibility, depth, 3D centre and size in the optical
frame). `generate_frames` draws independent random frames; `generate_sequence`
moves a camera smoothly through one fixed scene.

Every frame is a pure function of (seed, index): frames can be generated in any
order, skipped and resumed, and the same seed gives the same frames.
"""
from dataclasses import dataclass, replace
from typing import Iterator, List, Optional, Sequence, Tuple

import mujoco
import numpy as np

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.types import Box, Point3D
from depthdet_ros.sim.geometry import OPTICAL_FROM_MUJOCO_CAMERA, matrix_to_quat
from depthdet_ros.sim.motion import add_motions, layout_at, optical_velocity, VELOCITY_STEP_S
from depthdet_ros.sim.objects import CLASS_NAMES, MAX_DISTRACTOR_PARTS, MAX_OBJECT_PARTS
from depthdet_ros.sim.render import HIDDEN_GROUP, OffscreenRenderer
from depthdet_ros.sim.scene import DEFAULT_FRAME_ID, DISTRACTOR_SLOTS, N_LIGHTS, N_TEXTURES, \
    OBJECT_SLOTS, QUALITY_PRESETS, SCENE_KINDS, Item, SceneLayout, build_mjcf, sample_layout, \
    sample_sequence, with_camera_pose
from depthdet_ros.sim.textures import make_texture

# Pixels a separate occlusion pass costs in fixed overhead (scene update, read-back).
PASS_COST_PIXELS = 30000
_GEOM_TYPES = {'sphere': mujoco.mjtGeom.mjGEOM_SPHERE, 'capsule': mujoco.mjtGeom.mjGEOM_CAPSULE,
               'ellipsoid': mujoco.mjtGeom.mjGEOM_ELLIPSOID,
               'cylinder': mujoco.mjtGeom.mjGEOM_CYLINDER, 'box': mujoco.mjtGeom.mjGEOM_BOX}
# Independent random streams derived from one user seed.
_FRAMES_STREAM, _SEQUENCE_STREAM, _TEXTURE_STREAM, _MOTION_STREAM = 1, 2, 3, 4
# Independent frames index // TEXTURE_BLOCK share one set of textures.
TEXTURE_BLOCK = 8
# Moving frames are drawn in this first stretch of their sequence (s): the approaching
# walker meets the camera 4-9 s in (sim.motion).
MOVING_WINDOW_S = 10.0


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one object visible in a frame (optical frame: x right, y down, z fwd).

    box: the visible part, in pixel-edge coordinates (x2, y2 exclusive: width = number
    of columns). visibility = visible_pixels / unoccluded_pixels, where unoccluded
    counts the pixels the object covers with every other thing removed (the part
    outside the image counts as neither). depth: median z of the visible pixels (m).
    center/size: centre and extent of the object's own bounding box (size along the
    object's x, y, z); orientation_xyzw: the object frame's rotation in the optical
    frame as a ROS quaternion. distance: |center| (m). In sequences with moving
    objects, velocity: d/dt of `center` in the optical frame (m/s; the camera's own
    motion included) and world_velocity: the centre's velocity in the world (zero for
    static objects); None elsewhere.
    """

    instance_id: int
    class_id: int
    class_name: str
    box: Box
    visible_pixels: int
    unoccluded_pixels: int
    visibility: float
    depth: float
    center: Point3D
    distance: float
    size: Point3D
    orientation_xyzw: Tuple[float, float, float, float]
    velocity: Optional[Point3D] = None
    world_velocity: Optional[Point3D] = None


@dataclass
class SimFrame:
    """One rendered frame and its ground truth.

    depth: float32 metres, z along the optical axis, NaN where no surface.
    instance_mask: uint16, 0 = no object of interest, else the ObjectTruth.instance_id
    (stable for an object through a sequence). class_mask: uint8, 0 = none, else
    class_id + 1. camera_pose: 4x4 world-from-optical. time: seconds since the start
    of the sequence (0 for independent frames). camera_twist (sequences only): the
    camera's linear (m/s) and angular (rad/s) velocity in its optical frame, 6 floats.
    """

    index: int
    scene: str
    rgb: np.ndarray
    depth: np.ndarray
    instance_mask: np.ndarray
    class_mask: np.ndarray
    objects: List[ObjectTruth]
    camera: CameraModel
    camera_pose: np.ndarray
    time: float = 0.0
    camera_twist: Optional[np.ndarray] = None


def frame_rng(seed: int, index: int, stream: int = _FRAMES_STREAM) -> np.random.Generator:
    """Return the Generator of frame `index` under a seed (independent of other frames)."""
    if seed < 0 or index < 0:
        raise ValueError('seed and frame index must be non-negative')
    return np.random.default_rng([stream, seed, index])


class SimWorld:
    """One MuJoCo world and renderer, reshaped to each layout (no recompilation).

    Use as a context manager, or call close(), to free the GL context promptly.
    """

    def __init__(self, max_width: int = 640, max_height: int = 480,
                 frame_id: str = DEFAULT_FRAME_ID, quality: str = 'standard'):
        self.frame_id = frame_id
        self.quality = quality
        self._shadows = QUALITY_PRESETS[quality]['shadows']
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(max_width, max_height, quality))
        self.data = mujoco.MjData(self.model)
        self.renderer = OffscreenRenderer(self.model, max_width, max_height)
        m = self.model

        def geom(name):
            return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)

        def body(name):
            return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)

        self._object_bodies = [body(f'object{s}') for s in range(OBJECT_SLOTS)]
        self._object_geoms = np.array([[geom(f'object{s}_{p}') for p in range(MAX_OBJECT_PARTS)]
                                       for s in range(OBJECT_SLOTS)])
        self._distractor_bodies = [body(f'distractor{s}') for s in range(DISTRACTOR_SLOTS)]
        self._distractor_geoms = np.array(
            [[geom(f'distractor{s}_{p}') for p in range(MAX_DISTRACTOR_PARTS)]
             for s in range(DISTRACTOR_SLOTS)])
        self._room_geoms = {name: geom(f'room_{name}') for name in
                            ('floor', 'ceiling', 'wall0', 'wall1', 'wall2', 'wall3')}
        # Slot geoms are moved inside their bodies every frame: make MuJoCo apply
        # geom_pos/geom_quat rather than the "same frame as the body" shortcut.
        m.geom_sameframe[:] = 0
        self._texture_seed: Optional[int] = None
        self._shown_groups = m.geom_group.copy()

    def close(self):
        self.renderer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- writing a layout into the model -----------------------------------------

    def apply(self, layout: SceneLayout):
        """Shape the model after `layout` and update its kinematics."""
        m = self.model
        if layout.texture_seed != self._texture_seed:
            self._load_textures(layout.texture_seed)
        m.geom_group[self._object_geoms.ravel()] = HIDDEN_GROUP
        m.geom_group[self._distractor_geoms.ravel()] = HIDDEN_GROUP
        self._apply_room(layout.room)
        objects, distractors = layout.objects, layout.distractors
        if len(objects) > OBJECT_SLOTS or len(distractors) > DISTRACTOR_SLOTS:
            raise ValueError('layout has more items than the world has slots')
        for body, geoms, item in zip(self._object_bodies, self._object_geoms, objects):
            self._apply_item(body, geoms, item)
        for body, geoms, item in zip(self._distractor_bodies, self._distractor_geoms,
                                     distractors):
            self._apply_item(body, geoms, item)
        for index, light in enumerate(layout.lights[:N_LIGHTS]):
            m.light_pos[index] = light.position
            m.light_dir[index] = light.direction
            m.light_diffuse[index] = light.diffuse
            m.light_ambient[index] = light.ambient
            m.light_specular[index] = light.specular
            m.light_cutoff[index] = light.cutoff_deg
            m.light_exponent[index] = 2.0
            m.light_castshadow[index] = light.cast_shadow and self._shadows
            m.light_active[index] = 1
        m.light_active[len(layout.lights):] = 0
        m.vis.headlight.ambient[:] = layout.headlight[0]
        m.vis.headlight.diffuse[:] = layout.headlight[1]
        m.vis.headlight.specular[:] = 0.0
        camera = layout.camera
        m.cam_pos[0] = camera.position
        m.cam_quat[0] = matrix_to_quat(camera.rotation @ OPTICAL_FROM_MUJOCO_CAMERA)
        m.cam_fovy[0] = camera.fovy_deg
        mujoco.mj_kinematics(m, self.data)
        mujoco.mj_camlight(m, self.data)
        self._shown_groups = m.geom_group.copy()

    def _load_textures(self, seed: int):
        m = self.model
        rng = np.random.default_rng([seed])
        for texture in range(N_TEXTURES):
            start = m.tex_adr[texture]
            count = m.tex_width[texture] * m.tex_height[texture] * m.tex_nchannel[texture]
            m.tex_data[start:start + count] = make_texture(rng, int(m.tex_width[texture])).ravel()
            self.renderer.upload_texture(texture)
        m.mat_specular[:] = rng.uniform(0.05, 0.6, m.nmat)
        m.mat_shininess[:] = rng.uniform(0.05, 0.8, m.nmat)
        m.mat_reflectance[:] = 0.0  # reflections would cost another render pass
        self._texture_seed = seed

    def _apply_room(self, room):
        m, hx, hy, h = self.model, room.half_x, room.half_y, room.height
        t = 0.05  # half thickness of floor, ceiling and walls
        boxes = {'floor': ((0, 0, -t), (hx + 2 * t, hy + 2 * t, t), room.floor),
                 'ceiling': ((0, 0, h + t), (hx + 2 * t, hy + 2 * t, t), room.ceiling),
                 'wall0': ((hx + t, 0, h / 2), (t, hy + 2 * t, h / 2 + t), room.walls[0]),
                 'wall1': ((-hx - t, 0, h / 2), (t, hy + 2 * t, h / 2 + t), room.walls[1]),
                 'wall2': ((0, hy + t, h / 2), (hx + 2 * t, t, h / 2 + t), room.walls[2]),
                 'wall3': ((0, -hy - t, h / 2), (hx + 2 * t, t, h / 2 + t), room.walls[3])}
        for name, (pos, size, look) in boxes.items():
            g = self._room_geoms[name]
            m.geom_pos[g], m.geom_size[g] = pos, size
            m.geom_matid[g], m.geom_rgba[g] = look.material, look.rgba

    def _apply_item(self, body: int, geoms: np.ndarray, item: Item):
        m = self.model
        m.body_pos[body] = item.position
        m.body_quat[body] = item.quat
        parts = item.shape.parts
        if len(parts) > len(geoms):
            raise ValueError(f'{item.kind} has {len(parts)} parts, a slot holds {len(geoms)}')
        used = geoms[:len(parts)]
        m.geom_type[used] = [_GEOM_TYPES[p.shape] for p in parts]
        m.geom_size[used] = [p.size for p in parts]
        m.geom_pos[used] = [p.pos for p in parts]
        m.geom_quat[used] = [p.quat for p in parts]
        m.geom_matid[used] = [item.appearance[p.surface].material for p in parts]
        m.geom_rgba[used] = [item.appearance[p.surface].rgba for p in parts]
        m.geom_group[used] = 0

    # ---- rendering and ground truth ------------------------------------------------

    def render(self, layout: SceneLayout, index: int = 0, time: float = 0.0) -> SimFrame:
        """Render `layout` and compute its ground truth."""
        self.apply(layout)
        camera = layout.camera
        width, height = camera.width, camera.height
        renderer = self.renderer
        renderer.update_scene(self.data)
        rgb = renderer.render_color(width, height)
        geom_ids, depth = renderer.render_labels(width, height, with_depth=True)

        objects = layout.objects
        geom_instance = self._geom_instance_lut(len(objects))
        instance_mask = geom_instance[geom_ids + 1]
        class_lut = np.zeros(len(objects) + 1, dtype=np.uint8)
        class_lut[1:] = [item.class_id + 1 for item in objects]
        class_mask = class_lut[instance_mask]

        cam_model = camera.model(self.frame_id)
        optical_from_world = np.linalg.inv(camera.world_from_optical())
        rects = [self._projected_rect(item, optical_from_world, cam_model)
                 for item in layout.items]
        object_rects = [r for r, item in zip(rects, layout.items) if item.class_id >= 0]
        visible = np.bincount(instance_mask.ravel(), minlength=len(objects) + 1)
        unoccluded = self._unoccluded_pixels(layout, rects, visible, width, height)

        truths = []
        for k, item in enumerate(objects):
            instance_id = k + 1
            if visible[instance_id] == 0:
                continue
            box, median_depth = self._visible_box_and_depth(instance_mask, depth, instance_id,
                                                            object_rects[k], visible[instance_id])
            truths.append(self._object_truth(item, instance_id, box, int(visible[instance_id]),
                                             int(unoccluded[instance_id]), median_depth,
                                             optical_from_world))
        self.apply_groups(self._shown_groups)
        return SimFrame(index=index, scene=layout.kind, rgb=rgb, depth=depth,
                        instance_mask=instance_mask, class_mask=class_mask, objects=truths,
                        camera=cam_model, camera_pose=camera.world_from_optical(), time=time)

    def apply_groups(self, groups: np.ndarray):
        self.model.geom_group[:] = groups

    def _geom_instance_lut(self, n_objects: int) -> np.ndarray:
        # Index 0 stands for "no geom" (id -1), hence the +1 shift.
        lut = np.zeros(self.model.ngeom + 1, dtype=np.uint16)
        for k in range(n_objects):
            lut[self._object_geoms[k] + 1] = k + 1
        return lut

    @staticmethod
    def _projected_rect(item: Item, optical_from_world, cam: CameraModel):
        """Pixel rectangle (x1, y1, x2, y2) holding the item's projected bounding box.

        None when the box reaches behind the camera (it may then cover anything).
        """
        low, high = item.shape.bounds()
        corners = np.array([[x, y, z, 1.0] for x in (low[0], high[0]) for y in (low[1], high[1])
                            for z in (low[2], high[2])])
        points = (optical_from_world @ item.world_from_object() @ corners.T)[:3]
        if np.any(points[2] <= 1e-3):
            return None
        u = cam.fx * points[0] / points[2] + cam.cx
        v = cam.fy * points[1] / points[2] + cam.cy
        return (u.min(), v.min(), u.max(), v.max())

    def _unoccluded_pixels(self, layout, rects, visible, width, height):
        """Pixels each object covers when drawn without the rest of the scene.

        An object whose projected box overlaps nothing else's cannot be occluded and
        keeps its visible count. The others are drawn with everything else hidden,
        each pass rendering only the pixel window around its objects; objects whose
        boxes do not overlap (so cannot hide each other) share a pass when that
        saves work.
        """
        unoccluded = visible.copy()
        object_items = [i for i, item in enumerate(layout.items) if item.class_id >= 0]
        passes: List[Tuple[List[int], Tuple[int, int, int, int]]] = []
        for k, item_index in enumerate(object_items):
            own = rects[item_index]
            if visible[k + 1] == 0 or not any(
                    _overlap(own, other) for j, other in enumerate(rects)
                    if j != item_index and layout.items[j].kind != 'rug'):
                continue
            window = _pixel_window(own, width, height)
            for index, (members, shared) in enumerate(passes):
                union = _union(shared, window)
                if not any(_overlap(own, rects[object_items[j]]) for j in members) and \
                        _area(union) - _area(shared) - _area(window) < PASS_COST_PIXELS:
                    passes[index] = (members + [k], union)
                    break
            else:
                passes.append(([k], window))
        m = self.model
        lut = self._geom_instance_lut(len(object_items))
        for members, window in passes:
            groups = np.full(m.ngeom, HIDDEN_GROUP, dtype=m.geom_group.dtype)
            for k in members:
                groups[self._object_geoms[k][:len(layout.items[object_items[k]].shape.parts)]] = 0
            self.apply_groups(groups)
            self.renderer.update_scene(self.data)
            geom_ids, _ = self.renderer.render_labels(width, height, with_depth=False,
                                                      window=window)
            counts = np.bincount(lut[geom_ids + 1].ravel(), minlength=len(object_items) + 1)
            for k in members:
                unoccluded[k + 1] = counts[k + 1]
        return unoccluded

    @staticmethod
    def _visible_box_and_depth(instance_mask, depth, instance_id, rect, expected):
        """Pixel-edge box and median depth of one instance's visible pixels."""
        height, width = instance_mask.shape
        # Search the projected rectangle only; fall back to the whole image if it does
        # not hold every pixel.
        x1, y1, x2, y2 = _pixel_window(rect, width, height)
        mask = instance_mask[y1:y2, x1:x2] == instance_id
        if int(np.count_nonzero(mask)) != expected:
            x1, y1, x2, y2 = 0, 0, width, height
            mask = instance_mask == instance_id
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        box = Box(float(x1 + cols[0]), float(y1 + rows[0]), float(x1 + cols[-1] + 1),
                  float(y1 + rows[-1] + 1))
        return box, float(np.median(depth[y1:y2, x1:x2][mask]))

    @staticmethod
    def _object_truth(item, instance_id, box, visible, unoccluded, median_depth,
                      optical_from_world) -> ObjectTruth:
        low, high = item.shape.bounds()
        optical_from_object = optical_from_world @ item.world_from_object()
        centre = optical_from_object[:3, :3] @ (0.5 * (low + high)) + optical_from_object[:3, 3]
        size = high - low
        w, x, y, z = matrix_to_quat(optical_from_object[:3, :3])
        return ObjectTruth(
            instance_id=instance_id, class_id=item.class_id,
            class_name=CLASS_NAMES[item.class_id], box=box, visible_pixels=visible,
            unoccluded_pixels=unoccluded, visibility=min(visible / max(unoccluded, 1), 1.0),
            depth=median_depth, center=Point3D(*(float(v) for v in centre)),
            distance=float(np.linalg.norm(centre)), size=Point3D(*(float(v) for v in size)),
            orientation_xyzw=(float(x), float(y), float(z), float(w)))


def _pixel_window(rect, width, height) -> Tuple[int, int, int, int]:
    """Integer pixel window holding a projected rectangle (None: the whole image)."""
    if rect is None:
        return 0, 0, width, height
    # Two pixels of slack for rasterisation rounding at the edges.
    x1, y1 = max(int(np.floor(rect[0])) - 2, 0), max(int(np.floor(rect[1])) - 2, 0)
    x2, y2 = min(int(np.ceil(rect[2])) + 3, width), min(int(np.ceil(rect[3])) + 3, height)
    if x1 >= x2 or y1 >= y2:
        return 0, 0, width, height
    return x1, y1, x2, y2


def _union(a, b):
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _area(window) -> int:
    return (window[2] - window[0]) * (window[3] - window[1])


def _overlap(a, b) -> bool:
    """Whether two pixel rectangles (None = unbounded) overlap."""
    if a is None or b is None:
        return True
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ---- frame sources -----------------------------------------------------------------

def _pick_size(rng, sizes: Sequence[Tuple[int, int]]) -> Tuple[int, int]:
    return tuple(sizes[int(rng.integers(len(sizes)))]) if len(sizes) > 1 else tuple(sizes[0])


def frame_layout(seed: int, index: int, scene: str = 'room',
                 sizes: Sequence[Tuple[int, int]] = ((640, 480),),
                 moving: bool = False) -> SceneLayout:
    """Layout of independent frame `index` under `seed`.

    scene: 'room', 'tabletop' or 'mixed' (each frame picks one). With several sizes
    each frame picks one. With `moving`, the frame is a moment of a sequence of its own
    (moving_frame_layout).
    """
    rng = frame_rng(seed, index)
    kind = SCENE_KINDS[int(rng.integers(len(SCENE_KINDS)))] if scene == 'mixed' else scene
    size = _pick_size(rng, sizes)
    layout = moving_frame_layout(rng, kind, size) if moving else sample_layout(rng, kind, size)
    # Consecutive frames share a texture set (colours, materials and everything else
    # still vary per frame): making and uploading textures costs more than rendering.
    block_rng = frame_rng(seed, index // TEXTURE_BLOCK, _TEXTURE_STREAM)
    return replace(layout, texture_seed=int(block_rng.integers(2 ** 31)))


def moving_frame_layout(rng, kind: str, size: Tuple[int, int]) -> SceneLayout:
    """One moment of a moving sequence (as `synth bag --moving` records) drawn from `rng`.

    The time is drawn in the sequence's first MOVING_WINDOW_S seconds, where the room's
    approaching walker meets the camera: frames of people at every distance down to
    the 0.9 m where they stop, often cut by the image border, which independent frames
    seldom show.
    """
    layout, path = sample_sequence(rng, kind, size)
    layout, shuttles = add_motions(rng, layout, path)
    t = float(rng.uniform(0.0, MOVING_WINDOW_S))
    position, rotation = path.pose(t)
    return with_camera_pose(layout_at(layout, shuttles, t), position, rotation)


def _max_size(sizes) -> Tuple[int, int]:
    return max(w for w, _ in sizes), max(h for _, h in sizes)


def generate_frames(seed: int, n_frames: int, scene: str = 'room',
                    sizes: Sequence[Tuple[int, int]] = ((640, 480),), start: int = 0,
                    world: Optional[SimWorld] = None, quality: str = 'standard'
                    ) -> Iterator[SimFrame]:
    """Yield independent random frames start .. start + n_frames - 1.

    Each frame comes from its own seed (see frame_layout). A `world` may be passed to
    reuse its GL context; otherwise one is made with `quality` and freed at the end.
    """
    own = world is None
    world = world or SimWorld(*_max_size(sizes), quality=quality)
    try:
        for index in range(start, start + n_frames):
            yield world.render(frame_layout(seed, index, scene, sizes), index)
    finally:
        if own:
            world.close()


class CameraSequence:
    """A scene seen by a camera moving smoothly along a periodic path.

    frame(i) renders the view at t = i / rate_hz for any i >= 0, or at the `t` given
    (a live camera's clock; the path repeats after `period_s` seconds). With `moving`,
    people walk and table objects slide (see sim.motion; drawn from a stream of their
    own, so the static scene is the same as without) and every ObjectTruth carries its
    velocities.
    """

    def __init__(self, seed: int, scene: str = 'room', size: Tuple[int, int] = (640, 480),
                 rate_hz: float = 10.0, speed: float = 0.4, world: Optional[SimWorld] = None,
                 quality: str = 'standard', moving: bool = False):
        if rate_hz <= 0:
            raise ValueError('rate_hz must be positive')
        rng = frame_rng(seed, 0, _SEQUENCE_STREAM)
        self.layout, self.path = sample_sequence(rng, scene, tuple(size), speed)
        self.moving = bool(moving)
        self.shuttles = ()
        if self.moving:
            self.layout, self.shuttles = add_motions(frame_rng(seed, 0, _MOTION_STREAM),
                                                     self.layout, self.path)
        self.rate_hz = float(rate_hz)
        self._own_world = world is None
        self.world = world or SimWorld(*size, quality=quality)

    @property
    def period_s(self) -> float:
        return float(2 * np.pi / self.path.angular_speed)

    def frame(self, index: int, t: Optional[float] = None) -> SimFrame:
        t = index / self.rate_hz if t is None else float(t)
        position, rotation = self.path.pose(t)
        layout = layout_at(self.layout, self.shuttles, t)
        frame = self.world.render(with_camera_pose(layout, position, rotation), index, t)
        frame.camera_twist = self.camera_twist(t)
        if self.moving:
            frame.objects = [self._with_velocity(truth, t) for truth in frame.objects]
        return frame

    def camera_twist(self, t: float) -> np.ndarray:
        """Return the camera's (linear m/s, angular rad/s) velocity at t, optical frame.

        Central differences of the path: linear R^T dp/dt, angular from R^T dR/dt (skew).
        """
        h = VELOCITY_STEP_S
        (p0, r0), (p1, r1) = self.path.pose(t - h), self.path.pose(t + h)
        rotation = self.path.pose(t)[1]
        linear = rotation.T @ (p1 - p0) / (2 * h)
        spin = rotation.T @ (r1 - r0) / (2 * h)
        angular = 0.5 * np.array([spin[2, 1] - spin[1, 2], spin[0, 2] - spin[2, 0],
                                  spin[1, 0] - spin[0, 1]])
        return np.concatenate([linear, angular])

    def _optical_centre(self, object_index: int, t: float) -> np.ndarray:
        """Centre of an object's bounding box in the optical frame at time t."""
        item = layout_at(self.layout, self.shuttles, t).objects[object_index]
        position, rotation = self.path.pose(t)
        low, high = item.shape.bounds()
        world = item.world_from_object() @ np.append(0.5 * (low + high), 1.0)
        return np.asarray(rotation).T @ (world[:3] - position)

    def _with_velocity(self, truth: ObjectTruth, t: float) -> ObjectTruth:
        k = truth.instance_id - 1
        velocity = optical_velocity(lambda s: self._optical_centre(k, s), t)
        item_index = [i for i, item in enumerate(self.layout.items) if item.class_id >= 0][k]
        world = np.zeros(3)
        for shuttle in self.shuttles:
            if shuttle.item == item_index:
                world = shuttle.state(t)[1]
        return replace(truth, velocity=Point3D(*(float(v) for v in velocity)),
                       world_velocity=Point3D(*(float(v) for v in world)))

    def close(self):
        if self._own_world:
            self.world.close()


def generate_sequence(seed: int, n_frames: int, scene: str = 'room',
                      size: Tuple[int, int] = (640, 480), rate_hz: float = 10.0,
                      speed: float = 0.4, world: Optional[SimWorld] = None,
                      quality: str = 'standard', moving: bool = False) -> Iterator[SimFrame]:
    """Yield `n_frames` frames at `rate_hz` of a camera moving at `speed` m/s in one scene.

    With `moving`, objects move too (see CameraSequence).
    """
    sequence = CameraSequence(seed, scene, size, rate_hz, speed, world, quality, moving)
    try:
        for index in range(n_frames):
            yield sequence.frame(index)
    finally:
        sequence.close()
