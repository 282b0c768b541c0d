"""`depthdet train cross-camera`: the focal correction it applies, by hand, on rendered scenes."""
import math

import pytest

from depthdet_ros.cli import main as depthdet
from depthdet_ros.eval.cross_camera import DEFAULT_CAMERAS, measure
from onnx_fixtures import red_depth


def effective_focal(hfov_deg, width, height, input_h=256, input_w=320):
    """Focal length in network-input pixels of a camera after the full-image (fit) view."""
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    return fx * min(input_w / width, input_h / height)


def test_correction_is_the_log_focal_ratio_of_each_camera_pair(tmp_path):
    """Corrected depths disagree by the log ratio of the cameras' effective focal lengths.

    The net's depth ignores the camera (red channel -> metres), so only the correction
    separates the cameras.
    """
    path = red_depth(tmp_path / 'red.onnx', canonical_focal=250.0)
    # `robust`: this net's map is sharp (an object's colour), where the nearest dominant
    # surface is the object's own; `near_median` would also take in its shaded edges.
    results = measure(str(path), scenes=2, strategy='robust')
    assert len(results) == 3
    # 50deg 640x480: fx 686.2 px x 0.5 = 343.1; 70deg 1280x720: 914.0 x 0.25 = 228.5;
    # 95deg 960x960: 439.8 x 0.2667 = 117.3 network-input pixels.
    focal = [effective_focal(*camera) for camera in DEFAULT_CAMERAS]
    assert focal == pytest.approx([343.1, 228.5, 117.3], abs=0.1)
    expected = [abs(math.log(focal[a] / focal[b])) for a, b in ((0, 1), (0, 2), (1, 2))]
    for result, ratio in zip(results, expected):
        assert result.objects >= 5
        # The same object's colour gives nearly the same raw depth through every camera.
        assert result.uncorrected < 0.05
        assert result.corrected == pytest.approx(ratio, abs=0.05)


def test_joint_model_and_depth_model_together_are_refused(tmp_path, capsys):
    """--joint-model replaces the depth net: both at once is one clear line, exit 2."""
    code = depthdet(['train', 'cross-camera', '--depth', 'a.onnx', '--joint-model', 'b.onnx'])
    assert code == 2
    assert '--joint-model replaces the detector and depth pair' in capsys.readouterr().err


def test_strategy_option_reaches_the_measurement(monkeypatch, capsys):
    """--strategy is passed on (the node's default without it); `mask` has no masks here."""
    from depthdet_ros.eval import cross_camera
    seen = []
    monkeypatch.setattr(cross_camera, 'measure',
                        lambda *args, **kwargs: seen.append(kwargs['strategy']) or [])
    assert depthdet(['train', 'cross-camera', '--depth', 'a.onnx']) == 0
    assert depthdet(['train', 'cross-camera', '--depth', 'a.onnx', '--strategy', 'robust']) == 0
    assert seen == ['near_median', 'robust']
    with pytest.raises(SystemExit) as exit_info:
        depthdet(['train', 'cross-camera', '--strategy', 'mask'])
    assert exit_info.value.code == 2 and "invalid choice: 'mask'" in capsys.readouterr().err
