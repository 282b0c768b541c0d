"""`depthdet train from-bag`: an RGB-D recording becomes depth training data.

A robot with an RGB-D camera records image, aligned depth (16UC1 millimetres or 32FC1
metres) and camera_info once; this writes the frames in the `depthdet synth dataset`
layout (rgb/, depth/ as 16-bit millimetre PNGs, annotations.json with each frame's K) so
that `depthdet train depth --init-from models/depth.onnx` fine-tunes the bundled net on it
in canonical-camera metres. The last --val-seconds of the recording (by header stamp)
become the validation split: held out in time, not shuffled in, so validation frames are
not near-copies of training frames. Frames without depth or camera_info are skipped.
A re-run into the same --out replaces OUT/train and OUT/val (only when they hold
nothing but what this command writes); nothing is replaced when it fails.
"""
import argparse
import collections
import contextlib
import json
import os
import re
from pathlib import Path
import shutil
import tempfile
from typing import Dict, List, Tuple

import cv2
import numpy as np

from depthdet_ros.arg_types import non_negative_float, output_folder, positive_float
from depthdet_ros.arg_types import positive_int

TRAIN, VAL = 'train', 'val'
# All that a split folder of this command holds; a folder with more is not replaced.
SPLIT_ENTRIES = {'rgb', 'depth', 'annotations.json'}
FRAME_FILE = re.compile(r'\d{6}\.png')  # in rgb/ and depth/


def _write_split(directory: Path, records: List[Dict]) -> None:
    coco = {'images': records, 'annotations': [], 'categories': []}
    tmp = directory / 'annotations.json.tmp'
    tmp.write_text(json.dumps(coco))
    os.replace(tmp, directory / 'annotations.json')


def _check_split_folders(out: str) -> None:
    """Refuse to replace OUT/train or OUT/val when they hold what this command did not write."""
    for split in (TRAIN, VAL):
        folder = Path(out) / split
        if folder.exists() and not folder.is_dir():
            raise ValueError(f'{folder} is a file, not a split folder; choose another --out')
        others = sorted(set(os.listdir(folder)) - SPLIT_ENTRIES) if folder.is_dir() else []
        for sub in ('rgb', 'depth'):
            if (folder / sub).is_file():
                others.append(sub)
            elif (folder / sub).is_dir():
                others += sorted(f'{sub}/{name}' for name in os.listdir(folder / sub)
                                 if not FRAME_FILE.fullmatch(name))
        if others:
            raise ValueError(f'{folder} holds {", ".join(others[:3])}, not written by `depthdet '
                             'train from-bag`; not replacing it: choose another --out')


def _check_planned_splits(bag, index, plans, every, split_ns, val_seconds, tolerance_ms):
    """Raise BagInputError when a split gets no frame with image, depth and camera_info.

    Checked before anything is written; frames whose depth turns out corrupt or not aligned
    are found only while writing.
    """
    from depthdet_ros.eval.bag_input import BagInputError, depth_unpaired, stamp_tolerance_ns
    topics = index.topics
    usable = [index.images[p.image_ordinal][1] for p in plans
              if index.images[p.image_ordinal][1] is not None and not p.image_ordinal % every
              and p.depth_ordinal is not None and p.camera is not None]
    if not usable:
        if all(p.depth_ordinal is None for p in plans):
            raise BagInputError(f'{bag}: no image on {topics.image} has a depth map: ' +
                                depth_unpaired(index, plans, stamp_tolerance_ns(tolerance_ms)))
        raise BagInputError(f'{bag}: no image on {topics.image} has both a depth map and a '
                            f'usable camera_info on {topics.camera_info}')
    counts = {VAL: sum(s > split_ns for s in usable)}
    counts[TRAIN] = len(usable) - counts[VAL]
    if not counts[TRAIN] or not counts[VAL]:
        span = (max(usable) - min(usable)) / 1e9
        raise BagInputError(f'{bag}: --val-seconds {val_seconds:g} leaves {counts[TRAIN]} '
                            f'training and {counts[VAL]} validation frames of the {len(usable)} '
                            f'usable ones (spanning {span:.2f} s); both splits need frames: '
                            f'record longer or give a --val-seconds above 0 and below {span:.2f}')


def convert(bag: str, out: str, val_seconds: float = 10.0, every: int = 1,
            image_topic: str = '', depth_topic: str = '', camera_info_topic: str = '',
            tolerance_ms: float = 20.0) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Write OUT/train and OUT/val from a bag; return frames per split, skipped per reason.

    The splits are written to a staging folder in OUT; they replace OUT/train and OUT/val
    only when both have frames, so a failed run leaves an earlier dataset as it was.
    """
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval.bag_input import (BagInputError, check_topic_contents, index_bag,
                                             open_reader, plan_frames, read_frames,
                                             select_topics, stamp_tolerance_ns)
    if every < 1:
        raise ValueError('--every must be at least 1')
    _check_split_folders(out)
    reader = open_reader(bag)
    try:
        topic_types = {c.topic: c.msgtype for c in reader.connections}
    finally:
        reader.close()
    topics = select_topics(topic_types, image_topic, camera_info_topic, depth_topic)
    if topics.depth is None or topics.camera_info is None:
        raise BagInputError(f'{bag}: fine-tuning needs a depth image topic and camera_info; '
                            f'found {topics.as_dict()}')
    typestore = make_typestore()
    check_topic_contents(bag, topics, typestore)
    index = index_bag(bag, topics, typestore)
    stamps = [s for _, s, _ in index.images if s is not None]
    if not stamps:
        raise BagInputError(f'{bag}: no stamped images on {topics.image}')
    split_ns = max(stamps) - int(val_seconds * 1e9)
    # Each frame with its own K: a frame without a CameraInfo of its stamp is skipped.
    plans = plan_frames(index, stamp_tolerance_ns(tolerance_ms), latest_camera=False)
    _check_planned_splits(bag, index, plans, every, split_ns, val_seconds, tolerance_ms)
    os.makedirs(out, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.from-bag-', dir=out))
    try:
        records = {TRAIN: [], VAL: []}
        skipped = collections.Counter()
        unreadable = ''  # the first unreadable depth map's error
        for split in records:
            for sub in ('rgb', 'depth'):
                (staging / split / sub).mkdir(parents=True)
        for frame in read_frames(bag, index, plans, typestore):
            if frame.camera_info_refused:
                # The node's rule (CameraModel.for_image): a CameraInfo of another aspect
                # ratio (a crop, another camera's) does not describe the image.
                skipped['camera_info of another aspect ratio'] += 1
                continue
            if frame.index % every or frame.rgb is None:
                continue
            h, w = frame.rgb.shape[:2]
            if frame.depth_refused or (frame.gt_depth is not None
                                       and frame.gt_depth.shape != (h, w)):
                skipped['depth map of another size'] += 1  # unusable as a per-pixel target
                continue
            if frame.depth_other_frame:
                # Another frame_id: the depth camera's own view, not the image's pixels.
                skipped['depth map in another frame_id than the image'] += 1
                continue
            if frame.camera_info_other_frame:
                # Another camera's K would be written as this frame's (outsider round 49).
                skipped['camera_info in another frame_id than the image'] += 1
                continue
            if frame.depth_error:
                unreadable = unreadable or frame.depth_error
                skipped[f'depth map unreadable (the first: {unreadable})'] += 1
                continue
            if frame.gt_depth is None or frame.camera is None:
                continue
            split = VAL if frame.stamp_ns > split_ns else TRAIN
            name = f'{frame.index:06d}'
            directory = staging / split
            camera = frame.camera  # scaled for a resized image by read_frames
            millimetres = np.where(np.isfinite(frame.gt_depth) & (frame.gt_depth > 0),
                                   np.round(frame.gt_depth * 1000.0), 0)
            cv2.imwrite(str(directory / 'rgb' / f'{name}.png'),
                        cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(directory / 'depth' / f'{name}.png'),
                        np.clip(millimetres, 0, 65535).astype(np.uint16))
            records[split].append({
                'id': frame.index, 'file_name': f'rgb/{name}.png', 'width': w, 'height': h,
                'depth_file': f'depth/{name}.png', 'stamp_ns': int(frame.stamp_ns),
                'camera': {'K': [float(v) for v in np.asarray(camera.K).reshape(-1)],
                           'D': [float(v) for v in camera.D],
                           'distortion_model': camera.distortion_model}})
        if index.repeated_images:
            skipped['a copy of an image message (two publishers)'] = index.repeated_images
        counts = {split: len(entries) for split, entries in records.items()}
        if not counts[TRAIN] or not counts[VAL]:
            reasons = ''.join(f'; skipped, {reason}: {n}' for reason, n in skipped.items())
            raise BagInputError(f'{bag}: {counts[TRAIN]} training and {counts[VAL]} validation '
                                f'frames could be used{reasons}; both splits need frames')
        for split, entries in records.items():
            _write_split(staging / split, entries)
            target = Path(out) / split
            if target.exists():
                os.replace(target, staging / f'{split}.old')  # removed with the staging folder
            os.replace(staging / split, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts, dict(skipped)


def add_parser(commands):
    """Register `depthdet train from-bag`."""
    parser = commands.add_parser(
        'from-bag', help='turn an RGB-D bag into depth training data (train + held-out val)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', help='rosbag2 folder (MCAP or sqlite3)')
    parser.add_argument('--out', required=True,
                        help='dataset folder: writes OUT/train and OUT/val, replacing those of '
                             'an earlier run (other files in OUT are kept)')
    parser.add_argument('--val-seconds', type=positive_float, default=10.0,
                        help='the last this many seconds become validation (default 10)')
    parser.add_argument('--every', type=positive_int, default=1, metavar='N',
                        help='keep every N-th image (default 1)')
    parser.add_argument('--image-topic', default='', help='default: found by type')
    parser.add_argument('--depth-topic', default='',
                        help='default: the Image topic named depth (else the compressed one); '
                        'its frame_id must be the images\' (a depth map registered to them)')
    parser.add_argument('--camera-info-topic', default='', help='default: found by type')
    parser.add_argument('--stamp-tolerance', type=non_negative_float, default=20.0,
                        metavar='MS', help='largest header-stamp difference between an image '
                        'and its depth map, ms (default 20)')
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run `depthdet train from-bag`."""
    from depthdet_ros.cli import CliError
    created = not os.path.exists(args.out)
    output_folder(args.out, '--out')
    try:
        counts, skipped = convert(args.bag, args.out, args.val_seconds, args.every,
                                  args.image_topic, args.depth_topic, args.camera_info_topic,
                                  args.stamp_tolerance)
    except (ValueError, OSError) as exc:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(args.out)  # made by this run, and empty: a failed run leaves nothing
        raise CliError(str(exc)) from exc
    print(f'{args.out}: {counts[TRAIN]} training and {counts[VAL]} validation frames')
    for reason, n in skipped.items():
        print(f'skipped {n} frames: {reason}')
    print(f'fine-tune: depthdet train depth --data {args.out}/train --val-data {args.out}/val '
          '--init-from models/depth.onnx --out runs/finetune ...')
    return 0
