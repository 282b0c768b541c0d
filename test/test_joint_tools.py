"""The joint model in every tool: `depthdet train evaluate`, `run`, `eval` and `bench`.

Figures come from the hand-built joint model of test_core_joint (object A, a chair, with
a known mask; depth = 1 + 4 * red), so they are worked out by hand; the CLI runs also
use a small random-weights export (`depthdet export --random-weights --arch joint_...`).
"""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from depthdet_ros.cli import main
from depthdet_ros.train.data import ArrayFrames
from depthdet_ros.train.evaluate import evaluate_models
from eval_bags import _detections, CAMERA_INFO, DEPTH, GT_2D, GT_3D, IMAGE, \
    object_behind_box, pinhole, stamp_of
from test_core_joint import a_mask, IMAGE_H, IMAGE_W, joint_model, NAMES, prototypes, \
    red_depth, ROW_A, ROW_A_WEAK, ROW_B, two_tone_image

R50, R200 = red_depth(50), red_depth(200)
# Focal length making the focal correction 1 (test_core_joint: fx 75 -> factor 1).
K = np.array([[75.0, 0, 47.5], [0, 75.0, 23.5], [0, 0, 1]])


@pytest.fixture(scope='module')
def constant_joint(tmp_path_factory):
    return str(joint_model(tmp_path_factory.mktemp('joint') / 'joint.onnx',
                           [ROW_A_WEAK, ROW_A, ROW_B], prototypes()))


@pytest.fixture(scope='module')
def random_joint(tmp_path_factory):
    """Export a small random-weights joint model (2 classes, k 4, 64x64 input)."""
    folder = tmp_path_factory.mktemp('random_joint')
    names = folder / 'names.txt'
    names.write_text('cup\nchair\n')
    path = folder / 'joint.onnx'
    subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'export', '--random-weights',
                    '--arch', 'joint_yolov5n', '--names', str(names), '--input-size', '64',
                    '64', '--canonical-focal', '50', '--arch-kwargs',
                    '{"width_multiple": 0.125, "num_masks": 4, "decoder_width": 0.5}',
                    '-o', str(path)], check=True, capture_output=True)
    return str(path)


class ChairFrame(ArrayFrames):
    """One two-tone frame holding one chair (object A) with its instance image.

    Its ground-truth mask is A's predicted mask plus columns 42..44 of its box (72
    pixels): IoU 276 / 348 = 0.79. The rendered depth is the model's own prediction, so
    rendered and predicted depth agree.
    """

    def __init__(self):
        depth = np.full((IMAGE_H, IMAGE_W), R200, np.float32)
        depth[:, :42] = R50
        ids = np.zeros((IMAGE_H, IMAGE_W), np.uint16)
        ids[12:36, 30:60][a_mask()] = 7
        ids[12:36, 42:45] = 7
        self.ids = ids
        super().__init__([two_tone_image()], [depth], [np.array([[30.0, 12.0, 60.0, 36.0]])],
                         [np.array([1])], NAMES, cameras=[K])

    def instances(self, index):
        return self.ids

    def objects(self, index):
        return [{'instance_id': 7, 'category_id': 2, 'bbox': [30, 12, 30, 24], 'depth': R50}]


def test_train_evaluate_joint_masks_and_strategies(constant_joint):
    report = evaluate_models('', '', ChairFrame(), joint_path=constant_joint)
    assert report.models == {'joint': 'joint.onnx'}
    assert (report.map50, report.map50_95) == (1.0, 1.0)  # A's box is the truth's
    # Mask IoU 0.79: matched at 0.50 .. 0.75 (6 of 10 thresholds); the cup has no truth.
    assert report.mask_map['map50'] == 1.0
    assert report.mask_map['map50_95'] == pytest.approx(0.6)
    assert report.recall_at_operating_score == 1.0
    # Dense depth: exact but for the columns by the colour edge (interpolated).
    assert 0 < report.depth['rel'] < 0.02 and report.depth['pixels'] == IMAGE_H * IMAGE_W
    box_rel = (R200 - R50) / R50  # box x 30..60: 18 of 30 columns are red 200
    for setting in ('pipeline', 'pipeline_oracle_depth', 'gt_boxes', 'oracle_depth'):
        hollow = report.objects[setting]['hollow']
        assert hollow['box_median'].mean_rel == pytest.approx(box_rel, rel=1e-5)
        # Own mask (pipeline settings) and the truth's (GT-box settings: 276 of 348
        # pixels red 50) both read the chair's depth.
        assert hollow['mask'].mean_rel == pytest.approx(0.0, abs=1e-6)
        assert hollow['mask'].count == 1
    assert report.hollow_mask_ratio == pytest.approx(
        {'pipeline_oracle_depth': 0.0, 'pipeline': 0.0}, abs=1e-6)
    text = report.markdown()
    assert '| mask mAP@0.5 | mask mAP@0.5:0.95 |' in text and '| 1.000 | 0.600 |' in text
    # AP@0.5 per class with ground truth (once only in --json).
    assert f'| class | chair |\n|---|---|\n| AP@0.5 | {report.per_class_ap50["chair"]:.3f} |' \
        in text
    assert '| pipeline_oracle_depth | 0.000 | <= 0.5 |' in text


def test_train_evaluate_pair_has_no_own_mask_rows(tmp_path):
    from depthdet_ros.assets import default_model
    frames = ChairFrame()
    frames.class_names = None  # a split without classes: the bundled pair's 10 differ
    report = evaluate_models(default_model('detector'), default_model('depth'), frames)
    assert report.mask_map is None and report.hollow_mask_ratio == {}
    assert 'mask' not in report.objects['pipeline']['all']
    assert 'mask' in report.objects['oracle_depth']['all']


def _one_line_error(capsys, expected):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and 'Traceback' not in err, err


def test_joint_and_pair_options_exclude_each_other(constant_joint, tmp_path, capsys):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((48, 96, 3), np.uint8))
    from depthdet_ros.assets import default_model
    detector = default_model('detector')
    for argv, flag in (
            (['run', str(image), '--joint-model', constant_joint, '--detector-model', detector,
              '--out', str(tmp_path / 'o')], '--detector-model'),
            (['eval', str(tmp_path), '--joint-model', constant_joint, '--depth-model',
              default_model('depth')], '--depth-model'),
            (['train', 'evaluate', '--data', str(tmp_path), '--joint-model', constant_joint,
              '--detector', detector], '--detector')):
        assert main(argv) == 2
        _one_line_error(capsys, f'--joint-model replaces the detector and depth pair: give a '
                                f'joint model or {flag}, not both')
    params = tmp_path / 'params.yaml'
    params.write_text(f'/**:\n  ros__parameters:\n    joint_model: "{constant_joint}"\n')
    assert main(['run', str(image), '--params-file', str(params), '--detector-model', detector,
                 '--out', str(tmp_path / 'o')]) == 2
    _one_line_error(capsys, 'the params file\'s joint_model replaces the detector and depth')
    # A model that is not joint: one line from the runtime's check.
    assert main(['run', str(image), '--joint-model', detector, '--out',
                 str(tmp_path / 'o')]) == 2
    _one_line_error(capsys, 'detector.onnx is not a joint model')


def test_run_with_the_joint_model(constant_joint, random_joint, tmp_path):
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), cv2.cvtColor(two_tone_image(), cv2.COLOR_RGB2BGR))
    assert main(['run', str(image), '--joint-model', constant_joint, '--depth-strategy', 'mask',
                 '--hfov', '65', '--out', str(tmp_path / 'out')]) == 0
    with open(tmp_path / 'out' / 'results.json') as f:
        results = json.load(f)
    assert results['params']['joint_model'] == constant_joint
    chair, cup = results['images'][0]['objects']
    assert (chair['class'], cup['class']) == ('chair', 'cup')
    # --hfov 65: focal 75.3 px, so depth is the mask's red-50 depth x fx / 75.
    fx = IMAGE_W / 2 / np.tan(np.radians(65) / 2)
    assert chair['depth_m'] == pytest.approx(R50 * fx / 75, abs=1e-4)
    assert 'joint' in results['images'][0]['timings_ms']
    assert main(['run', str(image), '--joint-model', random_joint, '--out',
                 str(tmp_path / 'random')]) == 0


INSTANCES = '/ground_truth/instances'


def write_chair_bag(path, frames=2):
    """Write a bag of two-tone frames with the chair's GT boxes and its instance image."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from depthdet_ros.bags import BAG_VERSION, camera_info, depth_image, header, \
        make_typestore, rgb_image
    store = make_typestore()
    camera = pinhole(IMAGE_W, IMAGE_H, 75.0)
    depth = np.full((IMAGE_H, IMAGE_W), R200, np.float32)
    depth[:, :42] = R50
    chair = [object_behind_box('chair', (30, 12, 60, 36), R50, 0.1, camera, '1')]
    ids = ChairFrame().ids.astype('<u2')
    ids[ids > 0] = 1  # the GT Detection2D id
    writer = Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections = {}
    for i in range(frames):
        stamp = stamp_of(i)
        h = header(store, stamp, camera.frame_id)
        instances = store.types['sensor_msgs/msg/Image'](
            header=h, height=IMAGE_H, width=IMAGE_W, encoding='16UC1', is_bigendian=0,
            step=IMAGE_W * 2, data=ids.view(np.uint8).reshape(-1))
        for topic, msg in ((CAMERA_INFO, camera_info(store, h, camera)),
                           (IMAGE, rgb_image(store, h, two_tone_image())),
                           (DEPTH, depth_image(store, h, depth)),
                           (GT_2D, _detections(store, h, chair, False)),
                           (GT_3D, _detections(store, h, chair, True)), (INSTANCES, instances)):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msg.__msgtype__,
                                                           typestore=store)
            writer.write(connections[topic], stamp, store.serialize_cdr(msg, msg.__msgtype__))
    writer.close()
    return str(path)


def test_eval_with_the_joint_model(constant_joint, tmp_path):
    bag = write_chair_bag(tmp_path / 'bag')
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n    providers: cpu\n    threads: 1\n')
    assert main(['eval', str(bag), '--params-file', str(params), '--joint-model',
                 constant_joint, '--out', str(tmp_path / 'report'), '--no-progress',
                 '--no-plots', '--no-tracking']) == 0
    with open(tmp_path / 'report' / 'report.json') as f:
        report = json.load(f)
    settings = report['settings']
    assert settings['joint_model'] == constant_joint and settings['detector_model'] is None
    assert report['topics']['gt_instances'] == INSTANCES
    detection = report['detection']
    assert detection['map50'] == 1.0
    # The GT mask is A's predicted mask plus 72 pixels: IoU 276 / 348 = 0.79, matched at
    # 0.50 .. 0.75 in both frames.
    assert detection['masks']['map50'] == 1.0 and detection['masks']['frames'] == 2
    assert detection['masks']['map50_95'] == pytest.approx(0.6)
    # Same objects, same truth: the biases differ by what each strategy reads; the GT
    # boxes' `mask` reads the GT mask (276 of its 348 pixels on the chair's depth).
    for source in ('detected', 'ground_truth'):
        stats = report['objects'][source]
        mask_bias = stats['mask']['overall']['bias_m']
        assert stats['box_median']['overall']['bias_m'] - mask_bias == pytest.approx(
            R200 - R50, abs=1e-4)
        assert stats['mask']['overall']['count'] == 2
    assert 'mask mAP@0.5 1.000' in (tmp_path / 'report' / 'report.md').read_text()


def test_bench_compares_the_pair_with_the_joint_model(random_joint, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert main(['bench', '--joint-model', random_joint, '--no-ros', '--no-baseline',
                 '--iterations', '2', '--warmup', '0', '--size', '128x96',
                 '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '| end to end, in process |' in printed and 'pair / joint' in printed
    with open(out) as f:
        result = json.load(f)
    joint = result['joint']
    assert joint['models']['joint'] == random_joint
    assert joint['inputs'] == {'detector': '320x320', 'depth': '320x256', 'joint': '64x64'}
    for series in ('end_to_end_pair', 'end_to_end_joint', 'detector_alone', 'depth_alone',
                   'joint_alone', 'cpu_pair', 'cpu_joint'):
        assert joint['stages_ms'][series]['n'] == 2
    assert joint['speedup_cpu_time'] == pytest.approx(
        joint['stages_ms']['cpu_pair']['p50'] / joint['stages_ms']['cpu_joint']['p50'], abs=1e-3)
    assert joint['speedup_end_to_end'] == pytest.approx(
        joint['stages_ms']['end_to_end_pair']['p50']
        / joint['stages_ms']['end_to_end_joint']['p50'], abs=1e-3)
    assert '--joint-model' in result['command']
    # The other sections ran the pair.
    assert result['config']['detector_input'] == '320x320'
