"""`depthdet eval BAG`: score the pipeline on a rosbag2 against its ground truth.

Runs the node's inference core, built from the node's parameters file, on every image
of the bag (no drops), and writes to --out: report.json (schema in
depthdet_ros.eval.report), report.md, and plots; with --output-bag, a copy of the bag
with the detections, alerts and depth maps added. See bag_input for topic detection
and stamp matching, evaluate for what is measured.
"""
import dataclasses
import functools
import math
import os

from depthdet_ros.tools.options import add_pipeline_arguments, pipeline_values

DEFAULT_OUT = 'out/eval'


def _float_list(text):
    import argparse
    try:
        values = tuple(float(v) for v in text.split(',') if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated metres, got {text!r}')
    if not values or any(not b > a for a, b in zip(values, values[1:])) or values[0] <= 0:
        raise argparse.ArgumentTypeError('distance bands must be increasing positive metres')
    return values


def tracker_setting(text):
    import argparse
    import dataclasses
    from depthdet_ros.core.tracking import TrackerConfig
    name, sep, value = text.partition('=')
    fields = {f.name: f for f in dataclasses.fields(TrackerConfig)}
    if not sep or name not in fields:
        raise argparse.ArgumentTypeError(
            f'expected NAME=VALUE with NAME one of {", ".join(fields)}, got {text!r}')
    kind = type(fields[name].default)
    try:
        return name, kind(float(value)) if kind is int else kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{name} needs a number, got {value!r}') from None


def add_parser(subparsers):
    """Register `depthdet eval`."""
    parser = subparsers.add_parser(
        'eval', help='evaluate the pipeline on a rosbag2 with ground truth',
        description='Run the detector + depth pipeline (or the joint model, --joint-model) '
                    'with the node\'s parameters on every image of a rosbag2 (MCAP or '
                    'sqlite3) and score depth, per-object depth, detection and proximity '
                    'alerts against the ground truth in the bag.')
    parser.add_argument('bag', help='rosbag2 folder')
    add_pipeline_arguments(parser)
    topics = parser.add_argument_group('topics (found by message type when not given)')
    topics.add_argument('--image-topic', default='', help='Image or CompressedImage topic')
    topics.add_argument('--camera-info-topic', default='', help='CameraInfo topic')
    topics.add_argument('--depth-topic', default='',
                        help='ground-truth depth Image: 32FC1 metres or 16UC1 millimetres, or '
                        'its compressedDepth CompressedImage; registered to the images')
    topics.add_argument('--gt-detections-topic', default='',
                        help='ground-truth Detection2DArray (class_id = class name)')
    topics.add_argument('--gt-detections-3d-topic', default='',
                        help='ground-truth Detection3DArray (3D boxes, for GT object depth)')
    topics.add_argument('--gt-instances-topic', default='',
                        help='ground-truth instance masks: 16UC1 Image, 0 = background, else '
                             'the object\'s GT Detection2D id (mask mAP with a joint model)')
    parser.add_argument('--stamp-tolerance', type=float, default=5.0, metavar='MS',
                        help='largest header-stamp difference between an image and its '
                             'depth / camera_info / GT messages, ms (default 5)')
    parser.add_argument('--start', type=float, default=0.0, metavar='S',
                        help='score only images stamped at least S seconds after the first '
                             'image (e.g. the held-out end of a recording)')
    parser.add_argument('--end', type=float, default=math.inf, metavar='S',
                        help='score only images stamped less than S seconds after the first')
    parser.add_argument('--match-iou', type=float, default=0.5,
                        help='IoU for matching detections to GT boxes (default 0.5)')
    parser.add_argument('--distance-bands', type=_float_list, default=None, metavar='M,M,...',
                        help='edges of the distance bands, metres (default 1,2,4,8)')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help=f'report folder (default {DEFAULT_OUT})')
    parser.add_argument('--output-bag', default='',
                        help='write a copy of the bag with the outputs added to this folder')
    parser.add_argument('--output-prefix', default='depthdet',
                        help='namespace of the added topics (default depthdet)')
    parser.add_argument('--output-format', choices=('mcap', 'sqlite3'), default='mcap',
                        help='storage of --output-bag (default mcap)')
    parser.add_argument('--no-tracking', action='store_true',
                        help='do not run the tracker (core.tracking) or score tracking (as '
                             'the params file\'s tracking: false)')
    parser.add_argument('--tracker', type=tracker_setting, action='append', default=[],
                        metavar='NAME=VALUE',
                        help='tracker setting (core.tracking.TrackerConfig field) over the '
                             'params file\'s track_* / alert settings, repeatable, e.g. '
                             '--tracker alert_hysteresis=0.2')
    parser.add_argument('--tracker-gt-depth', type=float, default=None, metavar='NOISE',
                        help='feed the tracker the GT depth of matched detections times '
                             '(1 + N(0, NOISE)) instead of the network\'s: scores the tracker '
                             'apart from the depth network (other scores are unchanged)')
    parser.add_argument('--camera-odometry', default=None, metavar='TOPIC',
                        help='give the tracker the camera\'s own motion from this '
                             'nav_msgs/Odometry topic (twist in the camera\'s optical frame, '
                             'as /camera/odometry of `depthdet synth bag`, or in a robot '
                             'frame that the bag\'s /tf_static links to the camera\'s): '
                             'velocities become the objects\' own, a static object\'s '
                             'closing speed is known from its first frame')
    parser.add_argument('--odom-frame', default=None, metavar='FRAME',
                        help='give the tracker the camera\'s motion from its pose in FRAME, '
                             'a frame fixed in the world (e.g. odom), on the bag\'s /tf and '
                             '/tf_static, as the node\'s odom_frame does (a camera on a moving '
                             'joint); instead of --camera-odometry')
    parser.add_argument('--tf', default=None, metavar='TOPIC',
                        help='the bag\'s moving transforms for --odom-frame (default: /tf)')
    parser.add_argument('--tf-static', default=None, metavar='TOPIC',
                        help='the bag\'s fixed transforms (tf2_msgs/TFMessage) linking '
                             '--camera-odometry\'s frame, or --odom-frame, to the camera\'s '
                             '(default: /tf_static; a namespaced robot\'s, e.g. '
                             '/robot1/tf_static)')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.set_defaults(func=functools.partial(run, actions=parser._actions))
    return parser


def command_line(args, actions) -> list:
    """Return the `depthdet eval` command equivalent to parsed `args` (non-defaults only)."""
    words = ['depthdet', 'eval', args.bag]
    for action in actions:
        if not action.option_strings or action.dest in ('help', 'bag'):
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            words.append(flag)
        elif isinstance(value, list):
            for name, setting in value:
                words += [flag, f'{name}={setting}']
        else:
            words += [flag, ','.join(f'{v:g}' for v in value)
                      if isinstance(value, tuple) else str(value)]
    return words


def _tracker(args, values):
    """Build the node's tracker as the params file sets it, --tracker on top (or None).

    None with --no-tracking or the file's `tracking: false`; tracker options given
    with either are refused, as they would silently do nothing.
    """
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.tracking import Tracker
    from depthdet_ros.ros.params import ConfigError, tracker_config

    off = '--no-tracking' if args.no_tracking else \
        'the params file\'s tracking: false' if not values['tracking'] else None
    if off:
        given = [o for o, v in (('--tracker', args.tracker),
                                ('--tracker-gt-depth', args.tracker_gt_depth is not None),
                                ('--camera-odometry', args.camera_odometry is not None),
                                ('--odom-frame', args.odom_frame is not None)) if v]
        if given:
            raise CliError(f'{given[0]} has no effect with {off}: drop one of them')
        return None
    try:
        config = tracker_config(values)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        return Tracker(dataclasses.replace(config, **dict(args.tracker)))
    except ValueError as exc:
        raise CliError(f'--tracker: {exc}') from None


def run(args, actions=()):
    """Evaluate the bag; print where the report went and its headline figures."""
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.arg_types import output_folder
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.eval import bag_input, plots, report as report_module
    from depthdet_ros.eval.evaluate import EvalSettings, evaluate_bag, NothingToEvaluate
    from depthdet_ros.eval.evaluate import strategy_order
    from depthdet_ros.eval.object_errors import DEFAULT_DISTANCE_EDGES_M
    from depthdet_ros.eval.output_bag import OutputBag
    from depthdet_ros.core.odometry import CameraMotionUnavailable, TF, TF_STATIC
    from depthdet_ros.eval.tracking import read_camera_odometry, read_camera_tf
    from depthdet_ros.ros.params import build_pipeline, parse_class_max_depth

    values = pipeline_values(args)
    try:
        if not (math.isfinite(args.start) and 0 <= args.start < args.end):
            raise ValueError(f'--start {args.start} --end {args.end}: need a finite start '
                             '>= 0 before the end (seconds after the first image)')
        tolerance_ns = bag_input.stamp_tolerance_ns(args.stamp_tolerance)
        if not 0 < args.match_iou <= 1:
            raise ValueError(f'--match-iou must be in (0, 1], got {args.match_iou}')
        if args.tracker_gt_depth is not None and not 0 <= args.tracker_gt_depth < 1:
            raise ValueError(f'--tracker-gt-depth must be in [0, 1), got {args.tracker_gt_depth}')
        reader = bag_input.open_reader(args.bag)
        topic_types = {c.topic: c.msgtype for c in reader.connections}
        reader.close()
        topics = bag_input.select_topics(
            topic_types, args.image_topic, args.camera_info_topic, args.depth_topic,
            args.gt_detections_topic, args.gt_detections_3d_topic, args.gt_instances_topic)
        bag_input.check_topic_contents(args.bag, topics, make_typestore())
    except ValueError as exc:  # BagInputError is a ValueError
        raise CliError(str(exc)) from None
    tracker = _tracker(args, values)
    odometry = None
    if args.camera_odometry is not None and args.odom_frame is not None:
        raise CliError('--camera-odometry and --odom-frame are two sources of the camera\'s '
                       'motion: give one')
    for option, value, used, by in (
            ('--tf', args.tf, args.odom_frame is not None, '--odom-frame'),
            ('--tf-static', args.tf_static,
             args.odom_frame is not None or args.camera_odometry is not None,
             '--odom-frame or --camera-odometry')):
        if value is not None and not used:
            raise CliError(f'{option} has no effect without {by}')
    for option, value in (('--camera-odometry', args.camera_odometry),
                          ('--odom-frame', args.odom_frame), ('--tf', args.tf),
                          ('--tf-static', args.tf_static)):
        if value is not None and not value.strip('/'):
            raise CliError(f'{option} is empty: give a name')
    try:
        if args.camera_odometry is not None:
            odometry = read_camera_odometry(args.bag, make_typestore(), args.camera_odometry,
                                            args.tf_static or TF_STATIC)
        elif args.odom_frame is not None:
            odometry = read_camera_tf(args.bag, make_typestore(), args.odom_frame,
                                      args.tf or TF, args.tf_static or TF_STATIC)
    except CameraMotionUnavailable as exc:
        raise CliError(str(exc)) from None
    output_folder(args.out)
    if args.output_bag and os.path.exists(args.output_bag):
        raise CliError(f'--output-bag {args.output_bag} exists; rosbag2 writes a new folder, '
                       'choose another name')
    try:
        pipeline = build_pipeline(values)
    except (ModelLoadError, OSError) as exc:
        raise CliError(str(exc)) from None
    settings = EvalSettings(
        configured_strategy=values['depth_strategy'], max_depth=values['max_depth'],
        class_max_depth=parse_class_max_depth(values['class_max_depth']),
        match_iou=args.match_iou,
        distance_edges_m=args.distance_bands or DEFAULT_DISTANCE_EDGES_M,
        strategies=strategy_order(values['depth_strategy']),
        score_masks=pipeline.joint is not None)
    typestore = make_typestore()
    output_bag = None
    try:
        if args.output_bag:
            try:
                output_bag = OutputBag(args.output_bag, args.output_format, args.output_prefix,
                                       typestore, topic_types, values['default_frame_id'],
                                       values['publish_raw'], values['publish_tentative'],
                                       values['stale_input_timeout'])
            except (ValueError, OSError) as exc:
                raise CliError(str(exc)) from None
        try:
            results, index = evaluate_bag(
                args.bag, topics, pipeline, settings, typestore, tolerance_ns,
                values['max_image_pixels'], output_bag, progress=not args.no_progress,
                tracker=tracker, gt_depth_noise=args.tracker_gt_depth,
                window_s=(args.start, args.end), camera_odometry=odometry)
        except NothingToEvaluate as exc:
            raise CliError(f'no frame to evaluate: {exc} (see --start / --end)'
                           if args.start or math.isfinite(args.end) else
                           f'no frame to evaluate: {exc}') from None
    except BaseException:
        # Nothing half-written stays behind to block the re-run (rosbag2 will not
        # write into an existing folder).
        if output_bag is not None:
            output_bag.discard()
        raise
    finally:
        pipeline.close()
    if output_bag is not None and results.frames.processed:
        output_bag.close()
    elif output_bag is not None:  # holds no outputs
        output_bag.discard()
    run_info = {'path': args.bag, 'command': command_line(args, actions),
                'params_file': args.params_file or None,
                'detector_model': None if values['joint_model'] else
                values['detector_model'] or 'bundled detector.onnx',
                'depth_model': None if values['joint_model'] else
                values['depth_model'] or 'bundled depth.onnx',
                'joint_model': values['joint_model'] or None,
                'providers': pipeline.providers, 'score_threshold': values['score_threshold'],
                'iou_threshold': values['iou_threshold'],
                'stamp_tolerance_ms': args.stamp_tolerance,
                'tracker': dataclasses.asdict(tracker.config) if tracker else None,
                'tracker_gt_depth': args.tracker_gt_depth,
                'camera_odometry': args.camera_odometry, 'odom_frame': args.odom_frame}
    report = report_module.build_report(results, index, settings, run_info)
    json_path = os.path.join(args.out, 'report.json')
    md_path = os.path.join(args.out, 'report.md')
    report['outputs'].update(json=json_path, markdown=md_path,
                             output_bag=args.output_bag or None)
    if not args.no_plots:
        report['outputs']['plots'] = plots.write_plots(report, results.samples,
                                                       results.latency_ms, args.out)
    report_module.write_json(report, json_path)
    with open(md_path, 'w', encoding='utf-8') as f:
        f.write(report_module.markdown(report))
    _print_summary(report)
    frames = report['frames']
    if not frames['processed']:  # images in the window, all unreadable
        items = [c for c in report['corrupt_messages']['items'] if c['topic'] == topics.image]
        example = f', e.g. {items[0]["topic"]}: {items[0]["error"]}' if items else ''
        raise CliError(f'no frame was evaluated: every image in the window was '
                       f'unreadable{example}')
    return 0


def _print_tracking(t):
    identity, jitter, ttc, alerts = t['identity'], t['jitter'], t['time_to_contact'], \
        t['alerts']
    print(f'tracking: IDF1 {_fmt(identity["idf1"])}, MOTA {_fmt(identity["mota"])}, '
          f'ID switches {identity["id_switches"]} '
          f'({_fmt(identity["id_switches_per_100_object_frames"])} per 100 object-frames)')
    print(f'  depth jitter (static objects, n {jitter["objects"]}): raw {_fmt(jitter["raw_m"])} '
          f'm, tracked {_fmt(jitter["tracked_m"])} m, ratio {_fmt(jitter["ratio"])}; '
          f'depth MAE raw {_fmt(t["depth"]["raw_mae_m"])} m, tracked '
          f'{_fmt(t["depth"]["tracked_mae_m"])} m')
    print(f'  time to contact (approaching, n {ttc["samples"]}): median rel. error '
          f'{_fmt(ttc["median_rel_error"])} (moving objects, n '
          f'{ttc["moving_objects"]["samples"]}: '
          f'{_fmt(ttc["moving_objects"]["median_rel_error"])}); alert transitions raw '
          f'{alerts["transitions"]["raw"]}, tracked {alerts["transitions"]["tracked"]}, GT '
          f'{alerts["transitions"]["ground_truth"]}; flickering objects raw '
          f'{alerts["flickering_objects"]["raw"]}, tracked '
          f'{alerts["flickering_objects"]["tracked"]}')
    topic = t['alert_topic']
    print(f'  proximity_alert as published: recall of GT-alert object-frames '
          f'{_fmt(topic["recall"])} ({topic["on_topic"]} of {topic["gt_alert_object_frames"]});'
          f' entries {topic["entries"]}, due by the GT {topic["entries_due"]}, duplicates '
          f'{topic["entries_duplicate"]}, on no GT object {topic["entries_on_no_gt_object"]}; '
          f'enters + leaves {topic["transitions"]["topic"]}'
          f' (GT {topic["transitions"]["ground_truth"]}), flickering objects '
          f'{topic["flickering_objects"]}')
    if t.get('frames_without_camera_motion'):
        print(f'  {t["frames_without_camera_motion"]} frames had no camera motion; the first: '
              f'{t["camera_motion_problem"]}')
    for reason in t.get('transforms_refused') or ():
        print(f'  left out: {reason}')


def _print_summary(report):
    from depthdet_ros.eval.report import input_warnings, no_depth_why
    frames, corrupt = report['frames'], report['corrupt_messages']
    print(f'{frames["processed"]}/{frames["images"]} frames processed, '
          f'{corrupt["count"]} corrupt messages skipped')
    for warning in input_warnings(report):
        print(f'warning: {warning}')
    if report['depth']:
        m = report['depth']['metric']
        print(f'depth: REL {m["rel"]:.3f}  RMSE {m["rmse"]:.3f} m  δ1 {m["delta1"]:.3f}')
    elif report['topics']['depth']:
        print(f'depth: {no_depth_why(report)}')
    if report['objects']:
        strategy = report['settings']['depth_strategy']
        o = report['objects']['detected'][strategy]['overall']
        g = report['objects']['ground_truth'][strategy]['overall']
        for label, stats in (('detected boxes', o), ('GT boxes', g)):
            if stats['mae_m'] is not None:
                print(f'objects ({strategy}, {label}): n {stats["count"]}, MAE '
                      f'{stats["mae_m"]:.3f} m, AbsRel {stats["abs_rel"]:.3f}')
    if report['detection']:
        d = report['detection']
        print(f'detection: mAP@0.5 {_fmt(d["map50"])}, mAP@0.5:0.95 {_fmt(d["map50_95"])}')
        if d.get('masks'):
            print(f'instance masks: mask mAP@0.5 {_fmt(d["masks"]["map50"])}, mAP@0.5:0.95 '
                  f'{_fmt(d["masks"]["map50_95"])} ({d["masks"]["frames"]} frames)')
    if report.get('tracking'):
        _print_tracking(report['tracking'])
    print(f'report: {report["outputs"]["markdown"]} and {report["outputs"]["json"]}')


def _fmt(value):
    return '-' if value is None else f'{value:.3f}'
