"""`depthdet train SUBCOMMAND`: train and evaluate the networks.

Subcommands: depth, detector, joint, evaluate, cross-camera, from-bag, calibrate-focal.

Training data are split folders written by `depthdet synth dataset` (DIR/SPLIT). Every
run writes into --out: last.pt (resume with the same command plus --resume), final.pt
(weights to ship, for `depthdet export --weights`), metrics.csv, metrics.png and the
exported ONNX file. torch is imported only when a command runs.
"""
import argparse
import json
import os

from depthdet_ros.arg_types import fraction, non_negative_float, non_negative_int, \
    positive_float, positive_int
from depthdet_ros.train.options import DepthTrainOptions, DetectorTrainOptions, \
    JointTrainOptions, TrainOptions


def _json_object(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f'not JSON: {exc}') from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, e.g. {"decoder_width": 0.5}')
    return value


def _show_defaults(parser):
    """Add each option's default to its --help line: the defaults are the training recipe."""
    for action in parser._actions:
        default = action.default
        if not action.option_strings or action.required or default is None \
                or isinstance(default, bool) or default in ([], {}, '', argparse.SUPPRESS) \
                or '(default' in (action.help or ''):
            continue
        # As typed on the command line: `--input-size 256 320`, not [256, 320].
        shown = ' '.join(map(str, default)) if isinstance(default, (list, tuple)) \
            else '%(default)s'
        action.help = f'{action.help} (default: {shown})' if action.help \
            else f'default: {shown}'


def _add_common(parser, defaults: TrainOptions):
    data = parser.add_argument_group('data')
    data.add_argument('--data', required=True, metavar='SPLIT_DIR', nargs='+',
                      help='training split(s) written by `depthdet synth dataset` (DIR/SPLIT); '
                           'several are used one after another')
    data.add_argument('--val-data', required=True, metavar='SPLIT_DIR',
                      help='validation split (never the held-out test split)')
    data.add_argument('--max-train-frames', type=non_negative_int, default=0, metavar='N',
                      help='use only the first N training frames (0: all)')
    data.add_argument('--max-val-frames', type=non_negative_int, default=0, metavar='N',
                      help='use only the first N validation frames (0: all)')
    run = parser.add_argument_group('run')
    run.add_argument('--out', required=True, help='output folder (checkpoints, metrics, ONNX)')
    run.add_argument('--epochs', type=positive_int, default=defaults.epochs)
    run.add_argument('--batch-size', type=positive_int, default=defaults.batch_size)
    run.add_argument('--optimizer', choices=('adamw', 'sgd'), default=defaults.optimizer)
    run.add_argument('--lr', type=positive_float, default=defaults.lr, help='peak learning rate')
    run.add_argument('--momentum', type=fraction, default=defaults.momentum, help='SGD momentum')
    run.add_argument('--weight-decay', type=non_negative_float, default=defaults.weight_decay)
    run.add_argument('--warmup-steps', type=non_negative_int, default=defaults.warmup_steps,
                     help='linear LR warm-up (batches)')
    run.add_argument('--schedule', choices=('cosine', 'step'), default=defaults.schedule,
                     help='cosine decay to --final-lr-fraction, or halving at --step-epochs')
    run.add_argument('--step-epochs', type=positive_int, nargs='*',
                     default=list(defaults.step_epochs),
                     metavar='E', help='epochs at which the step schedule halves the LR')
    run.add_argument('--final-lr-fraction', type=fraction, default=defaults.final_lr_fraction)
    run.add_argument('--seed', type=non_negative_int, default=defaults.seed)
    run.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default=defaults.device)
    run.add_argument('--threads', type=non_negative_int, default=defaults.threads,
                     help='torch CPU threads (0: torch default)')
    run.add_argument('--workers', type=non_negative_int, default=defaults.workers,
                     help='data-loading worker processes (0: in the training process)')
    run.add_argument('--checkpoint-every', type=positive_int, default=defaults.checkpoint_every,
                     metavar='STEPS', help='also save last.pt every STEPS batches')
    run.add_argument('--init-from', default=defaults.init_from, metavar='ONNX',
                     help='start from the weights of an ONNX file exported from the same '
                          'architecture (e.g. a bundled model) and fine-tune with BatchNorm '
                          'statistics frozen')
    run.add_argument('--resume', action='store_true',
                     help='continue the run in --out from its last.pt')
    run.add_argument('--no-channels-last', dest='channels_last', action='store_false',
                     help='compute in NCHW instead of the faster channels-last layout')
    run.add_argument('--no-export', dest='export', action='store_false',
                     help='skip the ONNX export at the end')
    _show_defaults(parser)


def add_parser(subparsers):
    """Register `depthdet train` with its sub-subcommands."""
    train = subparsers.add_parser(
        'train', help='train the depth net or the detector; evaluate bundled-style models',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = train.add_subparsers(dest='train_command', metavar='SUBCOMMAND')

    depth_defaults = DepthTrainOptions()
    depth = commands.add_parser(
        'depth', help='train a depth net (hybrid CNN family or the seed-000 U-Net)',
        description='Train a depth net of the registry on RGB-D frames (seed 003 recipe by '
                    'default: BerHu, scale/rotate/crop/colour/flip augmentation, targets at '
                    'half resolution).')
    model = depth.add_argument_group('model and loss')
    model.add_argument('--arch', default=depth_defaults.arch,
                       help='hybrid_mobilenetv2 | hybrid_resnet18|34|50 | unet_seed000')
    model.add_argument('--arch-kwargs', type=_json_object, default={},
                       help='builder options, e.g. \'{"decoder_width": 0.5}\'')
    model.add_argument('--loss', choices=('berhu', 'l1_grad_ssim', 'silog_grad'),
                       default=depth_defaults.loss)
    model.add_argument('--input-size', type=positive_int, nargs=2, metavar=('H', 'W'),
                       default=list(depth_defaults.input_size),
                       help='training input, multiples of the net\'s input multiple (32 for '
                            'hybrid_*, 16 for unet_seed000) (default: 256 320)')
    model.add_argument('--no-augment', dest='augment', action='store_false',
                       help='train on the runtime view of each frame, unaugmented')
    model.add_argument('--max-depth', type=positive_float, default=depth_defaults.max_depth,
                       help='ignore target pixels farther than this (m)')
    model.add_argument('--canonical-focal', type=non_negative_float,
                       default=depth_defaults.canonical_focal,
                       metavar='PX', help='learn depth for a camera with this focal length '
                       'at the network input; the runtime rescales for the real camera '
                       '(needs frames with intrinsics; 0: plain metres, one camera only)')
    model.add_argument('--pad-prob', type=fraction, default=depth_defaults.pad_prob,
                       help='share of training samples in the runtime\'s padded full-image '
                       'view instead of the centre crop')
    model.add_argument('--ema-decay', type=fraction, default=depth_defaults.ema_decay,
                       help='exponential moving average of the weights (0: off)')
    model.add_argument('--ema-tau', type=positive_float, default=depth_defaults.ema_tau,
                       help='EMA warm-up in updates: decay * (1 - exp(-n / tau))')
    _add_common(depth, depth_defaults)
    depth.set_defaults(func=run_depth)

    det_defaults = DetectorTrainOptions()
    detector = commands.add_parser(
        'detector', help='train a YOLOv5 detector',
        description='Train YOLOv5 (n/s/m or custom multiples) with YOLOv5\'s target '
                    'assignment, CIoU/objectness/class losses, mosaic and EMA.')
    model = detector.add_argument_group('model and loss')
    model.add_argument('--arch', default=det_defaults.arch, help='yolov5n | yolov5s | yolov5m')
    model.add_argument('--depth-multiple', type=positive_float, help='override the variant\'s')
    model.add_argument('--width-multiple', type=positive_float, help='override the variant\'s')
    model.add_argument('--image-size', type=positive_int, default=det_defaults.image_size,
                       help='square training/validation input (multiple of 32)')
    model.add_argument('--mosaic-prob', type=fraction, default=det_defaults.mosaic_prob)
    model.add_argument('--close-mosaic', type=non_negative_int, default=det_defaults.close_mosaic,
                       metavar='EPOCHS', help='train the last EPOCHS without mosaic')
    model.add_argument('--ema-decay', type=fraction, default=det_defaults.ema_decay)
    model.add_argument('--ema-tau', type=positive_float, default=det_defaults.ema_tau,
                       help='EMA warm-up in updates: decay * (1 - exp(-n / tau))')
    model.add_argument('--box-gain', type=non_negative_float, default=det_defaults.box_gain)
    model.add_argument('--obj-gain', type=non_negative_float, default=det_defaults.obj_gain)
    model.add_argument('--cls-gain', type=non_negative_float, default=det_defaults.cls_gain)
    model.add_argument('--anchor-t', type=positive_float, default=det_defaults.anchor_t)
    _add_common(detector, det_defaults)
    detector.set_defaults(func=run_detector)
    _add_joint(commands)

    from depthdet_ros.eval import cross_camera
    from depthdet_ros.train import calibrate_focal, evaluate, from_bag
    evaluate.add_parser(commands)
    cross_camera.add_parser(commands)
    from_bag.add_parser(commands)
    calibrate_focal.add_parser(commands)
    train.set_defaults(func=lambda args: train.print_help() or 2)
    return train


def _add_joint(commands):
    defaults = JointTrainOptions()
    joint = commands.add_parser(
        'joint', help='train the joint net (boxes, instance masks and depth, one backbone)',
        description='Train a joint net (nets.joint) on splits of `depthdet synth dataset` '
                    '(they hold instance masks): YOLOv5 loss + YOLOv5-seg mask loss + depth '
                    'loss in canonical-camera targets, one letterbox-view affine per frame '
                    '(train.joint). The loss weights are options.')
    model = joint.add_argument_group('model and loss')
    model.add_argument('--arch', default=defaults.arch,
                       help='joint_yolov5n | joint_yolov5s | joint_yolov5m | '
                            'joint_mobilenetv2')
    model.add_argument('--depth-multiple', type=positive_float, help='override the variant\'s')
    model.add_argument('--width-multiple', type=positive_float, help='override the variant\'s')
    model.add_argument('--num-masks', type=positive_int, default=defaults.num_masks,
                       help='prototype masks k')
    model.add_argument('--decoder-width', type=positive_float, default=defaults.decoder_width,
                       help='depth decoder channel multiplier')
    model.add_argument('--proto-width', type=positive_float, default=defaults.proto_width,
                       help='prototype module channel multiplier')
    model.add_argument('--depth-stride', type=int, choices=(2, 4), default=defaults.depth_stride,
                       help='depth output at 1/2 or 1/4 of the input (4: faster, coarser)')
    model.add_argument('--image-size', type=positive_int, default=defaults.image_size,
                       help='square training/validation input (multiple of 32)')
    model.add_argument('--scale-range', type=positive_float, nargs=2, metavar=('LO', 'HI'),
                       default=list(defaults.scale_range), help='random zoom range')
    model.add_argument('--translate', type=fraction, default=defaults.translate,
                       help='random shift, fraction of the input side')
    model.add_argument('--ema-decay', type=fraction, default=defaults.ema_decay,
                       help='exponential moving average of the weights (0: off)')
    model.add_argument('--ema-tau', type=positive_float, default=defaults.ema_tau)
    for name in ('box', 'obj', 'cls', 'mask', 'depth'):
        model.add_argument(f'--{name}-gain', type=non_negative_float,
                           default=getattr(defaults, f'{name}_gain'),
                           help=f'weight of the {name} loss')
    model.add_argument('--anchor-t', type=positive_float, default=defaults.anchor_t)
    model.add_argument('--depth-loss', choices=('berhu', 'l1_grad_ssim', 'silog_grad'),
                       default=defaults.depth_loss)
    model.add_argument('--max-depth', type=positive_float, default=defaults.max_depth,
                       help='ignore target pixels farther than this (m)')
    model.add_argument('--canonical-focal', type=non_negative_float,
                       default=defaults.canonical_focal,
                       metavar='PX', help='learn depth for a camera with this focal length '
                       'at the network input (0: plain metres)')
    _add_common(joint, defaults)
    joint.set_defaults(func=run_joint)


def _options(cls, args):
    values = {k: v for k, v in vars(args).items() if k in cls.__dataclass_fields__}
    for name in ('input_size', 'step_epochs', 'scale_range'):
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)


def _check_before_loading(args):
    """Refuse options that cannot work before the data loads (CliError, one line)."""
    from depthdet_ros.arg_types import output_folder
    from depthdet_ros.cli import CliError
    from depthdet_ros.train.common import check_checkpoint_folder
    output_folder(args.out)
    if args.init_from and not os.path.isfile(args.init_from):
        raise CliError(f'--init-from {args.init_from}: no such file; give an ONNX file '
                       'exported from the same architecture')
    if args.schedule == 'step' and not args.step_epochs:
        raise CliError('--schedule step halves the learning rate at --step-epochs: give '
                       'them (e.g. --step-epochs 10 20), or use --schedule cosine')
    try:
        check_checkpoint_folder(args.out, args.resume)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _datasets(args):
    from depthdet_ros.train.data import ConcatFrames, SimDataset, Subset
    train = ConcatFrames([SimDataset(path) for path in args.data])
    return (Subset(train, args.max_train_frames),
            Subset(SimDataset(args.val_data), args.max_val_frames))


def run_depth(args) -> int:
    """Run `depthdet train depth`."""
    from depthdet_ros.cli import CliError
    from depthdet_ros.train.depth import train_depth
    _check_before_loading(args)
    try:
        train, val = _datasets(args)
        train_depth(_options(DepthTrainOptions, args), train, val)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    return 0


def run_detector(args) -> int:
    """Run `depthdet train detector`."""
    from depthdet_ros.cli import CliError
    from depthdet_ros.train.data import FittedBoxFrames
    from depthdet_ros.train.detector import train_detector
    _check_before_loading(args)
    try:
        train, val = _datasets(args)
        train = FittedBoxFrames(train, args.image_size)
        train_detector(_options(DetectorTrainOptions, args), train, val)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    return 0


def run_joint(args) -> int:
    """Run `depthdet train joint`."""
    from depthdet_ros.cli import CliError
    from depthdet_ros.train.joint import train_joint
    _check_before_loading(args)
    try:
        train, val = _datasets(args)
        train_joint(_options(JointTrainOptions, args), train, val)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    return 0
