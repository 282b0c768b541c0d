"""What both trainers share: options, determinism, checkpoints, schedules, logs, plots.

Reproducibility and resuming rest on one rule: nothing random is drawn from a stateful
stream that a restart would lose. Epoch e visits the samples in the order
`epoch_order(seed, e, n)`; the sample at position p of that epoch is augmented with
`sample_rng(seed, e, p)`. Only torch's own stream (weight init, dropout) is stateful, and
its state is saved in every checkpoint. A run stopped anywhere and resumed from its last
checkpoint therefore replays the same batches with the same augmentation and ends with
the same weights as an uninterrupted run (on the same device and thread count).

Checkpoint (`last.pt`, written atomically every `checkpoint_every` steps and at each
epoch end), loadable with torch.load(weights_only=True) and by `depthdet export
--weights` (see nets.registry):
    model, config (nets.registry.checkpoint_config), optimizer, scheduler, ema (or None),
    epoch, step (batches done in that epoch), global_step, torch_rng, cuda_rng,
    history (per-epoch metric rows), train_config (the run's options).
`final.pt` holds the weights to ship (EMA when used) with config only.
"""
import copy
import csv
from dataclasses import asdict, dataclass
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from depthdet_ros.nets.onnx_weights import freeze_batchnorm, load_onnx_weights
from depthdet_ros.train.options import TrainOptions

LAST_CHECKPOINT = 'last.pt'
FINAL_CHECKPOINT = 'final.pt'
METRICS_CSV = 'metrics.csv'
METRICS_PLOT = 'metrics.png'
# Options that may differ between a run and its resumption (they do not change results
# on a given device, or say where to write).
RESUME_FREE_OPTIONS = ('device', 'threads', 'workers', 'resume', 'out', 'export')


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """Return the order of the samples in epoch `epoch` (a pure function of its arguments)."""
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(count)


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """Augmentation randomness of the sample at `position` in epoch `epoch`."""
    return np.random.default_rng([seed, epoch, position])


def select_device(name: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda but torch sees no CUDA device')
    if name not in ('cpu', 'cuda'):
        raise ValueError(f'--device must be auto, cpu or cuda, not {name!r}')
    return torch.device(name)


def seed_everything(seed: int, threads: int) -> None:
    """Seed torch's stream, fix the thread count and ask for deterministic kernels."""
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def memory_format(options: TrainOptions):
    """Return the torch memory format the run computes in."""
    return torch.channels_last if options.channels_last else torch.contiguous_format


def make_optimizer(model: torch.nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
    """Make AdamW or SGD with momentum (seed 003); no weight decay on BN weights and biases."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{'params': decay, 'weight_decay': options.weight_decay},
              {'params': no_decay, 'weight_decay': 0.0}]
    if options.optimizer == 'adamw':
        return torch.optim.AdamW(groups, lr=options.lr)
    if options.optimizer == 'sgd':
        return torch.optim.SGD(groups, lr=options.lr, momentum=options.momentum)
    raise ValueError(f'unknown optimizer {options.optimizer!r}; choose adamw or sgd')


def lr_factor(step: int, steps_per_epoch: int, options: TrainOptions) -> float:
    """Return the LR multiplier at a global step: linear warmup, then cosine or step decay."""
    warmup = min(options.warmup_steps, max(1, steps_per_epoch * options.epochs // 2))
    if step < warmup:
        return (step + 1) / warmup
    if options.schedule == 'step':
        epoch = step // max(1, steps_per_epoch)
        return 0.5 ** sum(epoch >= boundary for boundary in options.step_epochs)
    if options.schedule != 'cosine':
        raise ValueError(f'unknown schedule {options.schedule!r}; choose cosine or step')
    total = max(1, steps_per_epoch * options.epochs - warmup)
    progress = min(1.0, (step - warmup) / total)
    low = options.final_lr_fraction
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(optimizer, steps_per_epoch: int, options: TrainOptions):
    """Make a LambdaLR that steps once per batch along `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, options))


class ModelEma:
    """Exponential moving average of weights with YOLOv5's warm-up ramp of the decay.

    decay(n) = decay * (1 - exp(-n / tau)) after n updates; buffers (BN statistics) are
    averaged too.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.9999, tau: float = 2000.0):
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Blend the current weights in."""
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        source = model.state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach(), alpha=1 - d)
            else:
                value.copy_(source[name])

    def state_dict(self) -> Dict[str, Any]:
        """Return the weights and update count."""
        return {'model': self.model.state_dict(), 'updates': self.updates}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.model.load_state_dict(state['model'])
        self.updates = int(state['updates'])


@dataclass
class Progress:
    """Where a run stands: epoch being trained, batches of it done, batches overall."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0


def save_atomic(obj: Any, path: str) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = f'{path}.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def plain(value):
    """Convert options to plain Python types (tuples become lists) for checkpoints and JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def options_dict(options) -> Dict[str, Any]:
    """Return a dataclass of options as a plain dict."""
    return plain(asdict(options))


def check_resume_compatible(saved: Dict[str, Any], current: Dict[str, Any]) -> None:
    """Raise ValueError when a resumed run's options would change its results."""
    differing = [name for name in sorted(set(saved) | set(current))
                 if name not in RESUME_FREE_OPTIONS and saved.get(name) != current.get(name)]
    if differing:
        details = ', '.join(f'{n}: {saved.get(n)!r} -> {current.get(n)!r}' for n in differing)
        raise ValueError(f'cannot resume with different options ({details}); rerun with the '
                         'original command line plus --resume, or use a new --out')


def build_checkpoint(model, config, optimizer, scheduler, ema: Optional[ModelEma],
                     progress: Progress, history: List[Dict[str, float]],
                     options_plain: Dict[str, Any]) -> Dict[str, Any]:
    """Collect everything needed to continue a run (see the module docstring)."""
    return {
        'model': model.state_dict(),
        'config': config,
        'optimizer': optimizer.state_dict(),
        'scheduler': scheduler.state_dict(),
        'ema': ema.state_dict() if ema is not None else None,
        'epoch': progress.epoch,
        'step': progress.step,
        'global_step': progress.global_step,
        'torch_rng': torch.get_rng_state(),
        'cuda_rng': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        'history': history,
        'train_config': options_plain,
    }


def restore_checkpoint(checkpoint: Dict[str, Any], model, optimizer, scheduler,
                       ema: Optional[ModelEma]) -> Progress:
    """Load a `build_checkpoint` dict into the live objects; returns its progress."""
    model.load_state_dict(checkpoint['model'])
    optimizer.load_state_dict(checkpoint['optimizer'])
    scheduler.load_state_dict(checkpoint['scheduler'])
    if ema is not None and checkpoint.get('ema') is not None:
        ema.load_state_dict(checkpoint['ema'])
    torch.set_rng_state(checkpoint['torch_rng'])
    if checkpoint.get('cuda_rng') and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint['cuda_rng'])
    return Progress(int(checkpoint['epoch']), int(checkpoint['step']),
                    int(checkpoint['global_step']))


def load_checkpoint(path: str) -> Dict[str, Any]:
    """torch.load a checkpoint on the CPU with weights_only=True."""
    return torch.load(path, map_location='cpu', weights_only=True)


def write_history(out_dir: str, history: List[Dict[str, float]],
                  plot_keys: Sequence[Sequence[str]]) -> None:
    """Rewrite metrics.csv and metrics.png from the per-epoch rows.

    `plot_keys` groups column names into subplots (one panel per group).
    """
    if not history:
        return
    columns = list(history[0])
    for row in history[1:]:
        columns += [key for key in row if key not in columns]
    tmp = os.path.join(out_dir, METRICS_CSV + '.tmp')
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, os.path.join(out_dir, METRICS_CSV))
    _plot(os.path.join(out_dir, METRICS_PLOT), history, plot_keys)


def _plot(path: str, history: List[Dict[str, float]], plot_keys) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    epochs = [row['epoch'] for row in history]
    fig, axes = plt.subplots(1, len(plot_keys), figsize=(4.5 * len(plot_keys), 3.6),
                             squeeze=False)
    for axis, keys in zip(axes[0], plot_keys):
        for key in keys:
            values = [row.get(key, float('nan')) for row in history]
            axis.plot(epochs, values, marker='o', markersize=3, label=key)
        axis.set_xlabel('epoch')
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def progress_bar(total: int, initial: int, description: str):
    """Make a tqdm bar on stderr; it redraws rarely when stderr is a log file."""
    from tqdm import tqdm
    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=description, dynamic_ncols=interactive,
                mininterval=0.5 if interactive else 30.0, file=sys.stderr,
                ascii=not interactive)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Return the number of full batches per epoch (at least one is required)."""
    steps = count // batch_size
    if steps < 1:
        raise ValueError(f'{count} training samples do not fill one batch of {batch_size}')
    return steps


def check_checkpoint_folder(out_dir: str, resume: bool) -> str:
    """Return the path of out_dir's last.pt; ValueError unless `resume` matches it.

    A fresh run must not overwrite a checkpoint; a resumed one needs one.
    """
    path = os.path.join(out_dir, LAST_CHECKPOINT)
    exists = os.path.isfile(path)
    if exists and not resume:
        raise ValueError(f'{path} exists: pass --resume to continue that run, or choose '
                         'another --out')
    if resume and not exists:
        raise ValueError(f'--resume but there is no {path}')
    return path


def load_or_init(options_plain: Dict[str, Any], out_dir: str, resume: bool
                 ) -> Optional[Dict[str, Any]]:
    """Return the checkpoint to resume from, or None for a fresh run.

    The checkpoint's options must agree with this run's (check_resume_compatible).

    A fresh run refuses to overwrite an output folder holding a checkpoint.
    """
    path = check_checkpoint_folder(out_dir, resume)
    if not resume:
        os.makedirs(out_dir, exist_ok=True)
        return None
    checkpoint = load_checkpoint(path)
    check_resume_compatible(checkpoint['train_config'], options_plain)
    return checkpoint


@dataclass
class TrainTask:
    """What a trainer plugs into `fit`.

    `make_batch(epoch, positions, order)` builds a collated batch for the given positions of
    the epoch (deterministic); `train_step(batch)` runs forward, backward and the optimizer
    step on the live model and returns loss parts (floats); `validate(model)` returns
    metrics of the weights to ship; `export(model, out_dir)` writes the ONNX file.
    """

    model: torch.nn.Module
    config: Dict[str, Any]
    optimizer: torch.optim.Optimizer
    train_count: int
    make_batch: Callable[[int, np.ndarray, np.ndarray], Any]
    train_step: Callable[[Any], Dict[str, float]]
    validate: Callable[[torch.nn.Module], Dict[str, float]]
    export: Callable[[torch.nn.Module, str], str]
    plot_keys: Sequence[Sequence[str]]
    ema: Optional[ModelEma] = None


class _EpochBatches(torch.utils.data.Dataset):
    """The batches of one epoch, built on demand (lets DataLoader workers prefetch)."""

    def __init__(self, task: TrainTask, epoch: int, order: np.ndarray, batch_size: int):
        self.task, self.epoch, self.order, self.batch_size = task, epoch, order, batch_size

    def __len__(self):
        return len(self.order) // self.batch_size

    def __getitem__(self, index):
        positions = np.arange(index * self.batch_size, (index + 1) * self.batch_size)
        return self.task.make_batch(self.epoch, positions, self.order)


def init_weights(model: torch.nn.Module, options: TrainOptions, input_hw, log) -> bool:
    """Load options.init_from into the model when given; returns whether it did."""
    if not options.init_from:
        return False
    diff = load_onnx_weights(model, options.init_from, input_hw)
    log(f'started from {options.init_from} (PyTorch vs onnxruntime max |diff| {diff:.2g})')
    return True


def _export_copy(model: torch.nn.Module) -> torch.nn.Module:
    """Copy a model to the CPU in contiguous layout for export; training goes on as is."""
    return copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format).eval()


def fit(task: TrainTask, options: TrainOptions, options_plain: Dict[str, Any],
        log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Train (or resume) to `options.epochs`; returns the final metrics row.

    Writes last.pt (resumable), final.pt (weights to ship), metrics.csv/png and, unless
    options.export is false, the ONNX file named by `task.export`.
    """
    out_dir = options.out
    checkpoint = load_or_init(options_plain, out_dir, options.resume)
    per_epoch = steps_per_epoch(task.train_count, options.batch_size)
    scheduler = make_scheduler(task.optimizer, per_epoch, options)
    progress, history, sums, elapsed = Progress(), [], {}, 0.0
    if checkpoint is not None:
        progress = restore_checkpoint(checkpoint, task.model, task.optimizer, scheduler,
                                      task.ema)
        history = list(checkpoint['history'])
        sums = dict(checkpoint.get('epoch_sums') or {})
        elapsed = float(checkpoint.get('elapsed_s', 0.0))
        log(f'resuming {out_dir} at epoch {progress.epoch + 1}, batch {progress.step}')
    started = time.monotonic() - elapsed

    def save():
        state = build_checkpoint(task.model, task.config, task.optimizer, scheduler, task.ema,
                                 progress, history, options_plain)
        state['epoch_sums'] = dict(sums)
        state['elapsed_s'] = time.monotonic() - started
        save_atomic(state, os.path.join(out_dir, LAST_CHECKPOINT))

    while progress.epoch < options.epochs:
        epoch = progress.epoch
        order = epoch_order(options.seed, epoch, task.train_count)
        loader = torch.utils.data.DataLoader(
            _EpochBatches(task, epoch, order, options.batch_size), batch_size=None,
            sampler=range(progress.step, per_epoch), num_workers=options.workers,
            # Its own generator: a loader otherwise draws a seed from torch's stream, which
            # would shift dropout masks between a resumed and an uninterrupted run.
            generator=torch.Generator().manual_seed(options.seed))
        bar = progress_bar(per_epoch, progress.step, f'epoch {epoch + 1}/{options.epochs}')
        for batch in loader:
            task.model.train()
            if options.init_from:
                freeze_batchnorm(task.model)
            parts = task.train_step(batch)
            scheduler.step()
            if task.ema is not None:
                task.ema.update(task.model)
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            progress.step += 1
            progress.global_step += 1
            bar.update(1)
            bar.set_postfix({k: f'{v:.4g}' for k, v in parts.items()}, refresh=False)
            if options.checkpoint_every and progress.global_step % options.checkpoint_every \
                    == 0 and progress.step < per_epoch:
                save()
        bar.close()
        shipped = task.ema.model if task.ema is not None else task.model
        shipped.eval()
        with torch.no_grad():
            metrics = task.validate(shipped)
        row = {'epoch': epoch + 1, 'lr': task.optimizer.param_groups[0]['lr']}
        row.update({f'train_{k}': v / max(1, progress.step) for k, v in sums.items()})
        row.update(metrics)
        row['time_s'] = round(time.monotonic() - started, 1)
        history.append(row)
        log('  '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                      for k, v in row.items()))
        progress = Progress(epoch + 1, 0, progress.global_step)
        sums = {}
        save()
        write_history(out_dir, history, task.plot_keys)
        if options.export and progress.epoch < options.epochs:
            # A milestone ONNX file after every epoch: usable if the run stops early.
            log(task.export(_export_copy(shipped), out_dir))
    shipped = task.ema.model if task.ema is not None else task.model
    save_atomic({'model': shipped.state_dict(), 'config': task.config},
                os.path.join(out_dir, FINAL_CHECKPOINT))
    if options.export:
        log(task.export(_export_copy(shipped), out_dir))
    return history[-1] if history else {}
