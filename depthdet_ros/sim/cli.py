"""`depthdet synth`: synthetic datasets, bags, statistics and preview pictures.

MuJoCo, rosbags and the renderer are imported inside the run functions, so building
the parser stays cheap.
"""
import argparse
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

from depthdet_ros.arg_types import non_negative_int, output_file, output_folder, positive_float, \
    positive_int


def _sizes(text):
    from depthdet_ros.sim.dataset import parse_sizes
    try:
        return parse_sizes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _split_name(text):
    """Check a split name: one folder inside --out ('', '..' or a path write elsewhere)."""
    if not re.fullmatch(r'[A-Za-z0-9_.-]+', text) or set(text) == {'.'}:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a split name: one folder name of letters, digits, _ - and .')
    return text


def _progress_bar(total, description):
    from tqdm import tqdm
    # disable=None: draw only on a terminal.
    return tqdm(total=total, desc=description, unit='frame', dynamic_ncols=True,
                file=sys.stderr, disable=None)


# `synth stats` options that make fresh frames, and their defaults.
FRESH_FRAME_OPTIONS = {'frames': 200, 'size': ((320, 240),), 'seed': 0, 'scene': 'mixed',
                       'quality': 'fast'}


def _common(parser, default_scene, default_quality, sizes=True):
    parser.add_argument('--seed', type=non_negative_int, default=0, help='random seed (>= 0)')
    parser.add_argument('--scene', default=default_scene,
                        choices=('room', 'tabletop', 'mixed') if sizes else ('room', 'tabletop'),
                        help=f'scene kind (default {default_scene})')
    parser.add_argument('--quality', default=default_quality, choices=('fast', 'standard', 'high'),
                        help='render quality: fast = no shadows or anti-aliasing, standard = '
                             'shadows, high = shadows and 4x anti-aliasing '
                             f'(default {default_quality})')


def add_parser(subparsers):
    """Register `synth` and its subcommands."""
    synth = subparsers.add_parser(
        'synth', help='synthetic camera world: datasets, bags, statistics, previews',
        description='Render a synthetic camera world (MuJoCo) with exact ground truth.')
    commands = synth.add_subparsers(dest='synth_command', metavar='SUBCOMMAND')

    def show_help(args):
        synth.print_help()
        return 2

    synth.set_defaults(func=show_help)

    dataset = commands.add_parser(
        'dataset', help='write images, depth, masks and COCO annotations',
        description='Write a dataset split (layout in docs/synthetic_dataset.md). Re-running '
                    'the same command resumes: complete frames are kept.')
    dataset.add_argument('--out', type=Path, required=True, help='dataset folder')
    dataset.add_argument('--frames', type=positive_int, required=True, help='frames in the split')
    dataset.add_argument('--split', type=_split_name, default='train',
                         help='split name (default train), a folder of --out: letters, '
                              'digits, _ - and .; each split draws different frames from '
                              'the same seed')
    dataset.add_argument('--size', type=_sizes, default=((640, 480),),
                         help='WxH, or several comma-separated (each frame picks one); '
                              'default 640x480')
    dataset.add_argument('--image-format', choices=('png', 'jpg'), default='png')
    dataset.add_argument('--depth-format', choices=('png16', 'npy'), default='png16',
                         help='png16: uint16 millimetres, 0 = none; npy: float32 metres, NaN = '
                              'none (default png16)')
    dataset.add_argument('--moving', action='store_true',
                         help='each frame a moment of its own sequence with moving objects '
                              '(as synth bag --moving): in rooms people walking, one toward '
                              'the camera down to 0.9 m, often cut by the image border; on '
                              'tabletops objects sliding')
    _common(dataset, 'mixed', 'fast')
    dataset.set_defaults(func=run_dataset)

    bag = commands.add_parser(
        'bag', help='write a rosbag2 of a camera moving through one scene',
        description='Write a rosbag2 (image, camera_info, depth, ground-truth detections).')
    bag.add_argument('--out', type=Path, required=True, help='bag folder to create')
    bag.add_argument('--frames', type=positive_int, required=True)
    bag.add_argument('--format', choices=('mcap', 'sqlite3'), default='mcap',
                     help='storage (default mcap)')
    bag.add_argument('--compressed', action='store_true', help='JPEG CompressedImage images')
    bag.add_argument('--rate', type=positive_float, default=10.0, help='frame rate, Hz')
    bag.add_argument('--size', type=_sizes, default=((640, 480),), help='WxH (default 640x480)')
    bag.add_argument('--speed', type=positive_float, default=0.4, help='camera speed, m/s')
    bag.add_argument('--moving', action='store_true',
                     help='objects move too: people walk (one toward the camera), objects '
                          'slide on the table; adds their velocities (nav_msgs/Odometry)')
    bag.add_argument('--start-time', type=float, default=None,
                     help='first stamp, seconds since epoch (default 1700000000); every '
                          'stamp must stay below 2^31 s, the end of ROS Time')
    _common(bag, 'room', 'standard', sizes=False)
    bag.set_defaults(func=run_bag)

    stats = commands.add_parser(
        'stats', help='objects per class, depth range, occlusion of a dataset or of fresh frames',
        description='Print statistics of a dataset split (a folder with annotations.json), '
                    'or of --frames freshly generated frames.')
    stats.add_argument('dataset', nargs='?', type=Path,
                       help='split folder, e.g. DIR/train, or its annotations.json')
    stats.add_argument('--frames', type=positive_int,
                       help='how many fresh frames, without a dataset (default 200)')
    stats.add_argument('--size', type=_sizes, help='size of fresh frames (default 320x240)')
    _common(stats, 'mixed', 'fast')
    # None: not given, so that a dataset with options for fresh frames can be refused.
    stats.set_defaults(func=run_stats, **{name: None for name in FRESH_FRAME_OPTIONS})

    preview = commands.add_parser(
        'preview', help='picture of a few frames with labelled boxes and depth',
        description='Save a montage of frames (RGB with ground-truth boxes | depth).')
    preview.add_argument('--out', type=Path, required=True,
                         help='picture file: PNG, or another format OpenCV writes (.jpg, ...)')
    preview.add_argument('--frames', type=positive_int, default=4)
    preview.add_argument('--columns', type=positive_int, default=2)
    preview.add_argument('--size', type=_sizes, default=((640, 480),))
    _common(preview, 'mixed', 'high')
    preview.set_defaults(func=run_preview)
    return synth


def _user_error(message):
    from depthdet_ros.cli import CliError
    return CliError(message)


def run_dataset(args):
    from depthdet_ros.sim.dataset import DatasetConfig, generate_dataset
    config = DatasetConfig(seed=args.seed, frames=args.frames, split=args.split,
                           scene=args.scene, sizes=tuple(args.size), quality=args.quality,
                           image_format=args.image_format, depth_format=args.depth_format,
                           moving=args.moving)
    output_folder(str(args.out / args.split), '--out')
    with _progress_bar(args.frames, f'synth {args.split}') as bar:
        try:
            summary = generate_dataset(args.out, config, progress=bar.update)
        except ValueError as exc:
            raise _user_error(str(exc)) from None
        except OSError as exc:
            raise _user_error(f'cannot write {args.out}: {exc.strerror or exc}') from None
    print(f'{summary.directory}: {summary.frames_total} frames '
          f'({summary.frames_written} rendered, {summary.frames_skipped} already there), '
          f'{summary.annotations} annotations')
    if summary.frames_written:
        print(f'throughput: {summary.frames_per_second:.1f} frames/s '
              f'({summary.seconds:.1f} s, quality {args.quality})')
    return 0


def _start_ns(args):
    """Return the first stamp in ns; raise CliError unless every stamp fits a ROS Time."""
    from depthdet_ros.sim.bag import DEFAULT_START_NS
    if args.start_time is None:
        return DEFAULT_START_NS
    # builtin_interfaces/Time holds the seconds in an int32.
    last = args.start_time + (args.frames - 1) / args.rate
    if not (math.isfinite(args.start_time) and args.start_time >= 0 and last < 2**31):
        frames = f'{args.frames} frame{"s" if args.frames > 1 else ""}'
        raise _user_error(f'--start-time {args.start_time:.17g}: every stamp ({frames} at '
                          f'{args.rate:g} Hz) must lie in 0 .. 2^31 s, the range of a ROS Time; '
                          'give seconds since the epoch, e.g. --start-time 1700000000')
    return int(args.start_time * 1e9)


def _check_new_folder(path):
    """Raise CliError unless `path` is new and can be created (its parents included)."""
    if path.exists():
        raise _user_error(f'{path} exists; rosbag2 writes a new folder')
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise _user_error(f'cannot create {path}: {existing} is not a writable folder; '
                          'choose another --out')


def run_bag(args):
    from depthdet_ros.sim.bag import write_bag
    from depthdet_ros.sim.world import generate_sequence
    _check_new_folder(args.out)
    if len(args.size) != 1:
        raise _user_error('a bag has one image size')
    start_ns = _start_ns(args)
    frames = generate_sequence(args.seed, args.frames, args.scene, args.size[0], args.rate,
                               args.speed, quality=args.quality, moving=args.moving)
    began = time.perf_counter()
    try:
        with _progress_bar(args.frames, 'synth bag') as bar:
            count = write_bag(args.out, frames, args.format, args.compressed, args.rate,
                              start_ns, progress=bar.update)
    except BaseException as exc:
        # A partly written bag cannot be read and would block a rerun.
        shutil.rmtree(args.out, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _user_error(f'cannot write {args.out}: {exc.strerror or exc}') from None
        raise
    seconds = time.perf_counter() - began
    print(f'{args.out}: {count} frames at {args.rate:g} Hz ({args.format}, '
          f'{"jpeg" if args.compressed else "rgb8"}), {count / seconds:.1f} frames/s')
    return 0


def run_stats(args):
    from depthdet_ros.sim.stats import compute_stats, format_stats, samples_from_frames
    given = [name for name in FRESH_FRAME_OPTIONS if getattr(args, name) is not None]
    if args.dataset is not None:
        if given:
            raise _user_error(f'--{given[0]} is for fresh frames: with a dataset '
                              f'({args.dataset}) drop it')
        samples = _coco_samples(args.dataset)
    else:
        for name, default in FRESH_FRAME_OPTIONS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        from depthdet_ros.sim.world import generate_frames
        frames = generate_frames(args.seed, args.frames, args.scene, tuple(args.size),
                                 quality=args.quality)
        with _progress_bar(args.frames, 'synth stats') as bar:
            samples = samples_from_frames(_counted(frames, bar))
    print(format_stats(compute_stats(*samples)))
    return 0


def _coco_samples(path):
    """Return stats samples of a split folder or its annotations.json; CliError if unusable."""
    from depthdet_ros.sim.dataset import load_annotations, split_folder, unfinished_hint
    from depthdet_ros.sim.stats import samples_from_coco
    folder = split_folder(path)
    file = folder / 'annotations.json'
    if folder.is_file():
        raise _user_error(f'{path} is a file; give a split folder holding annotations.json, '
                          'e.g. DIR/train')
    try:
        coco = load_annotations(folder)
    except FileNotFoundError:
        raise _user_error(f'{path} has no annotations.json' + unfinished_hint(folder)) from None
    except (OSError, ValueError) as exc:  # unreadable, or not JSON (UnicodeDecodeError too)
        raise _user_error(f'cannot read {file}: {getattr(exc, "strerror", None) or exc}') from None
    lists = ('images', 'annotations', 'categories')
    missing = [key for key in lists if not isinstance(coco, dict)
               or not isinstance(coco.get(key), list)]
    if missing:
        raise _user_error(f'{file} is not a COCO dataset: it has no {", ".join(missing)} list '
                          '(`depthdet synth dataset` writes one)')
    try:
        return samples_from_coco(coco)
    except (KeyError, TypeError, ValueError) as exc:
        problem = f'missing key {exc}' if isinstance(exc, KeyError) else str(exc)
        raise _user_error(f'{file}: an image, annotation or category is not as `depthdet synth '
                          f'dataset` writes it ({problem})') from None


def _counted(frames, bar):
    for frame in frames:
        bar.update(1)
        yield frame


def run_preview(args):
    import cv2

    # Checked before rendering, which takes a while at high quality.
    if not args.out.is_dir() and not cv2.haveImageWriter(str(args.out)):
        kind = f'no picture format {args.out.suffix!r} in OpenCV' if args.out.suffix \
            else 'no extension to name the picture format'
        raise _user_error(f'--out {args.out}: {kind}; give a .png file')
    output_file(str(args.out), '--out')
    from depthdet_ros.sim.preview import montage
    from depthdet_ros.sim.world import generate_frames
    frames = list(generate_frames(args.seed, args.frames, args.scene, tuple(args.size),
                                  quality=args.quality))
    if not cv2.imwrite(str(args.out), montage(frames, args.columns),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise _user_error(f'could not write {args.out}')
    print(f'{args.out}: {len(frames)} frames, '
          f'{sum(len(f.objects) for f in frames)} labelled objects')
    return 0
