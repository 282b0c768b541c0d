"""tools/near_fraction_sweep.py: near_median's error for each share, on a hand-made frame."""
import pytest

from depthdet_ros.assets import default_model
from depthdet_ros.core import object_depth
from test_joint_tools import ChairFrame, R200, R50
from tool_scripts import load_tool


def test_sweep_reads_the_chair_until_the_share_passes_its_pixels():
    frames = ChairFrame()
    frames.class_names = None  # depth alone: the bundled detector's classes differ
    rows = load_tool('near_fraction_sweep').sweep(
        frames, [default_model('depth')], [0.3, 0.5, 0.9], default_model('detector'))
    assert object_depth.NEAR_FRACTION == 0.3  # restored
    assert [label for _, label, _ in rows] == ['near_median 0.3', 'robust', 'near_median 0.5',
                                               'near_median 0.9']
    oracle = {label: cells[2] for _, label, cells in rows}  # rendered depth, the GT box
    # The box (30 x 24 pixels) holds 12 columns at R50 (40 %) and 18 at R200. The nearest
    # 30 % and 50 % have their median at R50; the nearest 90 % (648 pixels, 288 at R50)
    # at R200. robust: the nearest slice holding 10 % is R50.
    for label in ('near_median 0.3', 'near_median 0.5', 'robust'):
        assert oracle[label].median_rel == pytest.approx(0.0, abs=1e-6), label
    assert oracle['near_median 0.9'].median_rel == pytest.approx((R200 - R50) / R50, rel=1e-5)
    assert all(cells[2].count == 1 for _, _, cells in rows)
