"""Copies of a camera's images (core.copies), by hand-written streams."""
from depthdet_ros.core.copies import COPIES_KEPT, COPY, COPY_WINDOW_S, LATE_COPY, NEW, \
    RecentImages, STAMP_REPEATED


def classify(stream):
    recent = RecentImages()
    return [recent.classify(stamp, 'cam', identity, at) for stamp, identity, at in stream]


def test_a_second_publishers_copies_at_once_and_frames_late():
    assert classify([(1, 'a', 0.0), (1, 'a', 0.01),   # at once: of the newest
                     (2, 'b', 0.1), (3, 'c', 0.2), (2, 'b', 0.21),  # a frame late
                     (1, 'a', 0.22)]) == [  # two frames late
        NEW, COPY, NEW, NEW, LATE_COPY, LATE_COPY]
    # Review: a relay three frames late or more (a network) made late frames again.
    stream = [(k, str(k), k / 30) for k in range(COPIES_KEPT)] + [(0, '0', 0.99)]
    assert classify(stream)[-1] == LATE_COPY
    stream = [(k, str(k), k / 60) for k in range(COPIES_KEPT + 1)] + [(0, '0', 0.6)]
    assert classify(stream)[-1] == NEW  # more than COPIES_KEPT newer: forgotten


def test_the_same_image_later_than_the_window_is_a_replay():
    assert classify([(1, 'a', 0.0), (1, 'a', COPY_WINDOW_S), (1, 'a', 2 * COPY_WINDOW_S + 0.01),
                     (1, 'a', 2 * COPY_WINDOW_S + 0.02)]) == [NEW, COPY, NEW, COPY]


def test_another_image_with_the_stamp_before_is_new_and_said():
    # A camera that leaves the stamp 0, its images delivered twice (review: keyed by the
    # stamp alone, a late copy would be a repeated stamp, tracked again).
    assert classify([(0, 'a', 0.0), (0, 'b', 0.1), (0, 'a', 0.11), (0, 'b', 0.12),
                     (0, 'c', 0.2), (5, 'c', 0.3)]) == [
        NEW, STAMP_REPEATED, LATE_COPY, COPY, STAMP_REPEATED, NEW]


def test_the_frame_id_tells_cameras_apart():
    recent = RecentImages()
    assert recent.classify(1, 'left', 'a', 0.0) == NEW
    assert recent.classify(1, 'right', 'a', 0.0) == NEW
