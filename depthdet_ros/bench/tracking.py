"""Cost of the tracking stage per frame, beside the fusion stage it follows.

`python -m depthdet_ros.bench.tracking [--objects 20] [--frames 300]` paints
--objects boxes moving across a 640x480 depth map (each at its own depth, with
noise) and, each in a colour of its own, across an RGB image, runs fusion
(core.object_depth.estimate_objects, the node's per-object depth and 3D) and the
tracker (core.tracking.Tracker.update with the image, whose appearance descriptors
it refreshes, then held_alerts, as the node calls them) on every frame,
interleaved, and prints per-frame p50 / p90 / p99 of both and their ratio, in wall
time and in CPU time of the thread (which other processes on a loaded machine inflate
far less). The issue's target is tracking <= 1 ms per frame with 20 objects, judged in
that order, as the node runs it. A second tracker then runs alone over the same objects,
back to back: the image-sized work between two updates in the node's order (here the
frame's depth map and the fusion stage) pushes the tracker's code and data out of the
CPU caches, and the gap between the two rows is what that costs.

`--compare FILE` also runs another version of core/tracking.py (for example
`git show REV:depthdet_ros/core/tracking.py > /tmp/tracking_rev.py`) on the same
frames, and prints both times, their ratio and whether their outputs agree. The two
alternate which runs first on each frame: whichever runs first pays for bringing the
frame's objects into the cache (running one always first made identical code look
1.2x slower).
"""
import argparse
import functools
import importlib.util
import inspect
import math
import os
import sys
import time

import numpy as np

from depthdet_ros.arg_types import bench_count, checked_number, non_negative_int
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, estimate_objects
from depthdet_ros.core.tracking import CameraMotion, Tracker, TrackerConfig
from depthdet_ros.core.types import Box, Detection2D

WIDTH, HEIGHT = 640, 480
# The target: tracking adds <= TARGET_MS per frame with TARGET_OBJECTS objects.
TARGET_MS, TARGET_OBJECTS = 1.0, 20
# More objects than a frame could hold apart: each is a box of 20-80 px in 640x480.
MAX_OBJECTS = 1000
# A camera driving forward and turning, for --camera-motion.
CAMERA_MOTION = CameraMotion((0.1, 0.0, 0.5), (0.0, 0.2, 0.0))
CLASSES = ('person', 'chair', 'bottle', 'cup', 'box')


def make_scene(n_objects: int, seed: int = 0):
    """Random boxes (x, y, w, h), pixel velocities and depths of `n_objects` objects."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(20, 80, (n_objects, 2))
    start = rng.uniform([0, 0], [WIDTH - 80, HEIGHT - 80], (n_objects, 2))
    velocity = rng.uniform(-2, 2, (n_objects, 2))  # px per frame
    depth = rng.uniform(0.8, 6.0, n_objects)
    return start, size, velocity, depth, rng


def frames(n_objects: int, n_frames: int, seed: int = 0):
    """Yield (depth map, RGB image, detections) per frame; objects bounce off the edges."""
    start, size, velocity, depth, rng = make_scene(n_objects, seed)
    colours = rng.integers(0, 256, (n_objects, 3), dtype=np.uint8)
    position = start.copy()
    for _ in range(n_frames):
        depth_map = np.full((HEIGHT, WIDTH), 8.0, np.float32)
        depth_map += rng.normal(0, 0.05, depth_map.shape).astype(np.float32)
        rgb = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
        detections = []
        # Far objects first, so near ones occlude them as in a real frame.
        for i in np.argsort(-depth):
            x, y = position[i]
            w, h = size[i]
            z = depth[i] * (1 + rng.normal(0, 0.03))
            depth_map[int(y):int(y + h), int(x):int(x + w)] = z
            rgb[int(y):int(y + h), int(x):int(x + w)] = colours[i]
            box = Box(float(x), float(y), float(x + w), float(y + h))
            detections.append(Detection2D(box, 0.9, i % len(CLASSES),
                                          CLASSES[i % len(CLASSES)]))
        yield depth_map, rgb, detections
        position += velocity
        bounce = (position < 0) | (position + size > [WIDTH, HEIGHT])
        velocity[bounce] *= -1
        position = np.clip(position, 0, [WIDTH, HEIGHT] - size)


@functools.lru_cache(maxsize=8)
def _takes_image(tracker_class) -> bool:
    """Whether a Tracker's update takes the image (a --compare file may predate it)."""
    return 'image' in inspect.signature(tracker_class.update).parameters


def _step(tracker, objects, stamp, rgb, motion=None):
    """One frame's tracking as the node does it: the update, then the held alerts.

    `motion`: the camera's motion given to the tracker (use_odometry), or none.
    """
    if motion is not None:
        tracked = tracker.update(objects, stamp, 1.0, image=rgb, camera_motion=motion)
    elif _takes_image(type(tracker)):
        tracked = tracker.update(objects, stamp, 1.0, image=rgb)
    else:
        tracked = tracker.update(objects, stamp, 1.0)
    if hasattr(tracker, 'held_alerts'):  # a --compare file may predate them too
        tracker.held_alerts()
    return tracked


def run(n_objects: int = 20, n_frames: int = 300, rate_hz: float = 30.0, seed: int = 0,
        motion=None):
    """Per-frame (wall, CPU) ms of fusion, of tracking after it, and of tracking alone."""
    camera = CameraModel.from_fov(WIDTH, HEIGHT, 70.0)
    tracker = Tracker(TrackerConfig())
    times, frame_objects = [], []
    for index, (depth_map, rgb, detections) in enumerate(frames(n_objects, n_frames, seed)):
        w0, c0 = time.perf_counter(), time.thread_time()
        objects = estimate_objects(detections, depth_map, camera, DEFAULT_STRATEGY, 1.0)
        w1, c1 = time.perf_counter(), time.thread_time()
        _step(tracker, objects, index / rate_hz, rgb, motion)
        w2, c2 = time.perf_counter(), time.thread_time()
        times.append((w1 - w0, c1 - c0, w2 - w1, c2 - c1))
        frame_objects.append((objects, rgb))
    alone, alone_times = Tracker(TrackerConfig()), []
    for index, (objects, rgb) in enumerate(frame_objects):
        w0, c0 = time.perf_counter(), time.thread_time()
        _step(alone, objects, index / rate_hz, rgb, motion)
        alone_times.append((time.perf_counter() - w0, time.thread_time() - c0))
    fusion_wall, fusion_cpu, tracking_wall, tracking_cpu = np.array(times).T * 1e3
    alone_wall, alone_cpu = np.array(alone_times).T * 1e3
    return (fusion_wall, fusion_cpu), (tracking_wall, tracking_cpu), (alone_wall, alone_cpu)


def load_tracking_module(path: str):
    """Import a tracking.py from a file under a name of its own."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'--compare {path}: no such file (write one with `git show '
                                'REV:depthdet_ros/core/tracking.py > FILE`)')
    spec = importlib.util.spec_from_file_location('depthdet_tracking_compared', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differences(ours, theirs) -> float:
    """Largest difference of two frames' outputs; inf when IDs, flags or rules differ."""
    if len(ours) != len(theirs):
        return math.inf
    largest = 0.0
    for a, b in zip(ours, theirs):
        if (a.track_id, a.confirmed, a.alert_rules) != (b.track_id, b.confirmed, b.alert_rules):
            return math.inf
        with np.errstate(invalid='ignore'):  # inf - inf: equal infinite times to contact
            values = np.array([a.depth, a.time_to_contact, a.box.x1, a.box.y2]) \
                - np.array([b.depth, b.time_to_contact, b.box.x1, b.box.y2])
        if (a.position is None) != (b.position is None):
            return math.inf
        if a.position is not None:
            values = np.concatenate([values, [a.position.z - b.position.z,
                                              a.velocity.z - b.velocity.z]])
        values = values[~np.isnan(values) & (values != 0)]  # equal infinities give NaN
        largest = max(largest, float(np.abs(values).max(initial=0.0)))
    return largest


def compare(module, n_objects: int = 20, n_frames: int = 300, rate_hz: float = 30.0,
            seed: int = 0, motion=None):
    """CPU ms per frame of this Tracker and `module`'s, alternating; largest difference.

    With `motion`, this Tracker is given the camera's motion and `module`'s is not.
    """
    camera = CameraModel.from_fov(WIDTH, HEIGHT, 70.0)
    ours, theirs = Tracker(TrackerConfig()), module.Tracker(module.TrackerConfig())
    times, largest = [], 0.0
    for index, (depth_map, rgb, detections) in enumerate(frames(n_objects, n_frames, seed)):
        objects = estimate_objects(detections, depth_map, camera, DEFAULT_STRATEGY, 1.0)
        results, spent = {}, {}
        for tracker in ((ours, theirs) if index % 2 else (theirs, ours)):
            start = time.thread_time()
            results[id(tracker)] = _step(tracker, objects, index / rate_hz, rgb,
                                         motion if tracker is ours else None)
            spent[id(tracker)] = time.thread_time() - start
        times.append((spent[id(ours)], spent[id(theirs)]))
        largest = max(largest, _differences(results[id(ours)], results[id(theirs)]))
    ours_ms, theirs_ms = np.array(times).T * 1e3
    return ours_ms, theirs_ms, largest


def small_op_us(repeat: int = 100000) -> float:
    """CPU microseconds of one numpy add of two 3-vectors: how fast this machine is now."""
    a = np.ones(3)
    start = time.thread_time()
    for _ in range(repeat):
        np.add(a, a)
    return (time.thread_time() - start) / repeat * 1e6


def main(argv=None):
    """Print the side-by-side figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--objects', default=TARGET_OBJECTS,
                        type=checked_number(int, lambda v: 1 <= v <= MAX_OBJECTS,
                                            f'an integer in [1, {MAX_OBJECTS}]'))
    parser.add_argument('--frames', type=bench_count, default=300)
    parser.add_argument('--warmup', type=non_negative_int, default=20,
                        help='frames left out of the figures')
    parser.add_argument('--compare', metavar='FILE',
                        help='another tracking.py to time side by side on the same frames')
    parser.add_argument('--camera-motion', action='store_true',
                        help='give this tracker the camera\'s motion (the node\'s use_odometry: '
                             f'{CAMERA_MOTION}), not the --compare one: e.g. --compare '
                             'depthdet_ros/core/tracking.py --camera-motion times what it costs')
    args = parser.parse_args(argv)
    motion = CAMERA_MOTION if args.camera_motion else None
    if args.compare:
        try:
            module = load_tracking_module(args.compare)
            missing = [name for name in ('Tracker', 'TrackerConfig')
                       if not hasattr(module, name)]
            if missing:
                raise AttributeError(f'it has no {" or ".join(missing)}')
        except Exception as exc:  # a file that is not a tracker: one line, not a traceback
            print(f'error: --compare {args.compare} is not a usable core/tracking.py '
                  f'({type(exc).__name__}: {exc})', file=sys.stderr)
            return 2
        ours, theirs, largest = compare(module, args.objects, args.frames + args.warmup,
                                        motion=motion)
        ours, theirs = ours[args.warmup:], theirs[args.warmup:]
        agreement = ('different track IDs, flags or alert rules' if math.isinf(largest)
                     else f'same IDs and alerts, values within {largest:.1e}')
        print(f'{args.objects} objects, {len(ours)} frames, CPU time per frame, alternating '
              f'which runs first; load average {os.getloadavg()[0]:.2f}')
        ratio = np.median(ours) / np.median(theirs)
        print(f'this tracker p50 {np.median(ours):.3f} ms (mean {np.mean(ours):.3f}); '
              f'{args.compare} p50 {np.median(theirs):.3f} ms (mean {np.mean(theirs):.3f}); '
              f'this / that {ratio:.2f} (means {np.mean(ours) / np.mean(theirs):.2f}); '
              f'outputs: {agreement}')
        return 0
    fusion, tracking, alone = run(args.objects, args.frames + args.warmup, motion=motion)
    fusion = [v[args.warmup:] for v in fusion]
    tracking = [v[args.warmup:] for v in tracking]
    alone = [v[args.warmup:] for v in alone]
    load = os.getloadavg()[0]
    print(f'{args.objects} objects, {len(tracking[0])} frames (after {args.warmup} warm-up), '
          f'640x480, interleaved; {os.cpu_count()} CPUs, load average {load:.2f}; a numpy '
          f'add of two 3-vectors costs {small_op_us():.2f} us of CPU here (the tracker makes '
          'a few hundred such calls per frame, whatever the number of objects)')
    # The mean too: appearance refreshes come every few frames per track.
    print(f'{"stage":<28}{"clock":<6}{"p50 ms":>9}{"p90 ms":>9}{"p99 ms":>9}{"mean ms":>9}')
    for name, (wall, cpu) in (('fusion (depth, 3D)', fusion),
                              ('tracking (update + held)', tracking),
                              ('tracking alone (no fusion)', alone)):
        for clock, values in (('wall', wall), ('cpu', cpu)):
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            print(f'{name:<28}{clock:<6}{p50:>9.3f}{p90:>9.3f}{p99:>9.3f}'
                  f'{np.mean(values):>9.3f}')
    for clock, k in (('wall', 0), ('cpu', 1)):
        ratio = np.median(tracking[k]) / np.median(fusion[k])
        # The target is for TARGET_OBJECTS objects: with others there is no verdict.
        verdict = '' if args.objects != TARGET_OBJECTS else \
            f', target <= {TARGET_MS:g} ms with {TARGET_OBJECTS} objects: ' + \
            ('met' if np.median(tracking[k]) <= TARGET_MS else 'not met')
        print(f'{clock}: tracking / fusion (p50) {ratio:.2f}; tracking p50 '
              f'{np.median(tracking[k]):.3f} ms per frame{verdict} '
              f'(alone: {np.median(alone[k]):.3f} ms)')
    return 0


def _main_quiet_on_ctrl_c():
    try:
        return main()
    except KeyboardInterrupt:  # pure Python and numpy here: safe to take as it comes
        print('stopped by Ctrl-C', file=sys.stderr)
        return 130


if __name__ == '__main__':
    raise SystemExit(_main_quiet_on_ctrl_c())
