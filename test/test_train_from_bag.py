"""An RGB-D bag becomes depth training data with a held-out time range."""
import numpy as np
import pytest

from depthdet_ros.train.data import SimDataset
from depthdet_ros.train.from_bag import convert

pytest.importorskip('mujoco')


@pytest.fixture(scope='module')
def rgbd_bag(tmp_path_factory):
    import subprocess
    import sys
    out = tmp_path_factory.mktemp('bag') / 'rgbd'
    subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'synth', 'bag', '--out', str(out),
                    '--frames', '12', '--rate', '4', '--size', '320x240', '--seed', '3'],
                   check=True, capture_output=True)
    return str(out)


def test_bag_frames_split_by_time_with_depth_and_intrinsics(rgbd_bag, tmp_path):
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval.bag_input import (index_bag, plan_frames, read_frames, select_topics,
                                             stamp_tolerance_ns)
    counts, skipped = convert(rgbd_bag, str(tmp_path / 'data'), val_seconds=0.6)
    # 12 frames at 4 Hz span 2.75 s: stamps within the last 0.6 s are the last 3 frames.
    assert counts == {'train': 9, 'val': 3} and skipped == {}
    train, val = SimDataset(tmp_path / 'data' / 'train'), SimDataset(tmp_path / 'data' / 'val')
    assert (len(train), len(val)) == (9, 3)
    # The first training frame holds the bag's first image and depth (to the millimetre).
    from rosbags.rosbag2 import Reader
    with Reader(rgbd_bag) as reader:
        topic_types = {c.topic: c.msgtype for c in reader.connections}
    store = make_typestore()
    topics = select_topics(topic_types)
    index = index_bag(rgbd_bag, topics, store)
    first = next(read_frames(rgbd_bag, index, plan_frames(index, stamp_tolerance_ns(20)), store))
    rgb, depth = train.load(0)
    np.testing.assert_array_equal(rgb, first.rgb)
    valid = np.isfinite(first.gt_depth)
    np.testing.assert_allclose(depth[valid], first.gt_depth[valid], atol=0.0006)
    np.testing.assert_allclose(train.camera_matrix(0), first.camera.K)


def test_a_recording_is_evaluated_for_depth_alone(rgbd_bag, tmp_path):
    import math
    from depthdet_ros.assets import default_model
    from depthdet_ros.train.evaluate import evaluate_models
    convert(rgbd_bag, str(tmp_path / 'data'), val_seconds=0.6)
    report = evaluate_models(default_model('detector'), default_model('depth'),
                             SimDataset(tmp_path / 'data' / 'val'))
    assert report.frames == 3
    assert 0 < report.depth['rel'] < 10 and 0 <= report.depth['delta1'] <= 1
    assert math.isnan(report.map50)  # no boxes in an RGB-D recording


@pytest.mark.parametrize('kind, reason', [
    ('other_frame', 'depth map in another frame_id than the image'),
    ('half_size', 'depth map of another size'),
    ('info_other_frame', 'camera_info in another frame_id than the image'),
    ('rvl', "depth map unreadable (the first: ImageDecodeError: compressed depth format "
     "'32FC1; compressedDepth rvl': RVL is not supported; record the png compressedDepth "
     "format or raw depth)")])
def test_depth_not_of_the_image_pixels_is_skipped_and_said(kind, reason, tmp_path):
    # A depth camera's own view (its frame_id) or a map of another size is no per-pixel
    # target for the image, another camera's K no target camera, an unreadable map none
    # at all (outsider round 49: those two were written, or dropped unsaid): every frame
    # is skipped, and the refusal names why.
    from depthdet_ros.eval.bag_input import BagInputError
    from eval_bags import FrameSpec, pinhole, write_eval_bag
    camera = pinhole(64, 48)
    depth = np.full((48, 64), 2.0, np.float32)
    frames = [FrameSpec(np.full((48, 64, 3), 20 * i, np.uint8),
                        depth[::2, ::2] if kind == 'half_size' else depth) for i in range(8)]
    bag = write_eval_bag(tmp_path / 'bag', frames, camera,
                         depth_frame_id='depth_optical' if kind == 'other_frame' else None,
                         info_frame_id='depth_optical' if kind == 'info_other_frame' else None,
                         depth_encoding='compressedDepth rvl' if kind == 'rvl' else '32FC1')
    with pytest.raises(BagInputError) as refused:
        convert(bag, str(tmp_path / 'data'), val_seconds=0.25)
    assert str(refused.value).endswith(
        f'0 training and 0 validation frames could be used; skipped, {reason}: 8; both '
        'splits need frames')


def test_depth_stamped_apart_says_how_far_and_takes_a_tolerance(tmp_path):
    # Outsider round 49: depth stamped 30 ms after the colour (a 15 fps depth stream) was
    # refused with the fixed 20 ms, without saying how far off, and no option to widen it.
    from depthdet_ros.eval.bag_input import BagInputError
    from eval_bags import FrameSpec, pinhole, write_eval_bag
    frames = [FrameSpec(np.full((48, 64, 3), 20 * i, np.uint8),
                        np.full((48, 64), 2.0, np.float32), depth_offset_ns=30_000_000)
              for i in range(8)]
    bag = write_eval_bag(tmp_path / 'bag', frames, pinhole(64, 48))
    with pytest.raises(BagInputError) as refused:
        convert(bag, str(tmp_path / 'data'), val_seconds=0.25)
    assert str(refused.value).endswith(
        'no image on /camera/image has a depth map: none of the 8 messages of /camera/depth '
        'is stamped within 20 ms of an image evaluated (the nearest are 30.0 ms off, median '
        'over the images): give a larger --stamp-tolerance if they belong together')
    counts, skipped = convert(bag, str(tmp_path / 'data'), val_seconds=0.25, tolerance_ms=40)
    assert counts == {'train': 5, 'val': 3} and skipped == {}


def test_an_image_recorded_twice_is_written_once(tmp_path):
    # Two publishers on the image topic: each copy would be a second, identical training
    # sample (and the dataset's ids, the image ordinals, would skip).
    from eval_bags import FrameSpec, pinhole, write_eval_bag
    frames = [FrameSpec(np.full((48, 64, 3), 20 * i, np.uint8),
                        np.full((48, 64), 2.0, np.float32)) for i in range(8)]
    bag = write_eval_bag(tmp_path / 'bag', frames, pinhole(64, 48), repeated_images={2: 0, 6: 0})
    counts, skipped = convert(bag, str(tmp_path / 'data'), val_seconds=0.25)
    assert counts == {'train': 5, 'val': 3}
    assert skipped == {'a copy of an image message (two publishers)': 2}


def test_a_copy_skipped_keeps_no_depth_map_in_memory(tmp_path):
    # Every image recorded twice: each copy's plan claims its frame's depth map too, and
    # the skipped copy never gave its claim back: every map stayed to the end of the bag
    # (review). The reader's own maps are what is left in its frame once all are read.
    from eval_bags import FrameSpec, pinhole, write_eval_bag
    frames = [FrameSpec(np.full((48, 64, 3), 20 * i, np.uint8),
                        np.full((48, 64), 2.0, np.float32)) for i in range(8)]
    bag = write_eval_bag(tmp_path / 'bag', frames, pinhole(64, 48),
                         repeated_images={k: 0 for k in range(8)})
    reading, index = _reading(bag)
    held = []
    for frame in reading:
        assert frame.gt_depth is not None
        held.append(len(reading.gi_frame.f_locals['depth_raw']))
    assert index.repeated_images == 8
    assert held[-1] == 0 and max(held) <= 1, held


def _reading(bag):
    """Read an eval bag's frames as depthdet eval does: (the generator, the bag's index)."""
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval.bag_input import (index_bag, open_reader, plan_frames, read_frames,
                                             select_topics, stamp_tolerance_ns)
    reader = open_reader(bag)
    topics = select_topics({c.topic: c.msgtype for c in reader.connections})
    reader.close()
    store = make_typestore()
    index = index_bag(bag, topics, store)
    return read_frames(bag, index, plan_frames(index, stamp_tolerance_ns(20)), store), index


def _read_all(bag):
    reading, index = _reading(bag)
    return list(reading), index


def test_copies_are_told_by_record_time_and_data(tmp_path):
    from eval_bags import FrameSpec, pinhole, write_eval_bag
    frames = [FrameSpec(np.full((48, 64, 3), 10 * i, np.uint8),
                        np.full((48, 64), 2.0, np.float32)) for i in range(20)]
    # Frame 0's image again 0.5 s later by the record time: a copy; 1.5 s later: a
    # replay (the node's window is 1 s of arrival, whatever the stamps say).
    for late, repeated, read in ((5, 1, 20), (15, 0, 21)):
        read_frames, index = _read_all(write_eval_bag(
            tmp_path / f'late{late}', frames, pinhole(64, 48), repeated_images={0: late}))
        assert (index.repeated_images, len(read_frames)) == (repeated, read), late
    # Frame 1's image under frame 0's stamp, the same size, other pixels: a repeated
    # stamp (read), no copy.
    read_frames, index = _read_all(write_eval_bag(tmp_path / 'restamped', frames,
                                                  pinhole(64, 48), restamped_images={1: 0}))
    assert (index.repeated_images, len(read_frames)) == (0, 20)
