"""Detector: letterbox and inverse, layouts, decoding and NMS, with hand-computed values."""
import logging

import numpy as np
import pytest

from depthdet_ros.core.detector import (decode, detect_layout, Detector, DetectorConfig,
                                        LAYOUT_NMS, LAYOUT_YOLOV5, LAYOUT_YOLOV8, letterbox)
from depthdet_ros.core.session import ModelLoadError
from onnx_fixtures import constant_detector


def test_letterbox_matches_yolov5_arithmetic():
    # 640x480 into 640x640: gain 1, dh = 80 -> top round(79.9)=80, bottom round(80.1)=80.
    image = np.full((480, 640, 3), 7, np.uint8)
    boxed, lb = letterbox(image, 640, 640)
    assert boxed.shape == (640, 640, 3)
    assert (lb.gain, lb.pad_x, lb.pad_y) == (1.0, 0.0, 80.0)
    assert (boxed[:80] == 114).all() and (boxed[80:560] == 7).all() and (boxed[560:] == 114).all()
    # 1280x720 into 640x640: gain 0.5 -> 640x360, dh = 140 -> top 140, bottom 140.
    boxed, lb = letterbox(np.zeros((720, 1280, 3), np.uint8), 640, 640)
    assert (lb.gain, lb.pad_y) == (0.5, 140.0)
    # Odd padding: 100x37 into 64x64: gain 0.64 -> 64x24 (23.68 rounds to 24), dh = 20.
    boxed, lb = letterbox(np.zeros((37, 100, 3), np.uint8), 64, 64)
    assert boxed.shape == (64, 64, 3) and lb.pad_y == 20.0


def test_letterbox_inverse_maps_boxes_back():
    _, lb = letterbox(np.zeros((720, 1280, 3), np.uint8), 640, 640)
    # A box at image (100, 200)-(300, 500) sits at (50, 240)-(150, 390) letterboxed.
    back = lb.to_image(np.array([[50.0, 240.0, 150.0, 390.0]]))
    np.testing.assert_allclose(back, [[100, 200, 300, 500]])
    # Boxes reaching into the padding are clipped to the image.
    back = lb.to_image(np.array([[-10.0, 100.0, 700.0, 600.0]]))
    np.testing.assert_allclose(back, [[0, 0, 1280, 720]])


def test_layouts_detected_from_shapes():
    assert detect_layout((1, 25200, 85), 640, 640) == (LAYOUT_YOLOV5, 80)
    assert detect_layout((1, 84, 8400), 640, 640) == (LAYOUT_YOLOV8, 80)
    assert detect_layout((1, 300, 6), 640, 640) == (LAYOUT_NMS, None)
    assert detect_layout((1, 3 * (40 * 40 + 20 * 20 + 10 * 10), 6), 320, 320) == (LAYOUT_YOLOV5, 1)
    with pytest.raises(ModelLoadError, match='matches no supported layout'):
        detect_layout((1, 1000, 17), 640, 640)


def test_yolov5_decode_scores_and_class_aware_nms():
    rows = np.zeros((10, 7), np.float32)
    # cx, cy, w, h, obj, p(class0), p(class1)
    rows[0] = [100, 100, 50, 50, 0.9, 0.9, 0.1]    # score 0.81, class 0
    rows[1] = [102, 100, 50, 50, 0.8, 0.9, 0.1]    # overlaps row 0 (IoU 0.92), same class
    rows[2] = [101, 100, 50, 50, 0.9, 0.1, 0.8]    # overlaps row 0 but class 1: kept
    rows[3] = [300, 300, 20, 20, 0.2, 1.0, 0.0]    # objectness below threshold
    rows[4] = [400, 400, 20, 20, 0.5, 0.4, 0.0]    # 0.5 * 0.4 = 0.2 < 0.25
    xyxy, scores, classes = decode(rows, LAYOUT_YOLOV5, DetectorConfig())
    np.testing.assert_allclose(scores, [0.81, 0.72], rtol=1e-6)
    assert classes.tolist() == [0, 1]
    np.testing.assert_allclose(xyxy[0], [75, 75, 125, 125])
    # Agnostic NMS suppresses the class-1 box as well.
    _, scores, _ = decode(rows, LAYOUT_YOLOV5, DetectorConfig(agnostic_nms=True))
    assert len(scores) == 1


def test_yolov8_and_nms_layout_decode():
    rows = np.zeros((84, 8400), np.float32)
    rows[:4, 5] = [320, 320, 100, 60]
    rows[4 + 17, 5] = 0.7
    xyxy, scores, classes = decode(rows, LAYOUT_YOLOV8, DetectorConfig())
    np.testing.assert_allclose(xyxy, [[270, 290, 370, 350]])
    assert classes.tolist() == [17] and scores[0] == pytest.approx(0.7)
    table = np.array([[10, 20, 30, 40, 0.9, 3], [0, 0, 5, 5, 0.1, 1]], np.float32)
    xyxy, scores, classes = decode(table, LAYOUT_NMS, DetectorConfig())
    assert xyxy.tolist() == [[10, 20, 30, 40]] and classes.tolist() == [3]


def test_detector_end_to_end_on_onnx_fixture(tmp_path):
    # Image box (100,150)-(300,400) is letterboxed to centre (200, 355), size 200x250.
    path = constant_detector(tmp_path / 'det.onnx', [(200, 355, 200, 250, 0.9, 0.95, 0.1)])
    detector = Detector(path)
    assert detector.layout == LAYOUT_YOLOV5 and detector.class_names == ['chair', 'bottle']
    dets = detector.infer(np.zeros((480, 640, 3), np.uint8))
    assert len(dets) == 1
    d = dets[0]
    assert (d.class_name, d.class_id) == ('chair', 0)
    assert d.score == pytest.approx(0.855, abs=1e-6)
    assert (d.box.x1, d.box.y1, d.box.x2, d.box.y2) == pytest.approx((100, 150, 300, 400))
    detector.config = DetectorConfig(class_filter=frozenset({'bottle'}))
    assert detector.infer(np.zeros((480, 640, 3), np.uint8)) == []


def test_class_filter_applies_before_the_max_detections_cap(tmp_path):
    """The cap counts kept classes only: a better-scoring chair left the bottle out.

    An outsider found `class_filter: [box]` with `max_detections: 1` dropping every box.
    """
    rows = [(200, 355, 200, 250, 0.9, 0.95, 0.1), (500, 355, 100, 100, 0.9, 0.1, 0.6)]
    path = constant_detector(tmp_path / 'det.onnx', rows)
    detector = Detector(path)
    detector.config = DetectorConfig(max_detections=1)
    assert [d.class_name for d in detector.infer(np.zeros((480, 640, 3), np.uint8))] == \
        ['chair']
    detector.config = DetectorConfig(max_detections=1, class_filter=frozenset({'bottle'}))
    (bottle,) = detector.infer(np.zeros((480, 640, 3), np.uint8))
    assert bottle.class_name == 'bottle' and bottle.score == pytest.approx(0.54, abs=1e-6)
    # The end-to-end layout ([k, 6] rows) caps after the filter too.
    table = np.array([[10, 20, 30, 40, 0.9, 0], [0, 0, 5, 5, 0.5, 1]], np.float32)
    config = DetectorConfig(max_detections=1, class_filter=frozenset({'bottle'}))
    _, _, classes = decode(table, LAYOUT_NMS, config, ['chair', 'bottle'])
    assert classes.tolist() == [1]
    with pytest.raises(ValueError, match='class_filter needs the class names'):
        decode(table, LAYOUT_NMS, config)


def test_detector_yolov8_fixture_and_names_mismatch(tmp_path):
    path = constant_detector(tmp_path / 'v8.onnx', [(320, 320, 64, 64, 0.2, 0.9)],
                             layout='yolov8')
    detector = Detector(path)
    assert detector.layout == LAYOUT_YOLOV8
    (det,) = detector.infer(np.zeros((640, 640, 3), np.uint8))
    assert det.class_name == 'bottle' and det.score == pytest.approx(0.9)
    names = tmp_path / 'names.txt'
    names.write_text('a\nb\nc\n')
    with pytest.raises(ModelLoadError, match="predicts 2 classes but the class names file "
                       f"'{names}' gives 3"):
        Detector(path, names_file=str(names))


def test_names_file_that_is_not_text_and_paths_from_home(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    path = constant_detector(tmp_path / 'det.onnx', [(320, 320, 64, 64, 0.9, 1.0, 0.0)])
    # A model given as the names file (outsider round 44: a UnicodeDecodeError traceback).
    with pytest.raises(ModelLoadError, match="class names file '.*det.onnx' is not UTF-8 text"):
        Detector(path, names_file=path)
    # ~ is the home folder, for the model and the names file, as in a shell.
    (tmp_path / 'names.txt').write_text('seat\nflask\n')
    detector = Detector('~/det.onnx', names_file='~/names.txt')
    assert detector.class_names == ['seat', 'flask']


def test_an_input_size_a_fixed_model_cannot_take_is_refused(tmp_path):
    path = constant_detector(tmp_path / 'det.onnx', [(160, 160, 64, 64, 0.9, 1.0, 0.0)],
                             input_hw=(320, 320))
    with pytest.raises(ModelLoadError, match='det.onnx takes a fixed 320x320 input .height x '
                       r'width., not the 640x640 asked for'):
        Detector(path, input_size=(640, 640))
    assert (Detector(path, input_size=(320, 320)).input_h, Detector(path).input_w) == (320, 320)


def test_a_detector_without_names_says_what_its_classes_are_called(tmp_path, caplog):
    import onnx

    from depthdet_ros.core import metadata

    path = constant_detector(tmp_path / 'det.onnx', [(320, 320, 64, 64, 0.9, 1.0, 0.0)])
    model = onnx.load(path)
    kept = [p for p in model.metadata_props if p.key != metadata.NAMES]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, path)
    logger = logging.getLogger('depthdet_ros.core.detector')
    logger.addHandler(caplog.handler)  # the package's logger may not propagate to the root
    try:
        detector = Detector(path)
    finally:
        logger.removeHandler(caplog.handler)
    assert detector.class_names == ['class_0', 'class_1']
    assert 'det.onnx has no class names in its metadata and no class names file was given: ' \
        'its classes are called class_0 ... class_1' in caplog.text


def test_garbage_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / 'garbage.onnx'
    bad.write_bytes(b'not a model at all')
    with pytest.raises(ModelLoadError, match='cannot load ONNX model'):
        Detector(str(bad))
    with pytest.raises(ModelLoadError, match='model file not found'):
        Detector(str(tmp_path / 'missing.onnx'))
