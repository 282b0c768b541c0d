"""debug_image drawing: the published objects, with their published alert state."""
import math

import numpy as np

from depthdet_ros.core.types import Box, Detection2D
from depthdet_ros.ros.message_layout import label_text, OutputObject
from depthdet_ros.ros.visualize import COLOR_ALERT, COLOR_OK, draw_objects


def _output(box, depth, alert_rules=(), track_id=None):
    return OutputObject(detection=Detection2D(box, 0.9, 0, 'chair'), depth=depth,
                        depth_variance=0.01, position=None, covariance=None, size=None,
                        track_id=track_id, alert_rules=alert_rules)


def test_boxes_are_red_by_the_published_alert_rules_and_labelled_as_markers():
    # A time-to-contact alert at 2.3 m is red although no per-frame proximity rule fired.
    closing = _output(Box(40, 60, 140, 200), 2.3, ('time_to_contact',), track_id=7)
    calm = _output(Box(200, 60, 300, 200), 4.0, track_id=8)
    canvas = draw_objects(np.zeros((240, 320, 3), np.uint8), [closing, calm])
    # Left edges of the boxes, below their labels.
    assert tuple(canvas[150, 40]) == COLOR_ALERT and tuple(canvas[150, 200]) == COLOR_OK
    assert label_text(closing) == 'chair 2.30 m #7'
    assert label_text(_output(Box(0, 0, 1, 1), math.nan)) == 'chair ? m'
