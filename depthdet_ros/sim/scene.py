"""Random scene layouts (room, tabletop), camera paths, and the MuJoCo world they fill.

A `SceneLayout` is plain data drawn from a numpy Generator: room, objects with their
parts and appearance, distractors, lights and camera. The same Generator state gives
the same layout on any machine (no time or global random state is used).

The MuJoCo model (`build_mjcf`) is fixed: a room, a pool of object and distractor
slots with MAX_*_PARTS geoms each, texture and material pools, lights and one camera.
The renderer writes a layout into that model's arrays each frame, so nothing is
recompiled between frames.

Frames: world z up, floor at z = 0; camera rotations are world-from-optical
(x right, y down, z forward).
"""
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.sim.geometry import forward_vector, look_rotation, quat_to_matrix, yaw_quat
from depthdet_ros.sim.objects import CLASS_NAMES, DISTRACTOR_KINDS, MAX_DISTRACTOR_PARTS, \
    MAX_OBJECT_PARTS, OBJECT_KINDS, Shape
from depthdet_ros.sim.textures import TEXTURE_SIZE, palette_colour

__all__ = ['CLASS_NAMES', 'SCENE_KINDS', 'SceneLayout', 'sample_layout', 'sample_sequence',
           'build_mjcf']

SCENE_KINDS = ('room', 'tabletop')
DEFAULT_FRAME_ID = 'camera_optical_frame'

OBJECT_SLOTS = 24
DISTRACTOR_SLOTS = 16
N_LIGHTS = 3
N_TEXTURES = 8
# MuJoCo measures the clip planes in units of the model extent, fixed here.
MODEL_EXTENT = 10.0
Z_NEAR = 0.02  # m
Z_FAR = 60.0  # m
MIN_OBJECT_DISTANCE = 0.3  # m, nearest an object centre comes to the camera
MAX_OBJECT_DISTANCE = 10.0  # m


@dataclass(frozen=True)
class MaterialSpec:
    """A pool material: texture index (-1 none), repeats, and whether they are per metre."""

    texture: int
    repeat: Tuple[float, float]
    per_metre: bool


# Textured materials (each texture tiled 4 ways) followed by plain ones.
MATERIALS = tuple(MaterialSpec(t, (r, r), per_metre)
                  for t in range(N_TEXTURES)
                  for r, per_metre in ((1.5, True), (0.6, True), (1.0, False), (3.0, False))) \
    + tuple(MaterialSpec(-1, (1.0, 1.0), False) for _ in range(4))
_TILED = [i for i, m in enumerate(MATERIALS) if m.per_metre]
_TEXTURED = [i for i, m in enumerate(MATERIALS) if m.texture >= 0]
_PLAIN = [i for i, m in enumerate(MATERIALS) if m.texture < 0]


@dataclass(frozen=True)
class Appearance:
    """How one surface looks: pool material index and RGBA tint (multiplies the texture)."""

    material: int
    rgba: Tuple[float, float, float, float]


@dataclass(frozen=True)
class Item:
    """An object of interest (class_id >= 0) or a distractor (class_id = -1) in the world."""

    kind: str
    class_id: int
    shape: Shape
    appearance: Tuple[Appearance, ...]  # one per surface index used by the parts
    position: Tuple[float, float, float]  # object-frame origin in the world
    yaw: float

    @property
    def quat(self) -> np.ndarray:
        return yaw_quat(self.yaw)

    def world_from_object(self) -> np.ndarray:
        """4x4 pose of the object frame in the world."""
        pose = np.eye(4)
        pose[:3, :3] = quat_to_matrix(self.quat)
        pose[:3, 3] = self.position
        return pose


@dataclass(frozen=True)
class Light:
    """A spot light (cutoff up to 90 deg) in world coordinates; colours in [0, 1]."""

    position: Tuple[float, float, float]
    direction: Tuple[float, float, float]
    diffuse: Tuple[float, float, float]
    ambient: Tuple[float, float, float]
    specular: Tuple[float, float, float]
    cutoff_deg: float
    cast_shadow: bool


@dataclass(frozen=True, eq=False)
class CameraSpec:
    """Pinhole camera: pose (world-from-optical), image size and vertical field of view."""

    position: np.ndarray
    rotation: np.ndarray
    width: int
    height: int
    fovy_deg: float

    @property
    def focal_px(self) -> float:
        return 0.5 * self.height / np.tan(np.radians(self.fovy_deg) / 2.0)

    def model(self, frame_id: str = DEFAULT_FRAME_ID) -> CameraModel:
        """Intrinsics of the rendered image: square pixels, principal point centred."""
        f = self.focal_px
        K = np.array([[f, 0.0, (self.width - 1) / 2.0],
                      [0.0, f, (self.height - 1) / 2.0],
                      [0.0, 0.0, 1.0]])
        return CameraModel(K=K, width=self.width, height=self.height, D=np.zeros(5),
                           frame_id=frame_id)

    def world_from_optical(self) -> np.ndarray:
        pose = np.eye(4)
        pose[:3, :3] = self.rotation
        pose[:3, 3] = self.position
        return pose


@dataclass(frozen=True)
class Room:
    """Box room centred on the origin: half sizes, height and surface looks."""

    half_x: float
    half_y: float
    height: float
    floor: Appearance
    walls: Tuple[Appearance, Appearance, Appearance, Appearance]  # +x, -x, +y, -y
    ceiling: Appearance


@dataclass(frozen=True, eq=False)
class SceneLayout:
    """Everything needed to render one frame."""

    kind: str
    room: Room
    items: Tuple[Item, ...]
    lights: Tuple[Light, ...]
    headlight: Tuple[float, float]  # ambient, diffuse grey levels
    camera: CameraSpec
    texture_seed: int  # textures and material finishes are drawn from this

    @property
    def objects(self) -> List[Item]:
        return [item for item in self.items if item.class_id >= 0]

    @property
    def distractors(self) -> List[Item]:
        return [item for item in self.items if item.class_id < 0]


# ---- camera paths for sequences --------------------------------------------------

@dataclass(frozen=True)
class RoomWalk:
    """Camera walking an ellipse round the room, looking inwards; periodic in the angle."""

    centre: Tuple[float, float]
    radii: Tuple[float, float]
    height: float
    start_angle: float
    angular_speed: float  # rad/s along the ellipse
    look_in: float  # rad the view turns left of the walking direction
    pitch: float

    def pose(self, t: float) -> Tuple[np.ndarray, np.ndarray]:
        """(position, world-from-optical rotation) at time t (s)."""
        phi = self.start_angle + self.angular_speed * t
        a, b = self.radii
        position = np.array([self.centre[0] + a * np.cos(phi), self.centre[1] + b * np.sin(phi),
                             self.height + 0.02 * np.sin(4 * phi)])
        heading = np.arctan2(b * np.cos(phi), -a * np.sin(phi)) + self.look_in \
            + 0.15 * np.sin(2 * phi)
        pitch = self.pitch + 0.05 * np.sin(3 * phi)
        return position, look_rotation(forward_vector(heading, pitch), 0.02 * np.sin(5 * phi))

    def sample_points(self, count: int = 64) -> np.ndarray:
        phi = np.linspace(0, 2 * np.pi, count, endpoint=False)
        return np.stack([self.centre[0] + self.radii[0] * np.cos(phi),
                         self.centre[1] + self.radii[1] * np.sin(phi)], axis=1)


@dataclass(frozen=True)
class TableOrbit:
    """Camera circling a table at arm height, looking at the table top."""

    centre: Tuple[float, float, float]  # table-top centre
    radius: float
    height: float  # above the table top
    start_angle: float
    angular_speed: float

    def pose(self, t: float) -> Tuple[np.ndarray, np.ndarray]:
        phi = self.start_angle + self.angular_speed * t
        centre = np.asarray(self.centre)
        position = centre + [self.radius * np.cos(phi), self.radius * np.sin(phi),
                             self.height + 0.05 * np.sin(2 * phi)]
        target = centre + [0.1 * np.cos(3 * phi), 0.1 * np.sin(2 * phi), 0.0]
        return position, look_rotation(target - position, 0.0)

    def sample_points(self, count: int = 64) -> np.ndarray:
        phi = np.linspace(0, 2 * np.pi, count, endpoint=False)
        return np.stack([self.centre[0] + self.radius * np.cos(phi),
                         self.centre[1] + self.radius * np.sin(phi)], axis=1)


# ---- sampling ----------------------------------------------------------------------

def _appearance(rng, palette, tiled=False, textured_prob=0.5) -> Appearance:
    colour = palette_colour(rng, palette)
    if rng.random() < textured_prob:
        material = int(rng.choice(_TILED if tiled else _TEXTURED))
    else:
        material = int(rng.choice(_PLAIN))
    return Appearance(material, (float(colour[0]), float(colour[1]), float(colour[2]), 1.0))


def _item(rng, kind, shape, palettes, position, yaw, class_id) -> Item:
    surfaces = max(p.surface for p in shape.parts) + 1
    textured_prob = 0.0 if kind == 'person' else 0.45
    looks = tuple(_appearance(rng, palettes[min(s, len(palettes) - 1)],
                              textured_prob=textured_prob) for s in range(surfaces))
    return Item(kind, class_id, shape, looks, tuple(float(v) for v in position), float(yaw))


def _footprint(shape: Shape, position, yaw):
    """(centre xy, radius) of a circle holding the shape's floor projection."""
    low, high = shape.bounds()
    centre = 0.5 * (low[:2] + high[:2])
    c, s = np.cos(yaw), np.sin(yaw)
    world = np.asarray(position[:2]) + [c * centre[0] - s * centre[1],
                                        s * centre[0] + c * centre[1]]
    return world, 0.5 * float(np.hypot(*(high[:2] - low[:2])))


class _Placer:
    """Non-overlapping circles on one rectangular surface."""

    def __init__(self, half_x, half_y):
        self.half = np.array([half_x, half_y])
        self.circles: List[Tuple[np.ndarray, float]] = []

    def fits(self, centre, radius, inside=True, gap=0.03) -> bool:
        if inside and np.any(np.abs(centre) + radius > self.half):
            return False
        return all(np.hypot(*(centre - c)) >= radius + r + gap for c, r in self.circles)

    def add(self, centre, radius):
        self.circles.append((np.asarray(centre, dtype=np.float64), float(radius)))


def _sample_room(rng, half_range) -> Room:
    half_x, half_y = rng.uniform(*half_range, size=2)
    wall_palette = 'neutral' if rng.random() < 0.7 else 'any'
    shared = _appearance(rng, wall_palette, tiled=True, textured_prob=0.6)
    walls = tuple(shared if rng.random() < 0.6 else
                  _appearance(rng, wall_palette, tiled=True, textured_prob=0.6) for _ in range(4))
    floor = _appearance(rng, 'wood' if rng.random() < 0.5 else 'neutral', tiled=True,
                        textured_prob=0.9)
    return Room(float(half_x), float(half_y), float(rng.uniform(2.5, 3.5)), floor, walls,
                _appearance(rng, 'neutral', tiled=True, textured_prob=0.3))


def _sample_lights(rng, room: Room) -> Tuple[Tuple[Light, ...], Tuple[float, float]]:
    brightness = rng.uniform(0.7, 1.4)
    lights = []
    for index in range(N_LIGHTS):
        warmth = rng.uniform(-1, 1)  # cool (bluish) to warm (yellowish)
        tint = np.array([1 + 0.15 * warmth, 1.0, 1 - 0.2 * warmth])
        if index == 0:
            position = [rng.uniform(-0.7, 0.7) * room.half_x, rng.uniform(-0.7, 0.7) * room.half_y,
                        room.height - 0.05]
            direction = [rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), -1.0]
            level, cutoff = rng.uniform(0.4, 0.85), rng.uniform(55, 85)
        else:
            position = [rng.uniform(-0.9, 0.9) * room.half_x, rng.uniform(-0.9, 0.9) * room.half_y,
                        rng.uniform(1.5, room.height - 0.1)]
            target = [rng.uniform(-0.5, 0.5) * room.half_x, rng.uniform(-0.5, 0.5) * room.half_y,
                      0.0]
            direction = np.subtract(target, position)
            level, cutoff = rng.uniform(0.1, 0.35), rng.uniform(50, 85)
        diffuse = np.clip(tint * level * brightness, 0, 1)
        lights.append(Light(tuple(float(v) for v in position),
                            tuple(float(v) for v in direction / np.linalg.norm(direction)),
                            tuple(float(v) for v in diffuse),
                            tuple(float(v) for v in np.clip(tint * rng.uniform(0.03, 0.15), 0, 1)),
                            tuple([float(rng.uniform(0.1, 0.4))] * 3), float(cutoff),
                            index == 0 and rng.random() < 0.7))
    return tuple(lights), (float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.05, 0.25)))


def _fovy_deg(rng, width, height, hfov_range=(40.0, 110.0)) -> float:
    hfov = np.radians(rng.uniform(*hfov_range))
    return float(np.degrees(2.0 * np.arctan(np.tan(hfov / 2.0) * height / width)))


def _camera(position, rotation, size, fovy_deg) -> CameraSpec:
    return CameraSpec(np.asarray(position, dtype=np.float64), np.asarray(rotation),
                      int(size[0]), int(size[1]), float(fovy_deg))


def _choose_kind(rng, names: Sequence[str]) -> str:
    weights = np.array([OBJECT_KINDS[n].weight for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


class _LayoutBuilder:
    """Accumulates items on the floor and on table tops, within the slot budget."""

    def __init__(self, rng, room: Room):
        self.rng = rng
        self.room = room
        # Keep walls clear by a margin so nothing pokes through them.
        self.floor = _Placer(room.half_x - 0.05, room.half_y - 0.05)
        self.items: List[Item] = []
        self.tables: List[Tuple[Item, _Placer]] = []
        # Where a still camera stands: objects go no farther than MAX_OBJECT_DISTANCE.
        self.camera_xy: Optional[np.ndarray] = None

    def count(self, objects: bool) -> int:
        return sum((item.class_id >= 0) == objects for item in self.items)

    def room_for(self, objects: bool) -> bool:
        return self.count(objects) < (OBJECT_SLOTS if objects else DISTRACTOR_SLOTS)

    def place_object_on_floor(self, kind, xy, yaw, small=False) -> Optional[Item]:
        if not self.room_for(True):
            return None
        shape = OBJECT_KINDS[kind].build(self.rng, small)
        return self._put_on_floor(kind, shape, OBJECT_KINDS[kind].palettes, xy, yaw,
                                  CLASS_NAMES.index(kind))

    def place_main_table(self, xy) -> Item:
        """Place the work table of a tabletop scene (first, so it always fits)."""
        table = self.place_object_on_floor('table', xy, self.rng.uniform(-np.pi, np.pi),
                                           small=True)
        if table is None:
            raise RuntimeError('the work table does not fit in the room')
        return table

    def _put_on_floor(self, kind, shape, palettes, xy, yaw, class_id, inside=True):
        position = (xy[0], xy[1], 0.0)
        centre, radius = _footprint(shape, position, yaw)
        if not self.floor.fits(centre, radius, inside=inside):
            return None
        if class_id >= 0 and self.camera_xy is not None and \
                np.hypot(*(centre - self.camera_xy)) > MAX_OBJECT_DISTANCE:
            return None
        self.floor.add(centre, radius)
        item = _item(self.rng, kind, shape, palettes, position, yaw, class_id)
        self.items.append(item)
        if shape.support is not None:
            self.tables.append((item, _Placer(shape.support[0], shape.support[1])))
        return item

    def place_on_table(self, table: Item, placer: _Placer, kind, tries=20) -> Optional[Item]:
        """Put one object (a class name) or distractor (a distractor kind) on a table."""
        is_object = kind in OBJECT_KINDS
        if not self.room_for(is_object):
            return None
        if is_object:
            shape, palettes = OBJECT_KINDS[kind].build(self.rng, True), OBJECT_KINDS[kind].palettes
        else:
            shape, palettes = DISTRACTOR_KINDS[kind].build(self.rng), \
                DISTRACTOR_KINDS[kind].palettes
        half_x, half_y, height = table.shape.support
        for _ in range(tries):
            local = self.rng.uniform([-half_x, -half_y], [half_x, half_y])
            local_yaw = self.rng.uniform(-np.pi, np.pi)
            centre, radius = _footprint(shape, (*local, 0.0), local_yaw)
            if not placer.fits(centre, radius, gap=0.01):
                continue
            placer.add(centre, radius)
            c, s = np.cos(table.yaw), np.sin(table.yaw)
            position = np.add(table.position, [c * local[0] - s * local[1],
                                               s * local[0] + c * local[1], height])
            item = _item(self.rng, kind, shape, palettes, position, table.yaw + local_yaw,
                         CLASS_NAMES.index(kind) if is_object else -1)
            self.items.append(item)
            return item
        return None

    def place_random_object(self, names, tries=30) -> Optional[Item]:
        kind = _choose_kind(self.rng, names)
        for _ in range(tries):
            xy = self.rng.uniform([-self.room.half_x, -self.room.half_y],
                                  [self.room.half_x, self.room.half_y])
            item = self.place_object_on_floor(kind, xy, self.rng.uniform(-np.pi, np.pi))
            if item is not None:
                return item
        return None

    def place_distractors(self, wall: int, floor: int, ceiling: int, rugs: int):
        rng, room = self.rng, self.room
        for _ in range(rugs):
            if self.room_for(False):
                # Rugs lie under everything: no footprint reserved.
                shape = DISTRACTOR_KINDS['rug'].build(rng)
                xy = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y]) * 0.6
                self.items.append(_item(rng, 'rug', shape, DISTRACTOR_KINDS['rug'].palettes,
                                        (*xy, 0.0), rng.uniform(-np.pi, np.pi), -1))
        wall_kinds = [k for k, d in DISTRACTOR_KINDS.items() if d.placement == 'wall']
        floor_kinds = [k for k, d in DISTRACTOR_KINDS.items()
                       if d.placement == 'floor' and k != 'rug']
        for _ in range(wall):
            self._place_on_wall(wall_kinds[int(rng.integers(len(wall_kinds)))])
        for _ in range(floor):
            kind = floor_kinds[int(rng.integers(len(floor_kinds)))]
            for _ in range(20):
                xy = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y])
                if not self.room_for(False) or self._put_on_floor(
                        kind, DISTRACTOR_KINDS[kind].build(rng), DISTRACTOR_KINDS[kind].palettes,
                        xy, rng.uniform(-np.pi, np.pi), -1) is not None:
                    break
        for _ in range(ceiling):
            shape = DISTRACTOR_KINDS['lamp'].build(rng)
            # Hang lamps above head height.
            if self.room_for(False) and room.height + shape.bounds()[0][2] > 2.05:
                xy = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y]) * 0.8
                self.items.append(_item(rng, 'lamp', shape, DISTRACTOR_KINDS['lamp'].palettes,
                                        (*xy, room.height), 0.0, -1))

    def _place_on_wall(self, kind, tries=10):
        rng, room = self.rng, self.room
        # (fixed coordinate, along-wall axis, yaw facing into the room) per wall.
        walls = ((room.half_x, 1, np.pi), (-room.half_x, 1, 0.0),
                 (room.half_y, 0, -np.pi / 2), (-room.half_y, 0, np.pi / 2))
        for _ in range(tries):
            if not self.room_for(False):
                return
            fixed, along, yaw = walls[int(rng.integers(4))]
            shape = DISTRACTOR_KINDS[kind].build(rng)
            span = room.half_y if along == 1 else room.half_x
            offset = rng.uniform(-span, span) * 0.8
            xy = (fixed, offset) if along == 1 else (offset, fixed)
            if self._put_on_floor(kind, shape, DISTRACTOR_KINDS[kind].palettes, xy, yaw, -1,
                                  inside=False) is not None:
                return

    def fill_tables(self, chance=0.5, most=3):
        """Put a few small objects or books/plates on the tables placed so far."""
        small = [n for n in CLASS_NAMES if OBJECT_KINDS[n].on_tables]
        for table, placer in list(self.tables):
            if self.rng.random() >= chance:
                continue
            for _ in range(int(self.rng.integers(1, most + 1))):
                if self.rng.random() < 0.75:
                    self.place_on_table(table, placer, _choose_kind(self.rng, small))
                else:
                    self.place_on_table(table, placer, ('books', 'plate')[
                        int(self.rng.integers(2))])


def _room_frame(rng, size) -> SceneLayout:
    room = _sample_room(rng, (2.0, 7.0))
    builder = _LayoutBuilder(rng, room)
    low = rng.random() < 0.35  # robot-height camera
    height = rng.uniform(0.2, 0.6) if low else rng.uniform(0.6, 1.8)
    position = np.array([*rng.uniform([-room.half_x + 0.4, -room.half_y + 0.4],
                                      [room.half_x - 0.4, room.half_y - 0.4]), height])
    for _ in range(20):  # look across the room rather than into a nearby wall
        target = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y])
        if np.hypot(*(target - position[:2])) > 2.0:
            break
    yaw = float(np.arctan2(*(target - position[:2])[::-1]))
    pitch = rng.uniform(-0.2, 0.15) if low else rng.uniform(-0.45, 0.1)
    rotation = look_rotation(forward_vector(yaw, pitch), rng.normal(0.0, 0.03))
    fovy = _fovy_deg(rng, *size)
    camera = _camera(position, rotation, size, fovy)
    builder.floor.add(position[:2], MIN_OBJECT_DISTANCE)
    builder.camera_xy = position[:2]

    hfov = 2.0 * np.arctan(np.tan(np.radians(fovy) / 2.0) * size[0] / size[1])
    for _ in range(int(rng.integers(4, 15))):
        if rng.random() < 0.8:
            _place_in_view(builder, rng, position, yaw, hfov)
        else:
            builder.place_random_object(CLASS_NAMES)
    builder.fill_tables()
    builder.place_distractors(wall=int(rng.integers(2, 7)), floor=int(rng.integers(1, 4)),
                              ceiling=int(rng.integers(0, 3)), rugs=int(rng.integers(0, 3)))
    lights, headlight = _sample_lights(rng, room)
    return SceneLayout('room', room, tuple(builder.items), lights, headlight, camera,
                       int(rng.integers(2 ** 31)))


def _place_in_view(builder, rng, position, yaw, hfov, tries=30):
    """Place an object in the camera's horizontal field of view, 0.3-10 m away."""
    kind = _choose_kind(rng, CLASS_NAMES)
    room = builder.room
    for _ in range(tries):
        bearing = yaw + rng.uniform(-0.45, 0.45) * hfov
        direction = np.array([np.cos(bearing), np.sin(bearing)])
        # Distance to the wall along the bearing bounds how far out the object can go.
        with np.errstate(divide='ignore'):
            to_wall = np.min(np.where(direction != 0, (np.array([room.half_x, room.half_y])
                                                       * np.sign(direction) - position[:2])
                                      / direction, np.inf))
        far = min(MAX_OBJECT_DISTANCE, to_wall - 0.1)
        near = MIN_OBJECT_DISTANCE + 0.1
        if far <= near:
            continue
        # Half log-uniform (many near objects), half uniform (enough far ones).
        distance = np.exp(rng.uniform(np.log(near), np.log(far))) if rng.random() < 0.5 \
            else rng.uniform(near, far)
        item = builder.place_object_on_floor(kind, position[:2] + distance * direction,
                                             rng.uniform(-np.pi, np.pi))
        if item is not None:
            return item
    return None


def _tabletop_frame(rng, size) -> SceneLayout:
    room = _sample_room(rng, (2.5, 5.0))
    builder = _LayoutBuilder(rng, room)
    table_xy = rng.uniform(-0.5, 0.5, size=2)
    table = builder.place_main_table(table_xy)
    half_x, half_y, top = table.shape.support
    c, s = np.cos(table.yaw), np.sin(table.yaw)
    to_world = np.array([[c, -s], [s, c]])

    side = int(rng.integers(4))  # which table edge the arm reaches over
    edge = rng.uniform(-0.1, 0.35)
    along = rng.uniform(-0.6, 0.6)
    local = [(half_x + edge, along * half_y), (-half_x - edge, along * half_y),
             (along * half_x, half_y + edge), (along * half_x, -half_y - edge)][side]
    position = np.array([*(np.asarray(table.position[:2]) + to_world @ local),
                         top + rng.uniform(0.25, 0.8)])
    target_local = rng.uniform([-0.5 * half_x, -0.5 * half_y], [0.5 * half_x, 0.5 * half_y])
    target = np.array([*(np.asarray(table.position[:2]) + to_world @ target_local), top])
    rotation = look_rotation(target - position, rng.normal(0.0, 0.05))
    camera = _camera(position, rotation, size, _fovy_deg(rng, *size, (45.0, 100.0)))
    builder.floor.add(position[:2], 0.4)
    builder.camera_xy = position[:2]

    _, placer = builder.tables[0]
    small = [n for n in CLASS_NAMES if OBJECT_KINDS[n].on_tables]
    for _ in range(int(rng.integers(3, 10))):
        item = builder.place_on_table(table, placer, _choose_kind(rng, small))
        if item is not None and np.linalg.norm(np.subtract(item.position, position)) \
                < MIN_OBJECT_DISTANCE:
            builder.items.remove(item)
    for _ in range(int(rng.integers(0, 5))):
        builder.place_on_table(table, placer, ('books', 'plate')[int(rng.integers(2))])
    for _ in range(int(rng.integers(0, 5))):
        builder.place_random_object(('person', 'chair', 'pole', 'suitcase', 'box', 'ball'))
    builder.place_distractors(wall=int(rng.integers(1, 5)), floor=int(rng.integers(0, 3)),
                              ceiling=int(rng.integers(0, 3)), rugs=int(rng.integers(0, 2)))
    lights, headlight = _sample_lights(rng, room)
    return SceneLayout('tabletop', room, tuple(builder.items), lights, headlight, camera,
                       int(rng.integers(2 ** 31)))


def sample_layout(rng: np.random.Generator, kind: str = 'room',
                  size: Tuple[int, int] = (640, 480)) -> SceneLayout:
    """Draw one random scene of `kind` ('room' or 'tabletop') seen at `size` (W, H)."""
    if kind == 'room':
        return _room_frame(rng, size)
    if kind == 'tabletop':
        return _tabletop_frame(rng, size)
    raise ValueError(f'unknown scene kind {kind!r}; choose from {SCENE_KINDS}')


def sample_sequence(rng: np.random.Generator, kind: str = 'room',
                    size: Tuple[int, int] = (640, 480), speed: float = 0.4):
    """Draw a fixed scene and a smooth, periodic camera path through it.

    Returns (layout, path); `path.pose(t)` gives the camera pose t seconds in, and
    `layout.camera` holds the pose at t = 0. `speed` is the camera's speed in m/s.
    """
    if kind == 'room':
        room = _sample_room(rng, (3.0, 6.0))
        builder = _LayoutBuilder(rng, room)
        radii = (room.half_x * rng.uniform(0.45, 0.65), room.half_y * rng.uniform(0.45, 0.65))
        path = RoomWalk((0.0, 0.0), (float(radii[0]), float(radii[1])),
                        float(rng.uniform(0.3, 1.6)), float(rng.uniform(0, 2 * np.pi)),
                        float(speed / np.mean(radii)), float(rng.uniform(0.7, 1.3)),
                        float(rng.uniform(-0.3, 0.0)))
        for point in path.sample_points():
            builder.floor.add(point, 0.45)
        for _ in range(int(rng.integers(6, 15))):
            builder.place_random_object(CLASS_NAMES)
        builder.fill_tables()
        builder.place_distractors(wall=int(rng.integers(3, 8)), floor=int(rng.integers(1, 4)),
                                  ceiling=int(rng.integers(0, 3)), rugs=int(rng.integers(0, 3)))
    elif kind == 'tabletop':
        room = _sample_room(rng, (3.0, 5.0))
        builder = _LayoutBuilder(rng, room)
        table = builder.place_main_table((0.0, 0.0))
        _, placer = builder.tables[0]
        half_x, half_y, top = table.shape.support
        radius = float(np.hypot(half_x, half_y) + rng.uniform(0.05, 0.3))
        path = TableOrbit((0.0, 0.0, float(top)), radius, float(rng.uniform(0.3, 0.7)),
                          float(rng.uniform(0, 2 * np.pi)), float(speed / radius))
        for point in path.sample_points():
            builder.floor.add(point, 0.35)
        small = [n for n in CLASS_NAMES if OBJECT_KINDS[n].on_tables]
        for _ in range(int(rng.integers(4, 10))):
            builder.place_on_table(table, placer, _choose_kind(rng, small))
        for _ in range(int(rng.integers(0, 4))):
            builder.place_on_table(table, placer, ('books', 'plate')[int(rng.integers(2))])
        for _ in range(int(rng.integers(1, 5))):
            builder.place_random_object(('person', 'chair', 'pole', 'suitcase', 'box', 'ball'))
        builder.place_distractors(wall=int(rng.integers(2, 6)), floor=int(rng.integers(0, 3)),
                                  ceiling=int(rng.integers(0, 3)), rugs=int(rng.integers(0, 2)))
    else:
        raise ValueError(f'unknown scene kind {kind!r}; choose from {SCENE_KINDS}')
    position, rotation = path.pose(0.0)
    hfov_range = (45.0, 100.0) if kind == 'tabletop' else (40.0, 110.0)
    camera = _camera(position, rotation, size, _fovy_deg(rng, *size, hfov_range))
    lights, headlight = _sample_lights(rng, room)
    layout = SceneLayout(kind, room, tuple(builder.items), lights, headlight, camera,
                         int(rng.integers(2 ** 31)))
    return layout, path


def with_camera_pose(layout: SceneLayout, position, rotation) -> SceneLayout:
    """Return the same scene seen from another pose (same intrinsics)."""
    return replace(layout, camera=replace(layout.camera, position=np.asarray(position),
                                          rotation=np.asarray(rotation)))


# ---- the MuJoCo model ------------------------------------------------------------

def _slot_bodies(prefix, slots, parts):
    # Parts start hidden (group 5) as tiny spheres; the renderer shapes them per frame.
    lines = []
    for slot in range(slots):
        geoms = ''.join(f'<geom name="{prefix}{slot}_{p}" type="sphere" size="0.01" group="5" '
                        f'material="mat0"/>' for p in range(parts))
        lines.append(f'<body name="{prefix}{slot}">{geoms}</body>')
    return '\n'.join(lines)


# Render quality presets: shadow map size, anti-aliasing samples, and tessellation of
# round primitives (software GL spends most of its time on these; see
# docs/synthetic_dataset.md for the frame rates they give).
QUALITY_PRESETS = {
    'fast': dict(shadowsize=1024, offsamples=0, numslices=12, numstacks=6, shadows=False),
    'standard': dict(shadowsize=1024, offsamples=0, numslices=16, numstacks=8, shadows=True),
    'high': dict(shadowsize=2048, offsamples=4, numslices=28, numstacks=16, shadows=True),
}


def build_mjcf(max_width: int = 640, max_height: int = 480, quality: str = 'standard') -> str:
    """MJCF text of the fixed world the renderer reshapes per frame."""
    if quality not in QUALITY_PRESETS:
        raise ValueError(f'unknown quality {quality!r}; choose from {tuple(QUALITY_PRESETS)}')
    preset = QUALITY_PRESETS[quality]
    textures = ''.join(
        f'<texture name="tex{t}" type="2d" builtin="flat" rgb1="1 1 1" '
        f'width="{TEXTURE_SIZE}" height="{TEXTURE_SIZE}"/>' for t in range(N_TEXTURES))
    materials = ''.join(
        f'<material name="mat{i}" rgba="1 1 1 1"'
        + (f' texture="tex{m.texture}" texrepeat="{m.repeat[0]} {m.repeat[1]}" '
           f'texuniform="{str(m.per_metre).lower()}"' if m.texture >= 0 else '') + '/>'
        for i, m in enumerate(MATERIALS))
    room = ''.join(f'<geom name="room_{name}" type="box" size="1 1 0.05" material="mat0"/>'
                   for name in ('floor', 'ceiling', 'wall0', 'wall1', 'wall2', 'wall3'))
    lights = ''.join(f'<light name="light{i}" type="spot" pos="0 0 2.5" dir="0 0 -1" '
                     f'castshadow="{"true" if i == 0 else "false"}"/>' for i in range(N_LIGHTS))
    return f'''<mujoco model="depthdet_synthetic_world">
  <compiler angle="radian"/>
  <statistic extent="{MODEL_EXTENT}" center="0 0 1"/>
  <visual>
    <global offwidth="{max_width}" offheight="{max_height}"/>
    <map znear="{Z_NEAR / MODEL_EXTENT}" zfar="{Z_FAR / MODEL_EXTENT}"/>
    <quality shadowsize="{preset['shadowsize']}" offsamples="{preset['offsamples']}"
             numslices="{preset['numslices']}" numstacks="{preset['numstacks']}"/>
  </visual>
  <default><geom contype="0" conaffinity="0"/></default>
  <asset>{textures}{materials}</asset>
  <worldbody>
    {room}
    {lights}
    <camera name="camera" pos="0 0 1" fovy="45"/>
    {_slot_bodies('object', OBJECT_SLOTS, MAX_OBJECT_PARTS)}
    {_slot_bodies('distractor', DISTRACTOR_SLOTS, MAX_DISTRACTOR_PARTS)}
  </worldbody>
</mujoco>
'''
