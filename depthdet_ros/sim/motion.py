"""Moving objects for camera sequences: people walking, objects sliding on the table.

A `Shuttle` moves one item of a layout back and forth between two world points at a
constant speed, pausing at each end; its pose is a pure function of time, so any
frame of a sequence can still be rendered on its own. `add_motions` draws the
shuttles of a sequence from its own random stream (the static scene is drawn first,
unchanged):

- room: one person walking straight at where the camera will be (along its viewing
  direction at the meeting time, stopping ~0.9 m in front of it) at 0.6-1.5 m/s,
  and 0-2 more people walking between random points of the room;
- tabletop (the arm's view): 1-3 objects sliding along the table top, as on a
  conveyor, at 0.05-0.25 m/s, and one person walking in the background.

Walkers may pass through furniture: the ground truth stays exact.
"""
from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

import numpy as np

from depthdet_ros.sim.objects import CLASS_NAMES, OBJECT_KINDS
from depthdet_ros.sim.scene import OBJECT_SLOTS, SceneLayout, _item

# Numerical derivative step for optical-frame velocities (s).
VELOCITY_STEP_S = 1e-4


@dataclass(frozen=True)
class Shuttle:
    """Item `item` of the layout moving start -> end -> start at `speed` m/s, periodic.

    It waits `pause` s at each end; `phase` s shifts the cycle. People turn to face
    the way they walk (their model faces +x); other objects keep their yaw. The path
    is that of the item's origin while it faces the first leg's way; an item turns
    about its bounding box's centre (layout_at), so that centre never jumps and moves
    at the velocity `state` gives.
    """

    item: int
    start: Tuple[float, float, float]
    end: Tuple[float, float, float]
    speed: float
    pause: float
    phase: float
    face_motion: bool
    base_yaw: float

    @property
    def leg_s(self) -> float:
        return float(np.linalg.norm(np.subtract(self.end, self.start))) / self.speed

    @property
    def period_s(self) -> float:
        return 2.0 * (self.leg_s + self.pause)

    def state(self, t: float) -> Tuple[np.ndarray, np.ndarray]:
        """(position, velocity) in the world at time t."""
        start, end = np.asarray(self.start), np.asarray(self.end)
        leg, pause = self.leg_s, self.pause
        tau = (t + self.phase) % self.period_s
        step = (end - start) / leg if leg > 0 else np.zeros(3)
        if tau < pause:
            return start, np.zeros(3)
        if tau < pause + leg:
            return start + step * (tau - pause), step
        if tau < 2 * pause + leg:
            return end, np.zeros(3)
        return end - step * (tau - 2 * pause - leg), -step

    @property
    def first_yaw(self) -> float:
        """Heading about world z on the first leg (and the pause before it)."""
        if not self.face_motion:
            return self.base_yaw
        return float(np.arctan2(self.end[1] - self.start[1], self.end[0] - self.start[0]))

    def yaw(self, t: float) -> float:
        """Heading about world z at time t."""
        if not self.face_motion:
            return self.base_yaw
        tau = (t + self.phase) % self.period_s
        # Walking back (and waiting at the far end) faces the other way.
        return self.first_yaw + (0.0 if tau < self.pause + self.leg_s else np.pi)


def _rotated_xy(yaw: float, point) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([c * point[0] - s * point[1], s * point[0] + c * point[1], 0.0])


def layout_at(layout: SceneLayout, shuttles: Sequence[Shuttle], t: float) -> SceneLayout:
    """Return the layout with every shuttled item where it is at time t."""
    if not shuttles:
        return layout
    items = list(layout.items)
    for shuttle in shuttles:
        position, _ = shuttle.state(t)
        item, yaw = items[shuttle.item], shuttle.yaw(t)
        # Turning about the bounding box's centre, not the model's origin: a person
        # turning round at the end of a walk stays where they are.
        low, high = item.shape.bounds()
        centre = 0.5 * (low + high)
        position = position + _rotated_xy(shuttle.first_yaw, centre) - _rotated_xy(yaw, centre)
        items[shuttle.item] = replace(item, position=tuple(float(v) for v in position),
                                      yaw=float(yaw))
    return replace(layout, items=tuple(items))


def _inside(room, point, margin) -> bool:
    return abs(point[0]) <= room.half_x - margin and abs(point[1]) <= room.half_y - margin


def _distance_to_wall(room, origin, direction, margin) -> float:
    """How far from `origin` (xy) along unit `direction` (xy) the wall margin is."""
    limits = np.array([room.half_x - margin, room.half_y - margin])
    with np.errstate(divide='ignore'):
        steps = np.where(direction != 0, (limits * np.sign(direction) - origin) / direction,
                         np.inf)
    return float(np.min(steps))


def _add_person(rng, items: List, position, yaw) -> int:
    kind = OBJECT_KINDS['person']
    items.append(_item(rng, 'person', kind.build(rng, False), kind.palettes, position, yaw,
                       CLASS_NAMES.index('person')))
    return len(items) - 1


def _object_count(items) -> int:
    return sum(item.class_id >= 0 for item in items)


def _approaching_walker(rng, layout, path, items) -> List[Shuttle]:
    """Add a person who walks along the camera's line of sight to meet it."""
    room = layout.room
    for _ in range(20):
        meet_s = float(rng.uniform(4.0, 9.0))
        position, rotation = path.pose(meet_s)
        forward = np.asarray(rotation)[:2, 2]
        if np.linalg.norm(forward) < 0.3:
            continue  # looking at the floor: no one walks up along that
        forward = forward / np.linalg.norm(forward)
        stop = np.asarray(position[:2]) + 0.9 * forward
        if not _inside(room, stop, 0.3):
            continue
        reach = _distance_to_wall(room, np.asarray(position[:2]), forward, 0.4)
        distance = min(float(rng.uniform(4.0, 6.0)), reach)
        if distance < 2.5:
            continue
        far = np.asarray(position[:2]) + distance * forward
        speed = float(rng.uniform(0.6, 1.5))
        pause = float(rng.uniform(1.0, 2.5))
        leg = (distance - 0.9) / speed
        start = (float(far[0]), float(far[1]), 0.0)
        end = (float(stop[0]), float(stop[1]), 0.0)
        index = _add_person(rng, items, start, 0.0)
        # Arrive at the stop (end of the first leg) at meet_s.
        return [Shuttle(index, start, end, speed, pause, pause + leg - meet_s, True, 0.0)]
    return []


def _random_walker(rng, room, items) -> List[Shuttle]:
    for _ in range(20):
        a = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y]) * 0.8
        b = rng.uniform([-room.half_x, -room.half_y], [room.half_x, room.half_y]) * 0.8
        if np.hypot(*(b - a)) < 1.5:
            continue
        start, end = (float(a[0]), float(a[1]), 0.0), (float(b[0]), float(b[1]), 0.0)
        index = _add_person(rng, items, start, 0.0)
        return [Shuttle(index, start, end, float(rng.uniform(0.5, 1.5)),
                        float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.0, 10.0)), True, 0.0)]
    return []


def _sliders(rng, layout, items) -> List[Shuttle]:
    """1-3 small objects on the work table sliding along it."""
    table = next(item for item in layout.items if item.kind == 'table')
    half_x, half_y, top = table.shape.support
    c, s = np.cos(table.yaw), np.sin(table.yaw)
    on_table = [k for k, item in enumerate(items)
                if item.class_id >= 0 and item.kind != 'table' and item.position[2] > 0.05]
    rng.shuffle(on_table)
    shuttles = []
    for k in on_table[:int(rng.integers(1, 4))]:
        item = items[k]
        local = np.array([[c, s], [-s, c]]) @ (np.asarray(item.position[:2])
                                               - np.asarray(table.position[:2]))
        heading = rng.uniform(-np.pi, np.pi)
        direction = np.array([np.cos(heading), np.sin(heading)])
        limits = np.array([half_x, half_y]) * 0.9
        with np.errstate(divide='ignore'):
            reach = np.min(np.where(direction != 0,
                                    (limits * np.sign(direction) - local) / direction, np.inf))
        length = min(float(rng.uniform(0.15, 0.45)), float(reach))
        if length < 0.08:
            continue
        end_local = local + length * direction
        end = np.asarray(table.position[:2]) + np.array([[c, -s], [s, c]]) @ end_local
        shuttles.append(Shuttle(k, tuple(item.position),
                                (float(end[0]), float(end[1]), item.position[2]),
                                float(rng.uniform(0.05, 0.25)), float(rng.uniform(0.5, 1.5)),
                                float(rng.uniform(0.0, 5.0)), False, item.yaw))
    return shuttles


def add_motions(rng, layout: SceneLayout, path) -> Tuple[SceneLayout, Tuple[Shuttle, ...]]:
    """Return the layout with its moving items added and the shuttles that move them.

    New items go after the existing ones, so the static objects keep their instance
    IDs; walkers are only added while object slots remain.
    """
    items = list(layout.items)
    shuttles: List[Shuttle] = []
    if layout.kind == 'room':
        walkers = [lambda: _approaching_walker(rng, layout, path, items)]
        walkers += [lambda: _random_walker(rng, layout.room, items)] * int(rng.integers(0, 3))
    else:
        shuttles += _sliders(rng, layout, items)
        walkers = [lambda: _random_walker(rng, layout.room, items)]
    for walker in walkers:
        if _object_count(items) < OBJECT_SLOTS:
            shuttles += walker()
    return replace(layout, items=tuple(items)), tuple(shuttles)


def optical_velocity(centre_at, t: float) -> np.ndarray:
    """d/dt of an optical-frame point given `centre_at(t)` (central difference)."""
    h = VELOCITY_STEP_S
    return (np.asarray(centre_at(t + h)) - np.asarray(centre_at(t - h))) / (2 * h)
