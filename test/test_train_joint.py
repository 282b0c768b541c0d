"""`depthdet train joint`: sample geometry, losses, exact resume, the CLI on a rendered split."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.cli import main as depthdet  # noqa: E402
from depthdet_ros.core.pipeline import FusionConfig, Pipeline, PipelineModels  # noqa: E402
from depthdet_ros.nets.registry import build_model  # noqa: E402
from depthdet_ros.train.data import ArrayFrames  # noqa: E402
from depthdet_ros.train.joint import joint_sample, JointBatches, JointLoss, \
    train_joint  # noqa: E402
from depthdet_ros.train.options import JointTrainOptions  # noqa: E402
from test_train_resume import assert_same_weights, final_weights, Interrupted  # noqa: E402

pytestmark = pytest.mark.torch

NAMES = ('a', 'b')


class MaskFrames(ArrayFrames):
    """In-memory frames with instance images and per-frame {instance: class} objects."""

    def __init__(self, count=4, height=48, width=64, fail_at=0):
        rng = np.random.default_rng(0)
        self.instance_images, self.object_lists = [], []
        rgbs, depths = [], []
        for i in range(count):
            rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            depth = np.full((height, width), 4.0, np.float32)
            ids = np.zeros((height, width), np.uint16)
            ids[8:30, 6 + i:26 + i] = 1
            depth[8:30, 6 + i:26 + i] = 1.5
            ids[20:44, 36:58] = 2
            depth[20:44, 36:58] = 2.5
            rgbs.append(rgb)
            depths.append(depth)
            self.instance_images.append(ids)
            self.object_lists.append([{'instance_id': 1, 'category_id': 1, 'bbox': [0, 0, 1, 1]},
                                      {'instance_id': 2, 'category_id': 2, 'bbox': [0, 0, 1, 1]}])
        K = np.array([[60.0, 0, width / 2], [0, 60.0, height / 2], [0, 0, 1]])
        super().__init__(rgbs, depths, [np.array([[6 + i, 8, 26 + i, 30], [36, 20, 58, 44]])
                                        for i in range(count)],
                         [np.array([0, 1])] * count, NAMES, cameras=[K] * count)
        self.loads, self.fail_at = 0, fail_at

    def load(self, index):
        self.loads += 1
        if self.loads == self.fail_at:
            raise Interrupted
        return super().load(index)

    def instances(self, index):
        return self.instance_images[index]

    def objects(self, index):
        return self.object_lists[index]


def options(out, **overrides):
    values = dict(out=str(out), width_multiple=0.125, num_masks=4, decoder_width=0.5,
                  image_size=64, epochs=2, batch_size=2, threads=1, checkpoint_every=1,
                  warmup_steps=1, seed=3, ema_tau=2.0, export=False)
    values.update(overrides)
    return JointTrainOptions(**values)


def test_validation_sample_is_the_runtime_letterbox():
    """Validation samples (no rng) are the letterbox; boxes from masks; canonical depth.

    64x48 frame -> 64x64 input: gain 1, 8 rows of padding on top. Object 1 covers columns
    6..25, rows 8..29: box (6, 16, 26, 38); fx 60 at the input and canonical focal 30 make
    targets x 0.5.
    """
    frames = MaskFrames()
    rgb, depth = frames.load(0)
    sample = joint_sample(rgb, depth, frames.instances(0), {1: 0, 2: 1}, 64, None,
                          options('unused', canonical_focal=30.0), (60.0, 60.0))
    np.testing.assert_array_equal(sample.boxes, [[6, 16, 26, 38], [36, 28, 58, 52]])
    np.testing.assert_array_equal(sample.classes, [0, 1])
    assert (sample.rgb[:8] == 114).all() and (sample.rgb[8:56] == rgb).all()
    # Prototype cells (4x4 input pixels) at least half covered: columns 4..7 hold 6, 7
    # (half), rows 36..39 hold 36, 37 (half); so the bottom corner cells a quarter.
    expected = np.zeros((16, 16), np.uint8)
    expected[4:10, 1:7] = 1
    expected[9, [1, 6]] = 0
    np.testing.assert_array_equal(sample.masks[0], expected)
    assert sample.depth.shape == (32, 32)
    assert sample.depth[10, 8] == pytest.approx(0.75) and sample.depth[2, 2] == 0
    assert sample.depth[20, 4] == pytest.approx(2.0)


def test_depth_stride_4_samples_depth_on_the_quarter_grid():
    """--depth-stride 4: the target is 16x16 for a 64 input, cell centres at 4c + 1.5.

    Same frame as above: cell (5, 2) is input pixel (9.5, 21.5), frame (9.5, 13.5), on
    object 1 (1.5 m x 0.5); cell (0, 0) is padding; cell (10, 1) is input (5.5, 41.5),
    frame (5.5, 33.5), background (4 m x 0.5).
    """
    frames = MaskFrames()
    rgb, depth = frames.load(0)
    sample = joint_sample(rgb, depth, frames.instances(0), {1: 0, 2: 1}, 64, None,
                          options('unused', canonical_focal=30.0, depth_stride=4),
                          (60.0, 60.0))
    assert sample.depth.shape == (16, 16)
    assert sample.depth[5, 2] == pytest.approx(0.75) and sample.depth[0, 0] == 0
    assert sample.depth[10, 1] == pytest.approx(2.0)


@pytest.mark.parametrize('depth_stride', [2, 4])
def test_losses_reach_every_head_and_empty_frames_are_safe(depth_stride):
    """Detection, mask and depth losses are finite and have gradients to their heads."""
    opts = options('unused', depth_stride=depth_stride, proto_width=0.5)
    model = build_model('joint_yolov5n', 2, width_multiple=0.125, num_masks=4,
                        decoder_width=0.5, depth_stride=depth_stride, proto_width=0.5).train()
    with torch.no_grad():
        # As train_joint starts it (init_head_bias): a near-zero ReLU output has no gradient.
        model.depth_decoder.head.bias.fill_(2.0)
    images, targets, masks, depths = JointBatches(MaskFrames(), opts)(
        0, np.arange(2), np.arange(4))
    assert targets.shape == (4, 6) and masks.shape == (4, 16, 16)
    assert depths.shape == (2, 1, 64 // depth_stride, 64 // depth_stride)
    criterion = JointLoss(model, opts)
    loss, parts = criterion(model(images.permute(0, 3, 1, 2).float() / 255), targets, masks,
                            depths)
    assert set(parts) == {'box', 'obj', 'cls', 'mask', 'depth'}
    assert all(np.isfinite(v) and v > 0 for v in parts.values())
    loss.backward()
    for head in (model.proto.cv3.conv, model.depth_decoder.head, model.detect.m[0]):
        assert head.weight.grad.abs().sum() > 0
    empty = torch.zeros((0, 6)), torch.zeros((0, 16, 16), dtype=torch.uint8)
    loss, parts = criterion(model(images.permute(0, 3, 1, 2).float() / 255), empty[0],
                            empty[1], depths)
    assert parts['mask'] == 0 and np.isfinite(float(loss.detach()))


def test_mobilenet_variant_trains_and_exports(tmp_path):
    """`train_joint` runs joint_mobilenetv2 end to end: finite losses, the ONNX file runs."""
    metrics = train_joint(options(tmp_path, arch='joint_mobilenetv2', width_multiple=0.25,
                                  depth_stride=4, epochs=3, export=True),
                          MaskFrames(), MaskFrames(), log=lambda _: None)
    rows = list(csv.DictReader(open(tmp_path / 'metrics.csv')))
    assert len(rows) == 3 and np.isfinite(metrics['val_rel'])
    assert all(np.isfinite(float(row[k])) for row in rows for k in row if k.startswith('train_'))
    pipeline = Pipeline(PipelineModels(joint_path=str(tmp_path / 'joint.onnx')))
    try:
        assert pipeline.process(np.zeros((48, 64, 3), np.uint8)).depth_map.shape == (48, 64)
    finally:
        pipeline.close()


def test_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """A crash mid-epoch, then --resume: the same final weights, metrics and curves."""
    straight = train_joint(options(tmp_path / 'straight'), MaskFrames(), MaskFrames(),
                           log=lambda _: None)
    # The head-bias set-up reads 4 frames; the crash comes in the second batch.
    with pytest.raises(Interrupted):
        train_joint(options(tmp_path / 'resumed'), MaskFrames(fail_at=8), MaskFrames(),
                    log=lambda _: None)
    said, counted = [], MaskFrames()
    resumed = train_joint(options(tmp_path / 'resumed', resume=True), counted, MaskFrames(),
                          log=said.append)
    # The same weights would come from training again from scratch (the runs are
    # deterministic): the resumed run starts after step 1's checkpoint, and loads the
    # set-up's 4 frames, the second batch's 2 and epoch 2's 4.
    assert any(line.endswith('at epoch 1, batch 1') for line in said), said
    assert counted.loads == 4 + 2 + 4
    assert_same_weights(final_weights(tmp_path / 'straight'), final_weights(tmp_path / 'resumed'))
    del resumed['time_s'], straight['time_s']
    assert resumed == pytest.approx(straight, nan_ok=True)
    assert {'train_mask', 'train_depth', 'val_mask_iou', 'val_delta1'} <= set(straight)
    assert (tmp_path / 'resumed' / 'metrics.png').stat().st_size > 0


def test_cli_trains_exports_and_the_pipeline_runs_it(tmp_path):
    """`depthdet train joint` on a rendered split: metrics, joint.onnx, Pipeline runs it."""
    data = tmp_path / 'data'
    subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'synth', 'dataset', '--out',
                    str(data), '--frames', '4', '--size', '128x96'], check=True,
                   capture_output=True)
    out = tmp_path / 'run'
    code = depthdet(['train', 'joint', '--data', str(data / 'train'), '--val-data',
                     str(data / 'train'), '--out', str(out), '--epochs', '1', '--batch-size',
                     '2', '--width-multiple', '0.125', '--num-masks', '4', '--decoder-width',
                     '0.5', '--image-size', '64', '--threads', '1', '--mask-gain', '0.1',
                     '--depth-gain', '0.2', '--proto-width', '0.5', '--depth-stride', '4'])
    assert code == 0
    with open(out / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and {'train_mask', 'val_map50', 'val_mask_iou', 'val_rel'} <= \
        set(rows[0])
    saved = torch.load(out / 'last.pt', weights_only=True)['train_config']
    assert (saved['mask_gain'], saved['depth_gain'], saved['depth_stride']) == (0.1, 0.2, 4)
    config = json.loads((data / 'train' / 'annotations.json').read_text())
    pipeline = Pipeline(PipelineModels(joint_path=str(out / 'joint.onnx')),
                        fusion_config=FusionConfig(strategy='mask'))
    try:
        assert len(pipeline.detector.class_names) == len(config['categories'])
        rgb = np.zeros((96, 128, 3), np.uint8)
        result = pipeline.process(rgb)
    finally:
        pipeline.close()
    assert result.depth_map.shape == (96, 128)
