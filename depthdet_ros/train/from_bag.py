"""`depthdet train from-bag`: an RGB-D recording becomes depth training data.

A robot with an RGB-D camera records image, aligned depth (16UC1 millimetres or 32FC1
metres) and camera_info once; this writes the frames in the `depthdet synth dataset`
layout (rgb/, depth/ as 16-bit millimetre PNGs, annotations.json with each frame's K) so
that `depthdet train depth --init-from models/depth.onnx` fine-tunes the bundled net on it
in canonical-camera metres. The last --val-seconds of the recording (by header stamp)
become the validation split: held out in time, not shuffled in, so validation frames are
not near-copies of training frames. Frames without depth or camera_info are skipped.
"""
import argparse
import json
import os
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np

TRAIN, VAL = 'train', 'val'


def _write_split(directory: Path, records: List[Dict]) -> None:
    coco = {'images': records, 'annotations': [], 'categories': []}
    tmp = directory / 'annotations.json.tmp'
    tmp.write_text(json.dumps(coco))
    os.replace(tmp, directory / 'annotations.json')


def convert(bag: str, out: str, val_seconds: float = 10.0, every: int = 1,
            image_topic: str = '', depth_topic: str = '', camera_info_topic: str = '',
            tolerance_ms: float = 20.0) -> Dict[str, int]:
    """Write OUT/train and OUT/val from a bag; returns frames written per split."""
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval.bag_input import (BagInputError, index_bag, open_reader,
                                             plan_frames, read_frames, select_topics,
                                             stamp_tolerance_ns)
    if every < 1:
        raise ValueError('--every must be at least 1')
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
    index = index_bag(bag, topics, typestore)
    stamps = [s for _, s, _ in index.images if s is not None]
    if not stamps:
        raise BagInputError(f'{bag}: no stamped images on {topics.image}')
    split_ns = max(stamps) - int(val_seconds * 1e9)
    plans = plan_frames(index, stamp_tolerance_ns(tolerance_ms))
    records = {TRAIN: [], VAL: []}
    for split in records:
        for sub in ('rgb', 'depth'):
            (Path(out) / split / sub).mkdir(parents=True, exist_ok=True)
    for frame in read_frames(bag, index, plans, typestore):
        if frame.index % every or frame.rgb is None or frame.gt_depth is None \
                or frame.camera is None:
            continue
        split = VAL if frame.stamp_ns > split_ns else TRAIN
        name = f'{frame.index:06d}'
        directory = Path(out) / split
        h, w = frame.rgb.shape[:2]
        if frame.gt_depth.shape != (h, w):
            continue  # not aligned to the image: unusable as a per-pixel target
        millimetres = np.where(np.isfinite(frame.gt_depth) & (frame.gt_depth > 0),
                               np.round(frame.gt_depth * 1000.0), 0)
        cv2.imwrite(str(directory / 'rgb' / f'{name}.png'),
                    cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(directory / 'depth' / f'{name}.png'),
                    np.clip(millimetres, 0, 65535).astype(np.uint16))
        camera = frame.camera if (frame.camera.width, frame.camera.height) == (w, h) \
            else frame.camera.scaled(w / frame.camera.width, h / frame.camera.height)
        records[split].append({
            'id': frame.index, 'file_name': f'rgb/{name}.png', 'width': w, 'height': h,
            'depth_file': f'depth/{name}.png', 'stamp_ns': int(frame.stamp_ns),
            'camera': {'K': [float(v) for v in np.asarray(camera.K).reshape(-1)],
                       'D': [float(v) for v in camera.D]}})
    for split, entries in records.items():
        _write_split(Path(out) / split, entries)
    return {split: len(entries) for split, entries in records.items()}


def add_parser(commands):
    """Register `depthdet train from-bag`."""
    parser = commands.add_parser(
        'from-bag', help='turn an RGB-D bag into depth training data (train + held-out val)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', help='rosbag2 folder (MCAP or sqlite3)')
    parser.add_argument('--out', required=True, help='dataset folder: writes OUT/train, OUT/val')
    parser.add_argument('--val-seconds', type=float, default=10.0,
                        help='the last this many seconds become validation (default 10)')
    parser.add_argument('--every', type=int, default=1, metavar='N',
                        help='keep every N-th image (default 1)')
    parser.add_argument('--image-topic', default='', help='default: found by type')
    parser.add_argument('--depth-topic', default='', help='default: the Image topic named depth')
    parser.add_argument('--camera-info-topic', default='', help='default: found by type')
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run `depthdet train from-bag`."""
    from depthdet_ros.cli import CliError
    try:
        counts = convert(args.bag, args.out, args.val_seconds, args.every, args.image_topic,
                         args.depth_topic, args.camera_info_topic)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f'{args.out}: {counts[TRAIN]} training and {counts[VAL]} validation frames')
    if not counts[TRAIN] or not counts[VAL]:
        raise CliError('both splits need frames: record longer or change --val-seconds')
    print(f'fine-tune: depthdet train depth --data {args.out}/train --val-data {args.out}/val '
          '--init-from models/depth.onnx --out runs/finetune ...')
    return 0
