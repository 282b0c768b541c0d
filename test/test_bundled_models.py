"""The bundled models: load through core, match their cards' I/O contract, see a known scene.

Each card (models/detector.md, models/depth.md) holds one ```json block: the contract and
the tolerances of the scene check. The scene is a frame of the held-out test split
(test/data/bundled_scene.png, rendered by the sim; its ground truth and camera matrix in
bundled_scene.json, written by tools/make_scene_asset.py). It runs with its camera, so
the focal-aware depth nets are scaled to it as in the node. No torch needed.
"""
import filecmp
import json
import os
import re

import cv2
import numpy as np
import pytest

from depthdet_ros.assets import default_model
from depthdet_ros.core import metadata
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.core.detector import Detector, DetectorConfig, LAYOUT_YOLOV5
from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, object_depth
from depthdet_ros.core.pipeline import FusionConfig, Pipeline, PipelineModels
from depthdet_ros.core.session import model_metadata
from depthdet_ros.sim.objects import CLASS_NAMES
from depthdet_ros.train.evaluate import match_detections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'models')
SCENE = os.path.join(ROOT, 'test', 'data', 'bundled_scene')
MAX_TOTAL_MB = 25.0


def card_contract(name):
    """Return the ```json block of models/<name>.md as a dict."""
    with open(os.path.join(MODELS, f'{name}.md'), encoding='utf-8') as f:
        match = re.search(r'```json\n(.*?)\n```', f.read(), re.S)
    assert match, f'models/{name}.md has no ```json contract block'
    return json.loads(match.group(1))


@pytest.fixture(scope='module')
def scene():
    rgb = cv2.cvtColor(cv2.imread(SCENE + '.png', cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    with open(SCENE + '.json', encoding='utf-8') as f:
        truth = json.load(f)
    return rgb, truth


def scene_camera(scene):
    rgb, truth = scene
    return CameraModel(K=np.asarray(truth['camera_matrix'], np.float64), width=rgb.shape[1],
                       height=rgb.shape[0])


def test_bundled_files_are_the_defaults_and_small():
    for kind in ('detector', 'depth'):
        # The default may be an installed copy (share/depthdet_ros/models).
        assert filecmp.cmp(default_model(kind), os.path.join(MODELS, f'{kind}.onnx'),
                           shallow=False)
    total = sum(os.path.getsize(os.path.join(MODELS, f'{kind}.onnx'))
                for kind in ('detector', 'depth'))
    assert total <= MAX_TOTAL_MB * 1e6


def test_detector_matches_its_card():
    contract = card_contract('detector')
    detector = Detector(os.path.join(MODELS, 'detector.onnx'))
    assert [detector.input_h, detector.input_w] == contract['input_size']
    assert detector.layout == LAYOUT_YOLOV5
    assert detector.class_names == contract['classes'] == list(CLASS_NAMES)
    assert detector.session.get_inputs()[0].name == contract['input_name']
    assert list(detector.session.get_outputs()[0].shape) == contract['output_shape']


def test_depth_net_matches_its_card():
    contract = card_contract('depth')
    depth = DepthEstimator(os.path.join(MODELS, 'depth.onnx'))
    assert [depth.input_h, depth.input_w] == contract['input_size']
    assert [depth.output_h, depth.output_w] == contract['output_size']
    meta = model_metadata(depth.session)
    assert meta[metadata.DEPTH_UNITS] == contract['units']
    assert meta[metadata.ARCH] == contract['arch']
    assert float(meta[metadata.CANONICAL_FOCAL]) == contract['canonical_focal']


def _scene_result(scene, detector_file, depth_file):
    """Run a model pair on the known scene; returns (result, truth, detector check)."""
    rgb, truth = scene
    detector_check = card_contract('detector')['scene_check']
    pipeline = Pipeline(PipelineModels(os.path.join(MODELS, detector_file),
                                       os.path.join(MODELS, depth_file)),
                        DetectorConfig(score_threshold=detector_check['score_threshold']),
                        concurrent=False)
    try:
        result = pipeline.process(rgb, scene_camera(scene))
    finally:
        pipeline.close()
    return result, truth, detector_check


def _object_errors(result, truth, detector_check):
    pairs = match_detections([o.detection for o in result.objects], truth['objects'])
    assert len(pairs) >= detector_check['min_matched'], \
        f'{len(pairs)} of {len(truth["objects"])} objects found'
    return [abs(object_depth(result.depth_map, det.box, DEFAULT_STRATEGY).depth - t['depth'])
            / t['depth'] for det, t in pairs]


def test_known_scene_is_detected_and_ranged(scene):
    result, truth, detector_check = _scene_result(scene, 'detector.onnx', 'depth.onnx')
    depth_check = card_contract('depth')['scene_check']
    errors = _object_errors(result, truth, detector_check)
    valid = np.isfinite(result.depth_map)
    gt = np.asarray(truth['depth_mm'], np.float64)
    rel = np.abs(cv2.resize(result.depth_map, gt.shape[::-1], interpolation=cv2.INTER_AREA)
                 - gt / 1000.0) / (gt / 1000.0)
    # The cards' figures for this scene (`pytest -s` shows them).
    print(f'\nbundled pair: {len(errors)} of {len(truth["objects"])} objects found; '
          f'{DEFAULT_STRATEGY} depth {min(errors):.0%}-{max(errors):.0%} off '
          f'(median {np.median(errors):.0%}); '
          f'median pixel error {np.nanmedian(rel):.0%}')
    assert np.median(errors) <= depth_check['max_median_object_rel'], errors
    assert valid.mean() > 0.9
    assert np.nanmedian(rel) <= depth_check['max_median_pixel_rel']


def test_joint_model_matches_its_card_and_sees_the_known_scene(scene):
    contract = card_contract('joint')
    rgb, truth = scene
    check = contract['scene_check']
    pipeline = Pipeline(PipelineModels(joint_path=os.path.join(MODELS, contract['file'])),
                        DetectorConfig(score_threshold=check['score_threshold']),
                        FusionConfig(strategy='mask'), concurrent=False)
    try:
        session = pipeline.joint.session
        meta = model_metadata(session)
        result = pipeline.process(rgb, scene_camera(scene))
    finally:
        pipeline.close()
    assert meta[metadata.ARCH] == contract['arch']
    assert json.loads(meta[metadata.ARCH_KWARGS]) == contract['arch_kwargs']
    assert float(meta[metadata.CANONICAL_FOCAL]) == contract['canonical_focal']
    assert {o.name: list(o.shape) for o in session.get_outputs()} == contract['output_shapes']
    pairs = match_detections([o.detection for o in result.objects], truth['objects'])
    assert len(pairs) >= check['min_matched'], f'{len(pairs)} of {len(truth["objects"])}'
    assert all(o.mask is not None for o in result.objects)
    gt = np.asarray(truth['depth_mm'], np.float64) / 1000.0
    rel = np.abs(cv2.resize(result.depth_map, gt.shape[::-1], interpolation=cv2.INTER_AREA)
                 - gt) / gt
    print(f'\njoint model: {len(pairs)} of {len(truth["objects"])} objects found; median '
          f'pixel error {np.nanmedian(rel):.2f}')
    assert np.nanmedian(rel) <= check['max_median_pixel_rel']


def test_int8_pair_sees_the_known_scene_like_the_fp32_pair(scene):
    for name in ('detector_int8.onnx', 'depth_int8.onnx'):
        recipe = json.loads(model_metadata(
            Detector(os.path.join(MODELS, name)).session if 'detector' in name
            else DepthEstimator(os.path.join(MODELS, name)).session)['depthdet_quantization'])
        # Shipped to any CPU: 8-bit weights saturate the u8s8 kernels of CPUs without VNNI.
        assert recipe['reduce_range'] is True, name
    result, truth, detector_check = _scene_result(scene, 'detector_int8.onnx',
                                                  'depth_int8.onnx')
    errors = _object_errors(result, truth, detector_check)
    assert np.median(errors) <= card_contract('depth')['scene_check']['max_median_object_rel']
