"""Tracker settings tried in seconds: the pipeline runs once per bag, the tracker many times.

    python tools/tracker_sweep.py cache bags/moving_s7 /tmp/moving_s7.pkl
    python tools/tracker_sweep.py run /tmp/moving_s7.pkl [--gt-depth 0.05] [NAME=VALUE ...]
    python tools/tracker_sweep.py run /tmp/moving_s7.pkl --switches   # each ID switch
    python tools/tracker_sweep.py run /tmp/moving_s7.pkl --reids      # each ID taken back
    python tools/tracker_sweep.py run /tmp/moving_s7.pkl --camera-odometry --constant MODE_HOLD_S=4

`cache` runs the bundled pipeline (or --params-file's) over every frame of a bag with
ground truth, as `depthdet eval` does, and pickles each frame's objects, GT objects,
stamp, record time, how its depth was measured and image (the tracker re-identifies
objects by their colours in it: about 280 MB for 300 VGA frames) with the bag's motion
truth, the camera's motion at each frame (from /camera/odometry, when the bag has it)
and the file's tracker settings. `run` feeds them
to a Tracker with those settings and the NAME=VALUE ones on top (e.g. accel_noise=3
ttc_source=expansion) and prints the tracking section `depthdet eval` would report for
them: the same figures as `depthdet eval BAG --tracker NAME=VALUE` (and
`--tracker-gt-depth`, `--camera-odometry /camera/odometry` with --camera-odometry),
without running the networks. `--constant` sets a module constant of core.tracking for the
run (the IMM's STEADY_ACCEL_NOISE, MODE_HOLD_S, START_STEADY and the like, which are not
settings).
The pickle belongs to this machine and this version of the code; it is not an exchange
format.
"""
import argparse
import dataclasses
import json
import pickle
import sys

# depthdet eval's default --match-iou, which these figures assume.
MATCH_IOU = 0.5


def cache(bag, out, params_file=''):
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval import bag_input
    from depthdet_ros.core.odometry import CameraMotionUnavailable
    from depthdet_ros.eval.tracking import read_camera_odometry, read_motion
    from depthdet_ros.sim.bag import TOPIC_CAMERA_ODOMETRY
    from depthdet_ros.ros.params import build_pipeline, parse_class_max_depth, tracker_config
    from depthdet_ros.tools.options import pipeline_values

    values = pipeline_values(argparse.Namespace(params_file=params_file))
    store = make_typestore()
    reader = bag_input.open_reader(bag)
    topic_types = {c.topic: c.msgtype for c in reader.connections}
    reader.close()
    topics = bag_input.select_topics(topic_types)
    index = bag_input.index_bag(bag, topics, store)
    plans = bag_input.plan_frames(index, bag_input.stamp_tolerance_ns(5.0))
    odometry = read_camera_odometry(bag, store, TOPIC_CAMERA_ODOMETRY) \
        if TOPIC_CAMERA_ODOMETRY in topic_types else None
    pipeline = build_pipeline(values)
    frames, camera_motion = [], {}
    try:
        for frame in bag_input.read_frames(bag, index, plans, store,
                                           values['max_image_pixels']):
            if frame.rgb is not None:
                result = pipeline.process(frame.rgb, frame.camera, frame.depth_camera)
                frames.append((frame.index, frame.stamp_ns, frame.gt_objects,
                               result.objects, frame.rgb, frame.bag_time_ns,
                               result.depth_measured))
                if odometry is not None:
                    try:
                        camera_motion[frame.stamp_ns] = odometry.at(frame.stamp_ns,
                                                                    frame.header.frame_id)
                    except CameraMotionUnavailable:  # tracked as depthdet eval does
                        camera_motion[frame.stamp_ns] = None
    finally:
        pipeline.close()
    with open(out, 'wb') as f:
        pickle.dump({'frames': frames, 'motion': read_motion(bag, store),
                     'camera_motion': camera_motion if odometry is not None else None,
                     'max_depth': values['max_depth'],
                     'class_max_depth': parse_class_max_depth(values['class_max_depth']),
                     'tracker': dataclasses.asdict(tracker_config(values))}, f)
    return len(frames)


def run(cached, settings, gt_depth=None, switches=False, reids=False, camera_odometry=False):
    """Tracking summary (eval.tracking) of a Tracker with `settings` over cached frames.

    With `switches`, the list of ID switches (TrackingEvaluation.id_switches) instead;
    with `reids`, the list of re-identifications (reidentifications()). With
    `camera_odometry`, the tracker is given the camera's motion the cache holds
    (ValueError if it holds none).
    """
    from depthdet_ros.core.tracking import Tracker, TrackerConfig
    from depthdet_ros.eval.tracking import BagTracking, TrackingEvaluation

    with open(cached, 'rb') as f:
        data = pickle.load(f)
    max_depth, class_max_depth = data['max_depth'], data.get('class_max_depth', {})
    camera_motion = data.get('camera_motion') if camera_odometry else None
    if camera_odometry and camera_motion is None:
        raise ValueError(f'{cached} holds no camera motion: cache a bag with '
                         '/camera/odometry (depthdet synth bag records it)')
    # The params file's tracker settings (as depthdet eval), `settings` on top.
    config = TrackerConfig(**{**data.get('tracker', {}), **settings})
    evaluation = TrackingEvaluation(max_depth, class_max_depth, MATCH_IOU, data['motion'],
                                    tracker=config)
    tracking = BagTracking(Tracker(config), evaluation, gt_depth, max_depth, class_max_depth,
                           MATCH_IOU)
    taken_back, last_gt = [], {}
    for index, stamp_ns, gt_objects, objects, rgb, *recorded in data['frames']:
        # (A cache made before the record times, and how depth was measured, were kept
        # tracks on the stamps alone, and never starts over for the latter.)
        tracked, _, _ = tracking.step(index, stamp_ns, objects, gt_objects, rgb,
                                      camera_motion and camera_motion[stamp_ns],
                                      *recorded)
        now = {t.track_id: _ground_truth_of(t.detection, gt_objects) for t in tracked}
        for track_id in tracking.tracker.taken_back:
            taken_back.append((index, track_id, last_gt.get(track_id), now.get(track_id)))
        last_gt.update((k, v) for k, v in now.items() if v is not None)
    if reids:
        return taken_back
    return evaluation.id_switches() if switches else evaluation.summary()


def _ground_truth_of(detection, gt_objects):
    """Return the GT instance of the detection's class it overlaps most (IoU >= MATCH_IOU)."""
    from depthdet_ros.core.types import iou_matrix

    same = [g for g in gt_objects or () if g.class_name == detection.class_name]
    if not same:
        return None
    box = detection.box
    iou = iou_matrix([[box.x1, box.y1, box.x2, box.y2]],
                     [[g.box.x1, g.box.y1, g.box.x2, g.box.y2] for g in same])[0]
    best = int(iou.argmax())
    return same[best].instance_id if iou[best] >= MATCH_IOU else None


def reidentification_counts(taken_back):
    """Count (frame, ID, GT before, GT now) events: same object, another, no GT."""
    counts = {'same object': 0, 'another object': 0, 'no GT object now': 0,
              'no GT object before': 0}
    for _, _, before, now in taken_back:
        key = ('no GT object now' if now is None else 'no GT object before' if before is None
               else 'same object' if before == now else 'another object')
        counts[key] += 1
    return counts


def constant_setting(text):
    """Parse NAME=VALUE for an upper-case numeric module constant of core.tracking."""
    from depthdet_ros.core import tracking

    name, _, value = text.partition('=')
    current = getattr(tracking, name, None) if name.isupper() else None
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise argparse.ArgumentTypeError(f'{name!r} is not a numeric constant of '
                                         'core.tracking (e.g. MODE_HOLD_S=4)')
    try:
        return name, type(current)(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: {value!r} is not a number of the '
                                         f'constant\'s type ({type(current).__name__})') \
            from None


def main(argv=None):
    from depthdet_ros.eval.cli import tracker_setting

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    to_cache = commands.add_parser('cache', help='run the pipeline over a bag once')
    to_cache.add_argument('bag')
    to_cache.add_argument('out', help='pickle to write')
    to_cache.add_argument('--params-file', default='')
    to_run = commands.add_parser('run', help='track cached frames with settings')
    to_run.add_argument('cached')
    to_run.add_argument('settings', nargs='*', type=tracker_setting, metavar='NAME=VALUE')
    to_run.add_argument('--gt-depth', type=float, default=None, metavar='NOISE',
                        help='as depthdet eval --tracker-gt-depth')
    to_run.add_argument('--switches', action='store_true',
                        help='list each ID switch: frame, GT instance, track IDs before and '
                             'after, frames since that object was last matched')
    to_run.add_argument('--camera-odometry', action='store_true',
                        help='give the tracker the camera motion cached from the bag\'s '
                             '/camera/odometry (as depthdet eval --camera-odometry)')
    to_run.add_argument('--reids', action='store_true',
                        help='list each ID given back to a detection (re-identification): '
                             'frame, ID, the GT object it was last on and the one it is on now')
    to_run.add_argument('--constant', type=constant_setting, action='append', default=[],
                        metavar='NAME=VALUE',
                        help='set a numeric module constant of core.tracking for this run, '
                             'repeatable (e.g. MODE_HOLD_S=4)')
    # Settings after an option (`run CACHE --switches max_age=0.4`) are left over by
    # argparse, which takes the positionals in one go: take them as settings too.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == 'run' and all('=' in e and not e.startswith('-') for e in extra):
        try:
            args.settings += [tracker_setting(e) for e in extra]
        except argparse.ArgumentTypeError as error:
            to_run.error(f'argument NAME=VALUE: {error}')
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    if args.command == 'cache':
        print(f'{cache(args.bag, args.out, args.params_file)} frames cached in {args.out}')
    else:
        from depthdet_ros.core import tracking
        saved = {name: getattr(tracking, name) for name, _ in args.constant}
        try:
            for name, value in args.constant:
                setattr(tracking, name, value)
            result = run(args.cached, dict(args.settings), args.gt_depth, args.switches,
                         args.reids, args.camera_odometry)
        except ValueError as error:
            print(f'tracker_sweep: {error}', file=sys.stderr)
            return 2
        finally:
            for name, value in saved.items():
                setattr(tracking, name, value)
        if args.reids:
            for frame, track_id, before, now in result:
                print(f'frame {frame}: ID {track_id} given back, last on GT {before}, '
                      f'now on GT {now}')
            print(json.dumps(reidentification_counts(result)))
        elif args.switches:
            for frame, instance, before, after, gap in result:
                print(f'frame {frame}: GT {instance}, track {before} -> {after}, '
                      f'{gap} frames after its last match')
        else:
            print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
