"""Copies of a camera's images (core.copies), by hand-written streams."""
from depthdet_ros.core.copies import COPY, COPY_WINDOW_S, LATE_COPY, NEW, RecentImages, \
    STAMP_REPEATED


def classify(stream):
    recent = RecentImages()
    return [recent.classify(stamp, 'cam', identity, at) for stamp, identity, at in stream]


def test_a_second_publishers_copies_at_once_and_a_frame_or_two_late():
    assert classify([(1, 'a', 0.0), (1, 'a', 0.01),   # at once: of the newest
                     (2, 'b', 0.1), (3, 'c', 0.2), (2, 'b', 0.21),  # a frame late
                     (1, 'a', 0.22),  # two frames late: still among the last three
                     (4, 'd', 0.3), (1, 'a', 0.31)]) == [  # three late: a replay
        NEW, COPY, NEW, NEW, LATE_COPY, LATE_COPY, NEW, NEW]


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
