"""Object classes and distractors of the synthetic world, built from MuJoCo primitives.

Each kind is a function drawing one instance from a numpy Generator: a list of
primitive parts in the object's own frame (z up, standing on z = 0, front towards +x).
Sizes are drawn within the class's range; `small=True` asks for the tabletop end of
it. Objects of interest carry a class id (index in CLASS_NAMES); distractors do not.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from depthdet_ros.sim.geometry import axis_angle_quat, quat_multiply, quat_to_matrix, \
    quat_z_to, yaw_quat

# The detector's class list, in class-id order. Hollow/open kinds: chair, table, cup,
# box, ring; thin kinds: bottle, pole.
CLASS_NAMES = ('person', 'chair', 'table', 'bottle', 'cup', 'box', 'ring', 'ball', 'pole',
               'suitcase')

# Most parts any object / distractor uses (the renderer keeps this many geoms per slot).
MAX_OBJECT_PARTS = 16
MAX_DISTRACTOR_PARTS = 8

IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Part:
    """One MuJoCo primitive in its object's frame.

    `size` follows MuJoCo: box half-extents; sphere (r, -, -); capsule/cylinder
    (radius, half-length, -); ellipsoid radii. `surface` picks which of the object's
    appearances colours the part.
    """

    shape: str
    size: Tuple[float, float, float]
    pos: Tuple[float, float, float]
    quat: Tuple[float, float, float, float] = IDENTITY_QUAT
    surface: int = 0


@dataclass(frozen=True)
class Shape:
    """An instance's parts, plus the flat top other things may stand on (tables).

    `support` is (half_x, half_y, height) of a usable rectangle centred on the
    object's z axis, or None.
    """

    parts: Tuple[Part, ...]
    support: Optional[Tuple[float, float, float]] = None

    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return the (min, max) corners of the parts' axis-aligned box (object frame)."""
        return self._bounds

    @cached_property
    def _bounds(self):
        centres = np.array([part.pos for part in self.parts])
        halves = np.array([part_half_extents(part) for part in self.parts])
        return (centres - halves).min(axis=0), (centres + halves).max(axis=0)

    def footprint_radius(self) -> float:
        """Return the radius about the object's z axis that holds every part."""
        low, high = self.bounds()
        return float(np.hypot(max(abs(low[0]), abs(high[0])), max(abs(low[1]), abs(high[1]))))


def part_half_extents(part: Part) -> np.ndarray:
    """Return the half-extents of the part's axis-aligned box in the object frame."""
    rot = quat_to_matrix(part.quat)
    s = np.asarray(part.size, dtype=np.float64)
    if part.shape == 'sphere':
        return np.full(3, s[0])
    if part.shape in ('box', 'ellipsoid'):
        return np.abs(rot) @ s  # exact for boxes, a tight bound for ellipsoids
    axis = rot[:, 2]
    if part.shape == 'capsule':
        return np.abs(axis) * s[1] + s[0]
    if part.shape == 'cylinder':  # a disc of radius s[0] swept along the axis
        return np.abs(axis) * s[1] + s[0] * np.sqrt(np.clip(1.0 - axis ** 2, 0.0, 1.0))
    raise ValueError(f'unknown part shape {part.shape!r}')


def _vec(values) -> Tuple[float, float, float]:
    return tuple(float(v) for v in values)


def box(center, half, surface=0, quat=IDENTITY_QUAT) -> Part:
    return Part('box', _vec(half), _vec(center), tuple(float(v) for v in quat), surface)


def sphere(center, radius, surface=0) -> Part:
    return Part('sphere', (float(radius), 0.0, 0.0), _vec(center), IDENTITY_QUAT, surface)


def ellipsoid(center, radii, surface=0, quat=IDENTITY_QUAT) -> Part:
    return Part('ellipsoid', _vec(radii), _vec(center), tuple(float(v) for v in quat), surface)


def rod(start, end, radius, surface=0, shape='capsule') -> Part:
    """Make a capsule or cylinder whose axis runs from `start` to `end`."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    half_length = 0.5 * np.linalg.norm(end - start)
    return Part(shape, (float(radius), float(half_length), 0.0), _vec(0.5 * (start + end)),
                tuple(float(v) for v in quat_z_to(end - start)), surface)


def transformed(parts, quat, offset=(0.0, 0.0, 0.0)):
    """Turn parts by `quat` about the origin, then shift them by `offset`."""
    rot = quat_to_matrix(quat)
    return [Part(p.shape, p.size, _vec(rot @ np.asarray(p.pos) + offset),
                 tuple(float(v) for v in quat_multiply(quat, p.quat)), p.surface)
            for p in parts]


# ---- objects of interest ----------------------------------------------------------

def person(rng, small=False) -> Shape:
    """Standing figure, 1.1-1.95 m; surfaces: top, trousers, skin."""
    h = rng.uniform(1.1, 1.95)
    hip_y, leg_r, arm_r = 0.055 * h, rng.uniform(0.028, 0.036) * h, 0.022 * h
    parts = [rod((0, side * hip_y, leg_r), (0, side * hip_y, 0.5 * h), leg_r, 1)
             for side in (-1, 1)]
    parts.append(ellipsoid((0, 0, 0.65 * h),
                           (rng.uniform(0.06, 0.08) * h, rng.uniform(0.11, 0.14) * h, 0.17 * h),
                           0))
    parts.append(rod((0, 0, 0.79 * h), (0, 0, 0.86 * h), 0.028 * h, 2))
    parts.append(sphere((0, 0, 0.935 * h), 0.065 * h, 2))
    for side in (-1, 1):
        swing, spread = rng.uniform(-0.5, 0.5), rng.uniform(0.05, 0.35)
        shoulder = np.array([0, side * 0.125 * h, 0.79 * h])
        elbow = shoulder + 0.19 * h * np.array([np.sin(swing), side * np.sin(spread),
                                                -np.cos(swing) * np.cos(spread)])
        bend = swing + rng.uniform(0.0, 1.2)
        hand = elbow + 0.17 * h * np.array([np.sin(bend), side * 0.1, -np.cos(bend)])
        parts += [rod(shoulder, elbow, arm_r, 0), rod(elbow, hand, 0.9 * arm_r, 2)]
    return Shape(tuple(parts))


def chair(rng, small=False) -> Shape:
    """Open frame: four legs, seat, back posts with 1-3 rails, optional arms."""
    seat_h, depth, width = rng.uniform(0.4, 0.5), rng.uniform(0.38, 0.5), rng.uniform(0.4, 0.55)
    seat_t, leg_r, back_h = rng.uniform(0.025, 0.05), rng.uniform(0.012, 0.025), \
        rng.uniform(0.3, 0.5)
    leg_shape = 'cylinder' if rng.random() < 0.5 else 'box'
    x_leg, y_leg = depth / 2 - leg_r, width / 2 - leg_r

    def leg(x, y, z0, z1, surface=1):
        if leg_shape == 'box':
            return box((x, y, 0.5 * (z0 + z1)), (leg_r, leg_r, 0.5 * (z1 - z0)), surface)
        return rod((x, y, z0), (x, y, z1), leg_r, surface, 'cylinder')

    parts = [box((0, 0, seat_h - seat_t / 2), (depth / 2, width / 2, seat_t / 2), 0)]
    parts += [leg(sx * x_leg, sy * y_leg, 0.0, seat_h - seat_t) for sx in (-1, 1)
              for sy in (-1, 1)]
    top = seat_h + back_h
    parts += [leg(-x_leg, sy * y_leg, seat_h, top) for sy in (-1, 1)]
    rails = int(rng.integers(1, 4))
    rail_h = rng.uniform(0.04, 0.1)
    for k in range(rails):
        z = top - rail_h / 2 - k * (back_h * 0.8 / rails)
        parts.append(box((-x_leg, 0, z), (leg_r, y_leg, rail_h / 2), 0))
    if rng.random() < 0.3:
        arm_z = seat_h + rng.uniform(0.18, 0.25)
        for sy in (-1, 1):
            parts.append(leg(x_leg, sy * y_leg, seat_h, arm_z))
            parts.append(rod((x_leg, sy * y_leg, arm_z), (-x_leg, sy * y_leg, arm_z),
                             leg_r * 1.2, 1))
    return Shape(tuple(parts))


def table(rng, small=False) -> Shape:
    """Four-legged or pedestal table; open underneath. `small` = a work table to look at."""
    height = rng.uniform(0.7, 0.9) if small else rng.uniform(0.45, 0.8)
    top_t = rng.uniform(0.025, 0.06)
    if not small and rng.random() < 0.3:
        radius = rng.uniform(0.3, 0.6)
        parts = (rod((0, 0, height - top_t), (0, 0, height), radius, 0, 'cylinder'),
                 rod((0, 0, 0.02), (0, 0, height - top_t), rng.uniform(0.03, 0.06), 1,
                     'cylinder'),
                 rod((0, 0, 0), (0, 0, 0.02), radius * rng.uniform(0.4, 0.6), 1, 'cylinder'))
        inner = radius / np.sqrt(2.0)
        return Shape(parts, (inner, inner, height))
    if small:
        width, depth = rng.uniform(1.0, 1.8), rng.uniform(0.7, 1.1)
    else:
        width, depth = rng.uniform(0.6, 1.8), rng.uniform(0.5, 1.0)
    leg_r, inset = rng.uniform(0.02, 0.045), rng.uniform(0.03, 0.12)
    leg_shape = 'cylinder' if rng.random() < 0.5 else 'box'
    parts = [box((0, 0, height - top_t / 2), (width / 2, depth / 2, top_t / 2), 0)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (width / 2 - inset), sy * (depth / 2 - inset)
            if leg_shape == 'box':
                parts.append(box((x, y, (height - top_t) / 2),
                                 (leg_r, leg_r, (height - top_t) / 2), 1))
            else:
                parts.append(rod((x, y, 0), (x, y, height - top_t), leg_r, 1, 'cylinder'))
    return Shape(tuple(parts), (width / 2, depth / 2, height))


def bottle(rng, small=False) -> Shape:
    """Thin: body, shoulder, neck and cap; now and then lying on its side."""
    h, r = rng.uniform(0.15, 0.4), rng.uniform(0.025, 0.05)
    body_top = rng.uniform(0.5, 0.7) * h
    neck_r = rng.uniform(0.3, 0.45) * r
    parts = [rod((0, 0, 0), (0, 0, body_top), r, 0, 'cylinder'),
             ellipsoid((0, 0, body_top), (r, r, rng.uniform(0.08, 0.15) * h), 0),
             rod((0, 0, body_top), (0, 0, 0.93 * h), neck_r, 0, 'cylinder'),
             rod((0, 0, 0.93 * h), (0, 0, h), neck_r * 1.25, 1, 'cylinder')]
    if rng.random() < 0.15:
        parts = transformed(parts, axis_angle_quat((0, 1, 0), np.pi / 2), (-h / 2, 0, r))
    return Shape(tuple(parts))


def cup(rng, small=False) -> Shape:
    """Hollow mug: ten wall staves around an open top, a base, usually a handle."""
    radius, height = rng.uniform(0.035, 0.06), rng.uniform(0.07, 0.13)
    wall = rng.uniform(0.003, 0.006)
    staves = 10
    half_w = radius * np.tan(np.pi / staves) + wall / 2
    parts = [rod((0, 0, 0), (0, 0, wall), radius, 0, 'cylinder')]
    for k in range(staves):
        angle = 2 * np.pi * k / staves
        parts.append(box((radius * np.cos(angle), radius * np.sin(angle), height / 2),
                         (wall / 2, half_w, height / 2), 0, yaw_quat(angle)))
    if rng.random() < 0.8:
        reach, r_handle = rng.uniform(0.025, 0.04), radius * rng.uniform(0.08, 0.14)
        points = [(radius, 0, 0.8 * height), (radius + reach, 0, 0.72 * height),
                  (radius + reach, 0, 0.32 * height), (radius, 0, 0.25 * height)]
        parts += [rod(a, b, r_handle, 1) for a, b in zip(points, points[1:])]
    return Shape(tuple(parts))


def open_box(rng, small=False) -> Shape:
    """Open-top box: base and four walls, sometimes two flaps folded outwards."""
    if small:
        size = rng.uniform([0.08, 0.07, 0.05], [0.25, 0.2, 0.18])
    else:
        size = rng.uniform([0.2, 0.15, 0.12], [0.6, 0.5, 0.45])
    x, y, z = size
    t = rng.uniform(0.004, 0.015)
    parts = [box((0, 0, t / 2), (x / 2, y / 2, t / 2), 0)]
    parts += [box((sx * (x / 2 - t / 2), 0, z / 2), (t / 2, y / 2, z / 2), 0) for sx in (-1, 1)]
    parts += [box((0, sy * (y / 2 - t / 2), z / 2), (x / 2 - t, t / 2, z / 2), 0)
              for sy in (-1, 1)]
    if rng.random() < 0.4:
        flap = rng.uniform(0.3, 0.5) * y
        for sy in (-1, 1):
            lift = rng.uniform(0.3, 1.3)
            direction = np.array([0.0, sy * np.cos(lift), np.sin(lift)])
            quat = axis_angle_quat((1, 0, 0), lift if sy > 0 else np.pi - lift)
            hinge = np.array([0.0, sy * y / 2, z])
            parts.append(box(hinge + direction * flap / 2, (x / 2 - t, flap / 2, t / 2), 1,
                             quat))
    return Shape(tuple(parts))


def ring(rng, small=False) -> Shape:
    """Torus made of capsules, standing on edge or lying flat."""
    major = rng.uniform(0.05, 0.12) if small else rng.uniform(0.1, 0.45)
    tube = max(0.006, major * rng.uniform(0.08, 0.2))
    segments = 12 if major < 0.2 else 16
    angles = 2 * np.pi * np.arange(segments + 1) / segments
    upright = rng.random() < 0.5
    if upright:
        points = [(major * np.cos(a), 0.0, major + tube + major * np.sin(a)) for a in angles]
    else:
        points = [(major * np.cos(a), major * np.sin(a), tube) for a in angles]
    return Shape(tuple(rod(a, b, tube, 0) for a, b in zip(points, points[1:])))


def ball(rng, small=False) -> Shape:
    radius = rng.uniform(0.03, 0.08) if small else rng.uniform(0.05, 0.25)
    return Shape((sphere((0, 0, radius), radius, 0),))


def pole(rng, small=False) -> Shape:
    """Thin post on a base plate, sometimes with a knob on top."""
    height, radius = rng.uniform(0.8, 2.2), rng.uniform(0.012, 0.04)
    base_r, base_h = rng.uniform(0.1, 0.2), rng.uniform(0.01, 0.03)
    parts = [rod((0, 0, 0), (0, 0, base_h), base_r, 1, 'cylinder'),
             rod((0, 0, base_h), (0, 0, height), radius, 0, 'cylinder')]
    if rng.random() < 0.5:
        parts.append(sphere((0, 0, height), radius * rng.uniform(1.3, 2.0), 1))
    return Shape(tuple(parts))


def suitcase(rng, small=False) -> Shape:
    """Solid case on four wheels with a pulled-out handle."""
    half = rng.uniform([0.17, 0.1, 0.22], [0.27, 0.14, 0.37])
    wheel = rng.uniform(0.02, 0.035)
    bottom = 2 * wheel
    parts = [box((0, 0, bottom + half[2]), half, 0)]
    parts += [sphere((sx * (half[0] - wheel), sy * (half[1] - wheel), wheel), wheel, 1)
              for sx in (-1, 1) for sy in (-1, 1)]
    top = bottom + 2 * half[2]
    handle = top + rng.uniform(0.05, 0.4)
    rod_r, y = rng.uniform(0.006, 0.01), -half[1] + 0.02
    parts += [rod((sx * 0.3 * half[0], y, top), (sx * 0.3 * half[0], y, handle), rod_r, 1,
                  'cylinder') for sx in (-1, 1)]
    parts.append(rod((-0.3 * half[0], y, handle), (0.3 * half[0], y, handle), 2 * rod_r, 1))
    return Shape(tuple(parts))


@dataclass(frozen=True)
class ObjectKind:
    """A class of objects: its builder, appearance palettes per surface, where it goes."""

    name: str
    build: Callable[..., Shape]
    palettes: Tuple[str, ...]
    on_tables: bool  # small enough to stand on a table
    weight: float  # relative frequency in rooms


OBJECT_KINDS: Dict[str, ObjectKind] = {k.name: k for k in (
    ObjectKind('person', person, ('any', 'dark', 'skin'), False, 1.5),
    ObjectKind('chair', chair, ('wood', 'any'), False, 1.5),
    ObjectKind('table', table, ('wood', 'any'), False, 1.0),
    ObjectKind('bottle', bottle, ('any', 'any'), True, 1.0),
    ObjectKind('cup', cup, ('any', 'any'), True, 0.7),
    ObjectKind('box', open_box, ('cardboard', 'cardboard'), True, 1.0),
    ObjectKind('ring', ring, ('any',), True, 1.0),
    ObjectKind('ball', ball, ('any',), True, 1.0),
    ObjectKind('pole', pole, ('metal', 'dark'), False, 1.0),
    ObjectKind('suitcase', suitcase, ('any', 'dark'), False, 1.0),
)}
assert tuple(OBJECT_KINDS) == CLASS_NAMES


# ---- distractors (never labelled) ---------------------------------------------------

def cabinet(rng) -> Shape:
    """Solid cupboard against a wall (front towards +x), with handles."""
    depth, width, height = rng.uniform(0.3, 0.6), rng.uniform(0.4, 1.6), rng.uniform(0.5, 2.0)
    parts = [box((depth / 2, 0, height / 2), (depth / 2, width / 2, height / 2), 0)]
    doors = 1 if width < 0.8 else 2
    for k in range(doors):
        y = (k - (doors - 1) / 2) * width / doors * 0.3
        z = height * rng.uniform(0.4, 0.6)
        parts.append(rod((depth + 0.015, y, z - 0.06), (depth + 0.015, y, z + 0.06), 0.008, 1))
    return Shape(tuple(parts))


def picture(rng) -> Shape:
    """Framed picture on a wall."""
    width, height, z = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9), rng.uniform(1.1, 1.7)
    frame = rng.uniform(0.02, 0.06)
    return Shape((box((0.012, 0, z), (0.012, width / 2 + frame, height / 2 + frame), 1),
                  box((0.026, 0, z), (0.003, width / 2, height / 2), 0)))


def shelf(rng) -> Shape:
    """Wall shelf on two brackets, sometimes with books standing on it."""
    width, depth, z = rng.uniform(0.6, 1.5), rng.uniform(0.18, 0.3), rng.uniform(0.8, 1.8)
    parts = [box((depth / 2, 0, z), (depth / 2, width / 2, 0.012), 0)]
    parts += [box((0.02, sy * width * 0.35, z - 0.08), (0.02, 0.01, 0.07), 1) for sy in (-1, 1)]
    y = -width / 2 + 0.05
    for _ in range(int(rng.integers(0, 5))):
        thick, tall = rng.uniform(0.02, 0.05), rng.uniform(0.15, 0.28)
        parts.append(box((depth * 0.45, y + thick / 2, z + 0.012 + tall / 2),
                         (depth * 0.35, thick / 2, tall / 2), 1))
        y += thick + 0.003
    return Shape(tuple(parts))


def door(rng) -> Shape:
    width, height = rng.uniform(0.75, 1.0), rng.uniform(1.95, 2.1)
    return Shape((box((0.02, 0, height / 2), (0.02, width / 2, height / 2), 0),
                  sphere((0.07, width / 2 - 0.08, 1.0), 0.03, 1)))


def rug(rng) -> Shape:
    half = rng.uniform([0.4, 0.3], [1.5, 1.0])
    return Shape((box((0, 0, 0.003), (half[0], half[1], 0.003), 0),))


def plant(rng) -> Shape:
    """Pot with a few leaves."""
    pot_r, pot_h = rng.uniform(0.08, 0.22), rng.uniform(0.15, 0.45)
    parts = [rod((0, 0, 0), (0, 0, pot_h), pot_r, 1, 'cylinder')]
    for k in range(int(rng.integers(3, 7))):
        angle = 2 * np.pi * k / 6 + rng.uniform(-0.3, 0.3)
        length = rng.uniform(0.12, 0.35)
        tilt = rng.uniform(0.2, 0.9)
        quat = quat_multiply(yaw_quat(angle), axis_angle_quat((0, 1, 0), tilt))
        centre = np.array([np.cos(angle), np.sin(angle), 0]) * np.sin(tilt) * length \
            + [0, 0, pot_h + np.cos(tilt) * length]
        parts.append(ellipsoid(centre, (0.25 * length, 0.1 * length, length), 0, quat))
    return Shape(tuple(parts))


def rock(rng) -> Shape:
    """One to three squashed ellipsoids on the floor."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        radii = rng.uniform([0.05, 0.05, 0.03], [0.35, 0.3, 0.2])
        centre = (rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), radii[2] * 0.8)
        parts.append(ellipsoid(centre, radii, 0, yaw_quat(rng.uniform(0, np.pi))))
    return Shape(tuple(parts))


def lamp(rng) -> Shape:
    """Pendant lamp hanging below the origin (placed at the ceiling)."""
    cord = rng.uniform(0.3, 0.9)
    shade = rng.uniform(0.12, 0.3)
    parts = [rod((0, 0, 0), (0, 0, -cord), 0.006, 1, 'cylinder')]
    if rng.random() < 0.5:
        parts.append(ellipsoid((0, 0, -cord - shade * 0.4), (shade, shade, shade * 0.5), 0))
    else:
        parts.append(rod((0, 0, -cord), (0, 0, -cord - shade * 0.8), shade, 0, 'cylinder'))
    return Shape(tuple(parts))


def books(rng) -> Shape:
    """Stack one to three books lying flat."""
    parts, z = [], 0.0
    for _ in range(int(rng.integers(1, 4))):
        half = rng.uniform([0.07, 0.05, 0.008], [0.15, 0.11, 0.025])
        parts.append(box((0, 0, z + half[2]), half, int(rng.integers(0, 2)),
                         yaw_quat(rng.uniform(-0.3, 0.3))))
        z += 2 * half[2]
    return Shape(tuple(parts))


def plate(rng) -> Shape:
    radius = rng.uniform(0.08, 0.14)
    return Shape((rod((0, 0, 0), (0, 0, 0.012), radius, 0, 'cylinder'),))


@dataclass(frozen=True)
class DistractorKind:
    """A thing that is not an object of interest, and where it goes."""

    name: str
    build: Callable[..., Shape]
    palettes: Tuple[str, ...]
    placement: str  # 'wall' (front faces into the room), 'floor', 'ceiling' or 'table'


DISTRACTOR_KINDS: Dict[str, DistractorKind] = {k.name: k for k in (
    DistractorKind('cabinet', cabinet, ('wood', 'metal'), 'wall'),
    DistractorKind('picture', picture, ('any', 'wood'), 'wall'),
    DistractorKind('shelf', shelf, ('wood', 'any'), 'wall'),
    DistractorKind('door', door, ('wood', 'metal'), 'wall'),
    DistractorKind('rug', rug, ('any',), 'floor'),
    DistractorKind('plant', plant, ('plant', 'any'), 'floor'),
    DistractorKind('rock', rock, ('neutral',), 'floor'),
    DistractorKind('lamp', lamp, ('any', 'dark'), 'ceiling'),
    DistractorKind('books', books, ('any', 'any'), 'table'),
    DistractorKind('plate', plate, ('neutral',), 'table'),
)}
