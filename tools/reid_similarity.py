"""How well colours tell objects apart, on bags with ground truth: for re-identification.

    python tools/reid_similarity.py BAG [BAG ...] [--min-gap 1] [--max-gap 10] [--every 5]

The tracker gives a deleted track's ID back to a new detection of its class whose
colour descriptor (core.appearance) is similar enough (track_reid_min_similarity).
This reads each bag's images and ground-truth boxes and scores, for every ground-truth
object seen twice `--min-gap` to `--max-gap` seconds apart (boxes sampled every
`--every` frames): "same", the similarity of its box then and now; "other", its box
then against each other object of its class now. A threshold should sit below most
"same" pairs and above most "other" ones. Prints percentiles of both and the share
of each at or above some thresholds. The ground-truth boxes are tighter than a
detector's, so "same" reads a little higher here than for detections.
"""
import argparse
import collections
import sys

import numpy as np

THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9)
# Boxes smaller than this (px, either side) are left out: a few pixels say little.
MIN_BOX_PX = 8


def descriptors(bag):
    """{(class, instance): {stamp s: descriptor}} of a bag's ground-truth boxes."""
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.core import appearance
    from depthdet_ros.eval import bag_input

    store = make_typestore()
    reader = bag_input.open_reader(bag)
    topic_types = {c.topic: c.msgtype for c in reader.connections}
    reader.close()
    index = bag_input.index_bag(bag, bag_input.select_topics(topic_types), store)
    plans = bag_input.plan_frames(index, bag_input.stamp_tolerance_ns(5.0))
    found = collections.defaultdict(dict)
    for frame in bag_input.read_frames(bag, index, plans, store, 64_000_000):
        if frame.rgb is None:
            continue
        for obj in frame.gt_objects or []:
            box = obj.box
            if box.width < MIN_BOX_PX or box.height < MIN_BOX_PX:
                continue
            made = appearance.descriptor(frame.rgb, (box.x1, box.y1, box.x2, box.y2))
            if made is not None:
                found[(obj.class_name, obj.instance_id)][frame.stamp_ns * 1e-9] = made
    return found


def pair_similarities(found, min_gap, max_gap, every):
    """Similarities of (same object, other object of its class) pairs min-gap..max-gap apart."""
    same, other = [], []
    sampled = {key: sorted(seen.items())[::every] for key, seen in found.items()}
    for key, views in sampled.items():
        others = [k for k in found if k != key and k[0] == key[0]]
        for then, before in views:
            for now, after in views:
                if not min_gap <= now - then <= max_gap:
                    continue
                same.append(float(before @ after))
                other.extend(float(before @ found[k][now]) for k in others if now in found[k])
    return np.array(same), np.array(other)


def report(name, same, other, out=sys.stdout):
    """Print the percentiles and the shares at or above THRESHOLDS."""
    def percentiles(values, qs):
        if not len(values):
            return 'none'
        return ' '.join(f'p{q} {v:.2f}' for q, v in zip(qs, np.percentile(values, qs)))
    print(f'{name}: same object, {len(same)} pairs: {percentiles(same, (5, 10, 25, 50))}',
          file=out)
    print(f'{name}: other object of its class, {len(other)} pairs: '
          f'{percentiles(other, (50, 90, 95, 99))}', file=out)
    for threshold in THRESHOLDS:
        share_same = np.mean(same >= threshold) if len(same) else float('nan')
        share_other = np.mean(other >= threshold) if len(other) else float('nan')
        print(f'{name}: at or above {threshold:.2f}: same {share_same:.0%}, '
              f'other {share_other:.0%}', file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bags', nargs='+')
    parser.add_argument('--min-gap', type=float, default=1.0, help='s (default 1)')
    parser.add_argument('--max-gap', type=float, default=10.0, help='s (default 10)')
    parser.add_argument('--every', type=int, default=5, help='sample every N frames')
    args = parser.parse_args(argv)
    if not 0 <= args.min_gap <= args.max_gap or args.every < 1:
        parser.error('need 0 <= --min-gap <= --max-gap and --every >= 1')
    pooled_same, pooled_other = [], []
    for bag in args.bags:
        same, other = pair_similarities(descriptors(bag), args.min_gap, args.max_gap,
                                        args.every)
        report(bag, same, other)
        pooled_same.append(same)
        pooled_other.append(other)
    if len(args.bags) > 1:
        report('all bags', np.concatenate(pooled_same), np.concatenate(pooled_other))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
