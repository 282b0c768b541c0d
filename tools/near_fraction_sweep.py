"""Per-object depth error of `near_median` for several near fractions, beside `robust`.

    .venv/bin/python tools/near_fraction_sweep.py data/v2/val models/depth.onnx [OTHER.onnx ...]
        [--fractions 0.2,0.3,0.4,0.5]

Runs `depthdet train evaluate`'s pipeline (the bundled detector) over a synthetic split
once per depth model and fraction, and prints the median / mean relative error over
objects of `near_median` at each fraction and of `robust`, on the network's depth
(detected boxes: `pipeline`; every labelled box: `gt_boxes`) and on the rendered depth
(`oracle_depth`). This is how object_depth.NEAR_FRACTION was chosen (models/depth.md).
"""
import argparse
import sys

SETTINGS = ('pipeline', 'gt_boxes', 'oracle_depth')


def sweep(dataset, depth_models, fractions, detector):
    """[(depth model, strategy label, [ObjectErrors of each of SETTINGS, all objects])]."""
    from depthdet_ros.core import object_depth
    from depthdet_ros.train.evaluate import evaluate_models

    default = object_depth.NEAR_FRACTION
    rows = []
    try:
        for depth in depth_models:
            for fraction in fractions:
                object_depth.NEAR_FRACTION = fraction
                report = evaluate_models(detector, depth, dataset)
                strategies = [('near_median', f'near_median {fraction:g}')]
                if fraction == fractions[0]:
                    strategies.append(('robust', 'robust'))
                for strategy, label in strategies:
                    cells = [report.objects[s]['all'][strategy] for s in SETTINGS]
                    rows.append((depth, label, cells))
    finally:
        object_depth.NEAR_FRACTION = default
    return rows


def fractions(text):
    """'0.2,0.3' -> [0.2, 0.3], each in (0, 1]."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not comma-separated numbers') from None
    if not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f'{text!r}: each share must be in (0, 1]')
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('split', help='a `depthdet synth dataset` split folder')
    parser.add_argument('depth_models', nargs='+', metavar='DEPTH_ONNX')
    parser.add_argument('--fractions', default='0.2,0.3,0.4,0.5', type=fractions,
                        help='comma-separated shares in (0, 1] (default 0.2,0.3,0.4,0.5)')
    parser.add_argument('--detector', default=None,
                        help='detector ONNX (default: the bundled one)')
    args = parser.parse_args(argv)
    from depthdet_ros.assets import default_model
    from depthdet_ros.train.data import SimDataset

    rows = sweep(SimDataset(args.split), args.depth_models, args.fractions,
                 args.detector or default_model('detector'))
    print('| depth model | strategy | ' + ' | '.join(SETTINGS) + ' |')
    print('|---|---|' + '---:|' * len(SETTINGS))
    for depth, label, cells in rows:
        text = ' | '.join(f'{c.median_rel:.3f} / {c.mean_rel:.3f}' for c in cells)
        print(f'| {depth} | {label} | {text} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
