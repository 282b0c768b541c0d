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
    # Another camera's image under the same stamp is no repeated stamp of this one's.
    recent = RecentImages()
    assert recent.classify(1, 'left', 'a', 0.0) == NEW
    assert recent.classify(1, 'right', 'b', 0.01) == NEW


def test_the_memory_in_figures():
    # Written out, not from the constants: a relay 10 frames late at 30 Hz is a copy,
    # and the same image 1.5 s later a replay (a test built from the constants would
    # follow any change of them).
    stream = [(k, str(k), k / 30) for k in range(12)] + [(1, '1', 11 / 30 + 0.001)]
    assert classify(stream)[-1] == LATE_COPY
    assert classify([(1, 'a', 0.0), (1, 'a', 1.5)]) == [NEW, NEW]
    assert classify([(1, 'a', 0.0), (1, 'a', 0.95)]) == [NEW, COPY]


def test_a_replayed_image_is_remembered_as_the_newest_arrival():
    # K replayed after the window is remembered from then: 29 images later and one more,
    # the oldest forgotten is another image, and a copy of the replay is still late.
    stream = [(0, 'K', 0.0)] + [(k, str(k), 0.5 * k / 29) for k in range(1, 30)]
    stream += [(0, 'K', 1.5), (99, 'X', 1.51), (0, 'K', 1.52)]
    assert classify(stream)[-3:] == [NEW, NEW, LATE_COPY]
