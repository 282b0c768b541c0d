"""Tiny training runs: resuming reproduces an uninterrupted run exactly; run outputs.

An interrupted run resumed from its checkpoint ends with exactly the weights of an
uninterrupted one; metrics CSV and plot, ONNX and the export-ready checkpoint exist.
"""
import csv

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.train.common import FINAL_CHECKPOINT, LAST_CHECKPOINT  # noqa: E402
from depthdet_ros.train.data import ArrayFrames  # noqa: E402
from depthdet_ros.train.depth import train_depth  # noqa: E402
from depthdet_ros.train.detector import train_detector  # noqa: E402
from depthdet_ros.train.options import DepthTrainOptions, DetectorTrainOptions  # noqa: E402

pytestmark = pytest.mark.torch

NAMES = ('a', 'b')


class Interrupted(Exception):
    """Stands in for a crash or Ctrl-C in the middle of a run."""


class FailingFrames(ArrayFrames):
    """Frames that count their loads and raise Interrupted on the n-th (a crash mid-batch).

    fail_at None: never; `loads` then tells how much of the run was trained.
    """

    def __init__(self, frames, fail_at=None):
        super().__init__(frames.rgbs, frames.depths, frames.boxes, frames.classes, NAMES,
                         frames.cameras)
        self.loads, self.fail_at = 0, fail_at

    def _count(self):
        self.loads += 1
        if self.loads == self.fail_at:
            raise Interrupted

    def load(self, index):
        self._count()
        return super().load(index)

    def load_boxes(self, index):
        self._count()
        return super().load_boxes(index)


def random_frames(count=8, height=72, width=96):
    rng = np.random.default_rng(0)
    rgbs = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    depths = [rng.uniform(0.5, 5.0, (height, width)).astype(np.float32) for _ in range(count)]
    boxes = [np.array([[10, 10, 40, 50], [50, 20, 90, 70]], float) for _ in range(count)]
    classes = [np.array([0, 1]) for _ in range(count)]
    K = np.array([[80.0, 0, width / 2], [0, 80.0, height / 2], [0, 0, 1]])
    return ArrayFrames(rgbs, depths, boxes, classes, NAMES, cameras=[K] * count)


def final_weights(out):
    return torch.load(out / FINAL_CHECKPOINT, weights_only=True)['model']


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def run_interrupted_then_resumed(train_fn, options, frames, fail_at):
    """Crash a run at load `fail_at`, resume it: (final metrics, its log, frames it loaded).

    A resumed run that trained from scratch again would end with the same weights (the
    runs are deterministic): the log and the loads tell where it really started.
    """
    with pytest.raises(Interrupted):
        train_fn(options, FailingFrames(frames, fail_at), frames, log=lambda _: None)
    options.resume = True
    said, counted = [], FailingFrames(frames)
    return train_fn(options, counted, frames, log=said.append), said, counted.loads


# Frames read before the first batch: the depth trainer sets its head bias from them.
SETUP_LOADS = {'depth': 8, 'detector': 0}
COMMON = dict(epochs=2, batch_size=2, threads=1, checkpoint_every=3, warmup_steps=2, seed=7)


def depth_options(out):
    return DepthTrainOptions(out=str(out), arch_kwargs={'width': 0.35, 'decoder_width': 0.25},
                             input_size=(64, 96), export=False, **COMMON)


def detector_options(out):
    return DetectorTrainOptions(out=str(out), width_multiple=0.125, image_size=64,
                                close_mosaic=1, ema_tau=2.0, export=False, **COMMON)


@pytest.mark.parametrize('kind', ['depth', 'detector'])
def test_resumed_run_reproduces_the_uninterrupted_weights(tmp_path, kind):
    frames = random_frames()
    train_fn, make_options = {'depth': (train_depth, depth_options),
                              'detector': (train_detector, detector_options)}[kind]
    straight = train_fn(make_options(tmp_path / 'straight'), frames, frames,
                        log=lambda _: None)
    # 4 batches per epoch; checkpoints after global step 3 (mid-epoch 1) and at each epoch
    # end. Crash while building epoch 2's second batch: the detector's mosaic loads four
    # frames per sample in epoch 1 and one in epoch 2 (close_mosaic).
    epoch1_loads = 8 * (4 if kind == 'detector' else 1)
    resumed, said, loads = run_interrupted_then_resumed(
        train_fn, make_options(tmp_path / 'resumed'), frames,
        fail_at=SETUP_LOADS[kind] + epoch1_loads + 3)
    # The last checkpoint is epoch 1's end (step 6's would come after the crash): the
    # resumed run trains epoch 2 alone, one frame per sample, 8 loads, after the set-up
    # (which the checkpoint's weights then replace).
    assert any(line.endswith('at epoch 2, batch 0') for line in said), said
    assert loads == SETUP_LOADS[kind] + 8
    assert_same_weights(final_weights(tmp_path / 'straight'),
                        final_weights(tmp_path / 'resumed'))
    del resumed['time_s'], straight['time_s']
    assert resumed == pytest.approx(straight, nan_ok=True)
    with open(tmp_path / 'resumed' / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert [row['epoch'] for row in rows] == ['1', '2']
    assert (tmp_path / 'resumed' / 'metrics.png').stat().st_size > 0


def test_crash_in_the_first_epoch_resumes_mid_epoch(tmp_path):
    frames = random_frames()
    train_depth(depth_options(tmp_path / 'straight'), frames, frames, log=lambda _: None)
    # Step 3's checkpoint is mid-epoch 1; crash while building batch 4.
    _, said, loads = run_interrupted_then_resumed(
        train_depth, depth_options(tmp_path / 'resumed'), frames,
        fail_at=SETUP_LOADS['depth'] + 7)
    # From step 3 on: the set-up, epoch 1's fourth batch (2 loads) and epoch 2 (8).
    assert any(line.endswith('at epoch 1, batch 3') for line in said), said
    assert loads == SETUP_LOADS['depth'] + 2 + 8
    assert_same_weights(final_weights(tmp_path / 'straight'),
                        final_weights(tmp_path / 'resumed'))


def test_resume_refuses_changed_options_and_fresh_run_refuses_old_folder(tmp_path):
    frames = random_frames()
    options = depth_options(tmp_path / 'run')
    options.epochs = 1
    train_depth(options, frames, frames, log=lambda _: None)
    assert (tmp_path / 'run' / LAST_CHECKPOINT).exists()
    with pytest.raises(ValueError, match='--resume'):
        train_depth(options, frames, frames, log=lambda _: None)
    options.resume = True
    options.lr = 0.5
    with pytest.raises(ValueError, match='lr'):
        train_depth(options, frames, frames, log=lambda _: None)


def test_final_checkpoint_exports_through_the_export_cli(tmp_path):
    from depthdet_ros.cli import main as depthdet
    from depthdet_ros.core.detector import Detector

    frames = random_frames()
    options = detector_options(tmp_path / 'det')
    options.epochs = 1
    options.export = True
    train_detector(options, frames, frames, log=lambda _: None)
    assert (tmp_path / 'det' / 'detector.onnx').exists()
    out = tmp_path / 'again.onnx'
    assert depthdet(['export', '--weights', str(tmp_path / 'det' / FINAL_CHECKPOINT),
                     '-o', str(out)]) == 0
    detector = Detector(str(out))
    assert detector.class_names == list(NAMES)
    assert (detector.input_h, detector.input_w) == (64, 64)
