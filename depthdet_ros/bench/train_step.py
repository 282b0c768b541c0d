"""Training cost per batch of registered networks, side by side on this machine.

`python -m depthdet_ros.bench.train_step [--archs A B ...] [--batch 8] [--size 320]`
builds each network (random weights, training mode), then times one forward and
backward pass per network in turn, so that the machine's load falls on all of them
alike, and prints the median seconds per batch and each network's ratio to the first.
Inference speed (`depthdet bench`) does not predict this: on a CPU, PyTorch's backward
pass through depthwise convolutions costs far more than onnxruntime's forward pass.
"""
import argparse
import json
import os
import time

import numpy as np

from depthdet_ros.arg_types import bench_count, multiple_of_32, positive_int


def _loss(outputs):
    """Return a scalar touching every output (tensors or lists of tensors), for backward."""
    if isinstance(outputs, (list, tuple)):
        return sum(_loss(o) for o in outputs)
    return outputs.float().mean()


def measure(archs, batch=8, size=(320, 320), iterations=5, num_classes=10, arch_kwargs=None,
            threads=1):
    """Return {arch: [seconds per forward + backward pass]}, measured interleaved."""
    import torch

    from depthdet_ros.core import metadata
    from depthdet_ros.nets.registry import build_model, task_of

    torch.set_num_threads(threads)
    models = {}
    for arch in archs:
        task = task_of(arch)
        kwargs = dict((arch_kwargs or {}).get(arch, {}))
        classes = None if task == metadata.TASK_DEPTH else num_classes
        models[arch] = build_model(arch, classes, **kwargs).train()
    images = torch.rand(batch, 3, *size)
    times = {arch: [] for arch in archs}
    for index in range(iterations + 1):  # the first pass of each warms up
        for arch, model in models.items():
            start = time.perf_counter()
            _loss(model(images)).backward()
            model.zero_grad(set_to_none=True)
            if index:
                times[arch].append(time.perf_counter() - start)
    return times


def main(argv=None):
    """Print the side-by-side figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--archs', nargs='+', default=['joint_yolov5n', 'joint_mobilenetv2'],
                        help='registry names (default: the two joint backbones)')
    parser.add_argument('--arch-kwargs', default='',
                        help='JSON {arch: {builder options}} (default: the joint speed '
                             'options for joint networks)')
    parser.add_argument('--batch', type=positive_int, default=8)
    parser.add_argument('--size', type=multiple_of_32, nargs=2, default=[320, 320],
                        metavar=('H', 'W'))
    parser.add_argument('--iterations', type=bench_count, default=5)
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='torch threads (default 1)')
    args = parser.parse_args(argv)
    from depthdet_ros.nets.joint import SPEED_OPTIONS
    try:
        kwargs = json.loads(args.arch_kwargs) if args.arch_kwargs else {
            arch: SPEED_OPTIONS for arch in args.archs if arch.startswith('joint_')}
        if not (isinstance(kwargs, dict) and all(isinstance(v, dict) for v in kwargs.values())):
            raise ValueError(f'--arch-kwargs {args.arch_kwargs}: give a JSON object of '
                             'objects, e.g. {"joint_yolov5n": {"width": 0.25}}')
        times = measure(args.archs, args.batch, tuple(args.size), args.iterations,
                        arch_kwargs=kwargs, threads=args.threads)
    except (ValueError, TypeError) as exc:  # an unknown arch, bad JSON or builder option
        parser.exit(2, f'{parser.prog}: error: {exc}\n')
    except RuntimeError as exc:  # torch: out of memory for this batch and size
        parser.exit(2, f'{parser.prog}: error: {str(exc).splitlines()[0]}\n')
    except KeyboardInterrupt:
        parser.exit(130, f'{parser.prog}: stopped by Ctrl-C\n')
    first = float(np.median(times[args.archs[0]]))
    print(f'forward + backward, batch {args.batch} at {args.size[0]}x{args.size[1]}, '
          f'{args.threads} torch thread(s), {args.iterations} passes each, interleaved; load '
          f'average {os.getloadavg()[0]:.2f}')
    for arch in args.archs:
        median = float(np.median(times[arch]))
        print(f'{arch:<24} {median:7.3f} s per batch   {median / first:5.2f}x {args.archs[0]}'
              f'   options {json.dumps(kwargs.get(arch, {}))}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
