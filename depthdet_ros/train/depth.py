"""`depthdet train depth`: any depth net of the registry on RGB-D frames.

Seed 003's recipe by default (BerHu, its augmentation, targets at half resolution, invalid
pixels masked); the optimiser, schedule and loss are options. Targets are in the canonical
camera (--canonical-focal, train.augment) unless it is 0, so the net learns one camera
and the runtime rescales for any other. Validation each epoch pools REL, RMSE, log10 and
delta1-3 in metres over every valid pixel of the validation frames at the network's output
resolution (the frames prepared exactly as the runtime prepares them: 'fit_pad').
"""
import json
import os
from typing import Any, Dict

import numpy as np

from depthdet_ros.core import metadata
from depthdet_ros.eval.metrics import DepthAccumulator
from depthdet_ros.train import common
from depthdet_ros.train.augment import depth_sample, DepthAugmentConfig
from depthdet_ros.train.data import DepthFrames
from depthdet_ros.train.options import DepthTrainOptions

DEPTH_ONNX = 'depth.onnx'


def normalise(images):
    """uint8 NHWC RGB batch -> float NCHW with the ImageNet mean/std of HYBRID_PREPROCESS."""
    import torch
    mean = torch.tensor(metadata.HYBRID_PREPROCESS['mean']).view(1, 3, 1, 1)
    std = torch.tensor(metadata.HYBRID_PREPROCESS['std']).view(1, 3, 1, 1)
    x = images.permute(0, 3, 1, 2).float() * metadata.HYBRID_PREPROCESS['scale']
    return (x - mean) / std


def valid_target(target, max_depth: float):
    """Pixels with a usable depth: positive and not beyond `max_depth`."""
    return (target > 0) & (target <= max_depth)


class DepthBatches:
    """Deterministic training batches (see common.sample_rng) from a DepthFrames source."""

    def __init__(self, frames: DepthFrames, options: DepthTrainOptions):
        self.frames = frames
        self.options = options
        self.augment = DepthAugmentConfig(pad_prob=options.pad_prob)

    def __call__(self, epoch: int, positions: np.ndarray, order: np.ndarray):
        """Build the batch of these positions of the epoch: (images, targets) tensors."""
        import torch
        rgbs, depths = [], []
        for position in positions:
            rgb, depth = self.frames.load(int(order[position]))
            rng = common.sample_rng(self.options.seed, epoch, int(position)) \
                if self.options.augment else None
            sample = depth_sample(rgb, depth, self.options.input_size, rng, self.augment,
                                  focal=frame_focal(self.frames, int(order[position])),
                                  canonical_focal=self.options.canonical_focal)
            rgbs.append(sample.rgb)
            depths.append(sample.depth)
        images = torch.from_numpy(np.stack(rgbs))
        targets = torch.from_numpy(np.stack(depths)).unsqueeze(1)
        return images, targets


def frame_focal(frames: DepthFrames, index: int):
    """(fx, fy) of frame `index` in its pixels, or None when the source has no intrinsics."""
    K = frames.camera_matrix(index) if hasattr(frames, 'camera_matrix') else None
    return None if K is None else (float(K[0, 0]), float(K[1, 1]))


def init_head_bias(model, frames: DepthFrames, max_depth: float, count: int = 32) -> float:
    """Start the output near the data: the depth head's bias = median depth of `count` frames.

    The decoder starts near zero (authors' N(0, 1e-3) init), so the ReLU output would
    otherwise begin at ~0 m and spend its first thousand steps climbing to room scale.
    Returns the bias set.
    """
    import torch
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 1]
    values = []
    for index in range(min(count, len(frames))):
        depth = frames.load(index)[1]
        values.append(depth[np.isfinite(depth) & (depth > 0) & (depth <= max_depth)])
    bias = float(np.median(np.concatenate(values))) if values else 1.0
    with torch.no_grad():
        heads[-1].bias.fill_(bias)
    return bias


def evaluate_depth_model(model, frames: DepthFrames, input_size, max_depth: float,
                         device=None, batch_size: int = 8,
                         canonical_focal: float = 0.0) -> Dict[str, float]:
    """Pooled depth metrics (metres) of a torch model on frames prepared like the runtime."""
    import torch
    device = device or next(model.parameters()).device
    acc = DepthAccumulator()
    for start in range(0, len(frames), batch_size):
        samples = [depth_sample(*frames.load(i), input_size, resize='fit_pad',
                                focal=frame_focal(frames, i), canonical_focal=canonical_focal)
                   for i in range(start, min(start + batch_size, len(frames)))]
        images = normalise(torch.from_numpy(np.stack([s.rgb for s in samples]))).to(device)
        pred = model(images)[:, 0].float().cpu().numpy()
        for p, sample in zip(pred, samples):
            target = sample.depth / sample.canonical_factor
            acc.add(p / sample.canonical_factor, target, valid_target(target, max_depth))
    result = acc.result()
    return {'val_rel': result.rel, 'val_rmse': result.rmse, 'val_log10': result.log10,
            'val_delta1': result.delta1, 'val_delta2': result.delta2,
            'val_delta3': result.delta3}


def train_depth(options: DepthTrainOptions, train: DepthFrames, val: DepthFrames,
                log=print) -> Dict[str, Any]:
    """Train (or resume) a depth net; returns the last epoch's metrics row."""
    import torch

    from depthdet_ros.nets.registry import build_model, checkpoint_config, task_of
    from depthdet_ros.train.losses import DEPTH_LOSSES

    if task_of(options.arch) != metadata.TASK_DEPTH:
        raise ValueError(f'{options.arch} is not a depth net')
    if options.loss not in DEPTH_LOSSES:
        raise ValueError(f'unknown loss {options.loss!r}; choose from {", ".join(DEPTH_LOSSES)}')
    options_plain = common.options_dict(options)
    device = common.select_device(options.device)
    common.seed_everything(options.seed, options.threads)
    layout = common.memory_format(options)
    model = build_model(options.arch, **options.arch_kwargs)
    multiple = int(model.input_multiple)  # how often the encoder halves the input
    if any(side % multiple for side in options.input_size):
        raise ValueError('--input-size {} {}: both sides must be multiples of {} for {}'.format(
            *options.input_size, multiple, options.arch))
    bias = None if common.init_weights(model, options, options.input_size, log) else \
        init_head_bias(model, train, options.max_depth)
    model.to(device, memory_format=layout)
    config = checkpoint_config(options.arch, options.arch_kwargs,
                               input_size=options.input_size)
    if options.canonical_focal:
        config['canonical_focal'] = float(options.canonical_focal)
    optimizer = common.make_optimizer(model, options)
    ema = common.ModelEma(model, options.ema_decay, options.ema_tau) \
        if options.ema_decay > 0 else None
    # Canonical targets reach beyond the metric range for wide lenses: valid up to the
    # largest canonical factor the field-of-view range produces.
    target_limit = options.max_depth * (options.canonical_target_margin
                                        if options.canonical_focal else 1.0)
    loss_fn = DEPTH_LOSSES[options.loss]

    def train_step(batch):
        images, targets = batch
        images = normalise(images).to(device, memory_format=layout)
        targets = targets.to(device)
        pred = model(images)
        loss = loss_fn(pred, targets, valid_target(targets, target_limit))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {'loss': float(loss.detach())}

    def validate(shipped):
        return evaluate_depth_model(shipped, val, options.input_size, options.max_depth,
                                    device, canonical_focal=options.canonical_focal)

    def export(shipped, out_dir):
        from depthdet_ros.nets.export import export_depth
        return export_depth(shipped, os.path.join(out_dir, DEPTH_ONNX), options.arch,
                            tuple(options.input_size), arch_kwargs=options.arch_kwargs,
                            canonical_focal=options.canonical_focal or None).summary()

    task = common.TrainTask(
        model=model, config=config, optimizer=optimizer, train_count=len(train),
        make_batch=DepthBatches(train, options), train_step=train_step, validate=validate,
        export=export, ema=ema,
        plot_keys=(('train_loss',), ('val_rel', 'val_log10'), ('val_rmse',),
                   ('val_delta1', 'val_delta2', 'val_delta3')))
    log(f'training {options.arch} {json.dumps(options.arch_kwargs)} on {len(train)} frames '
        f'({len(val)} validation) on {device}, {torch.get_num_threads()} threads' +
        (f'; head bias {bias:.2f} m' if bias is not None else ''))
    return common.fit(task, options, options_plain, log)
