"""Cost of the tracking stage per frame, beside the fusion stage it follows.

`python -m depthdet_ros.bench.tracking [--objects 20] [--frames 300]` paints
--objects boxes moving across a 640x480 depth map (each at its own depth, with
noise), runs fusion (core.object_depth.estimate_objects, the node's per-object
depth and 3D) and the tracker (core.tracking.Tracker.update) on every frame,
interleaved, and prints per-frame p50 / p90 / p99 of both and their ratio, in wall
time and in CPU time of the thread (which other processes on a loaded machine inflate
far less). The issue's target is tracking <= 1 ms per frame with 20 objects.
"""
import argparse
import os
import time

import numpy as np

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.object_depth import estimate_objects
from depthdet_ros.core.tracking import Tracker, TrackerConfig
from depthdet_ros.core.types import Box, Detection2D

WIDTH, HEIGHT = 640, 480
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
    """Yield (depth map, detections) per frame; objects bounce off the image edges."""
    start, size, velocity, depth, rng = make_scene(n_objects, seed)
    position = start.copy()
    for _ in range(n_frames):
        depth_map = np.full((HEIGHT, WIDTH), 8.0, np.float32)
        depth_map += rng.normal(0, 0.05, depth_map.shape).astype(np.float32)
        detections = []
        # Far objects first, so near ones occlude them as in a real frame.
        for i in np.argsort(-depth):
            x, y = position[i]
            w, h = size[i]
            z = depth[i] * (1 + rng.normal(0, 0.03))
            depth_map[int(y):int(y + h), int(x):int(x + w)] = z
            box = Box(float(x), float(y), float(x + w), float(y + h))
            detections.append(Detection2D(box, 0.9, i % len(CLASSES),
                                          CLASSES[i % len(CLASSES)]))
        yield depth_map, detections
        position += velocity
        bounce = (position < 0) | (position + size > [WIDTH, HEIGHT])
        velocity[bounce] *= -1
        position = np.clip(position, 0, [WIDTH, HEIGHT] - size)


def run(n_objects: int = 20, n_frames: int = 300, rate_hz: float = 30.0, seed: int = 0):
    """Return per-frame (wall, CPU) times in ms of fusion and tracking, interleaved."""
    camera = CameraModel.from_fov(WIDTH, HEIGHT, 70.0)
    tracker = Tracker(TrackerConfig())
    times = []
    for index, (depth_map, detections) in enumerate(frames(n_objects, n_frames, seed)):
        w0, c0 = time.perf_counter(), time.thread_time()
        objects = estimate_objects(detections, depth_map, camera, 'robust', 1.0)
        w1, c1 = time.perf_counter(), time.thread_time()
        tracker.update(objects, index / rate_hz, 1.0)
        w2, c2 = time.perf_counter(), time.thread_time()
        times.append((w1 - w0, c1 - c0, w2 - w1, c2 - c1))
    fusion_wall, fusion_cpu, tracking_wall, tracking_cpu = np.array(times).T * 1e3
    return (fusion_wall, fusion_cpu), (tracking_wall, tracking_cpu), tracker


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
    parser.add_argument('--objects', type=int, default=20)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=20, help='frames left out of the figures')
    args = parser.parse_args(argv)
    fusion, tracking, tracker = run(args.objects, args.frames + args.warmup)
    fusion = [v[args.warmup:] for v in fusion]
    tracking = [v[args.warmup:] for v in tracking]
    load = os.getloadavg()[0]
    print(f'{args.objects} objects, {len(tracking[0])} frames (after {args.warmup} warm-up), '
          f'640x480, interleaved; {os.cpu_count()} CPUs, load average {load:.2f}; a numpy '
          f'add of two 3-vectors costs {small_op_us():.2f} us of CPU here (the tracker makes '
          'a few hundred such calls per frame, whatever the number of objects)')
    print(f'{"stage":<28}{"clock":<6}{"p50 ms":>9}{"p90 ms":>9}{"p99 ms":>9}')
    for name, (wall, cpu) in (('fusion (depth, 3D)', fusion),
                              ('tracking (Tracker.update)', tracking)):
        for clock, values in (('wall', wall), ('cpu', cpu)):
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            print(f'{name:<28}{clock:<6}{p50:>9.3f}{p90:>9.3f}{p99:>9.3f}')
    for clock, k in (('wall', 0), ('cpu', 1)):
        ratio = np.median(tracking[k]) / np.median(fusion[k])
        verdict = 'met' if np.median(tracking[k]) <= 1.0 else 'not met'
        print(f'{clock}: tracking / fusion (p50) {ratio:.2f}; tracking p50 '
              f'{np.median(tracking[k]):.3f} ms per frame, target <= 1 ms: {verdict}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
