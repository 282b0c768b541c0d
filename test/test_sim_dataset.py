"""`depthdet synth dataset / stats / preview` on a few small frames."""
import json

import cv2
import numpy as np

from depthdet_ros.cli import main
from depthdet_ros.sim.objects import CLASS_NAMES

ARGS = ['--frames', '4', '--seed', '5', '--size', '96x72']


def test_dataset_files_coco_and_resume(tmp_path, capsys):
    out = tmp_path / 'data'
    assert main(['synth', 'dataset', '--out', str(out), *ARGS]) == 0
    assert 'frames/s' in capsys.readouterr().out
    split = out / 'train'
    coco = json.loads((split / 'annotations.json').read_text())
    assert [c['name'] for c in coco['categories']] == list(CLASS_NAMES)
    assert [c['id'] for c in coco['categories']] == list(range(1, len(CLASS_NAMES) + 1))
    assert [image['id'] for image in coco['images']] == [0, 1, 2, 3]
    assert coco['annotations'], 'expected some objects in four frames'
    for image in coco['images']:
        rgb = cv2.imread(str(split / image['file_name']))
        depth = cv2.imread(str(split / image['depth_file']), cv2.IMREAD_UNCHANGED)
        instance = cv2.imread(str(split / image['instance_file']), cv2.IMREAD_UNCHANGED)
        classes = cv2.imread(str(split / image['class_file']), cv2.IMREAD_UNCHANGED)
        assert rgb.shape == (72, 96, 3) and (image['width'], image['height']) == (96, 72)
        assert depth.dtype == np.uint16 and instance.dtype == np.uint16
        assert classes.dtype == np.uint8
        assert len(image['camera']['K']) == 9
        for ann in (a for a in coco['annotations'] if a['image_id'] == image['id']):
            mask = instance == ann['instance_id']
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(mask)
            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert ann['area'] == mask.sum() and ann['iscrowd'] == 0
            assert np.all(classes[mask] == ann['category_id'])
            # 16-bit millimetres round the float depth.
            assert abs(np.median(depth[mask]) / 1000.0 - ann['depth']) < 0.002
            assert len(ann['center3d']) == 3 and 0 < ann['visibility'] <= 1

    # An interrupted run (frames 1 and 2 incomplete) resumes to the same result.
    before = (split / 'annotations.json').read_text()
    (split / 'frames' / '000001.json').unlink()
    (split / 'frames' / '000002.json').unlink()
    assert main(['synth', 'dataset', '--out', str(out), *ARGS]) == 0
    assert '2 rendered, 2 already there' in capsys.readouterr().out
    assert (split / 'annotations.json').read_text() == before

    # The same folder with other settings is refused.
    assert main(['synth', 'dataset', '--out', str(out), '--frames', '4', '--seed', '6',
                 '--size', '96x72']) == 2
    assert 'seed' in capsys.readouterr().err

    assert main(['synth', 'stats', str(split)]) == 0
    report = capsys.readouterr().out
    assert 'objects per class' in report and 'visibility' in report


def test_moving_frames_are_recorded_in_the_split_settings(tmp_path, capsys):
    out = tmp_path / 'data'
    assert main(['synth', 'dataset', '--out', str(out), *ARGS, '--moving']) == 0
    generator = json.loads((out / 'train' / 'generator.json').read_text())
    assert generator['moving'] is True
    assert json.loads((out / 'train' / 'annotations.json').read_text())['annotations']
    # A still split does not record the option: splits written before it resume.
    assert main(['synth', 'dataset', '--out', str(out), '--split', 'still', *ARGS]) == 0
    assert 'moving' not in json.loads((out / 'still' / 'generator.json').read_text())
    capsys.readouterr()
    assert main(['synth', 'dataset', '--out', str(out), '--split', 'still', *ARGS,
                 '--moving']) == 2
    assert 'moving' in capsys.readouterr().err


def test_stats_count_objects_whose_box_covers_much_of_the_image():
    """`synth stats`: large boxes per class (a near person filling the view)."""
    from depthdet_ros.sim.stats import compute_stats, format_stats, samples_from_coco
    coco = {'categories': [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'chair'}],
            'images': [{'id': 0, 'width': 100, 'height': 50, 'scene': 'room'},
                       {'id': 1, 'width': 200, 'height': 100, 'scene': 'room'}],
            'annotations': [
                # 60x40 of 100x50: 0.48 of the image; the same box in a 4x larger one: 0.12.
                {'image_id': 0, 'category_id': 1, 'bbox': [0, 0, 60, 40], 'depth': 1.0,
                 'visibility': 1.0, 'area': 2000},
                {'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 60, 40], 'depth': 3.0,
                 'visibility': 1.0, 'area': 2000},
                # 0.4 exactly is not more than 0.4.
                {'image_id': 1, 'category_id': 2, 'bbox': [0, 0, 100, 80], 'depth': 2.0,
                 'visibility': 1.0, 'area': 5000}]}
    stats = compute_stats(*samples_from_coco(coco))
    assert stats.large_per_class['person'] == 1 and stats.large_per_class['chair'] == 0
    # person: 2 objects in 2 frames, 1 per frame, 1 large.
    assert '  person        2   1.00      1' in format_stats(stats)


def test_npy_depth_and_jpg_images(tmp_path):
    out = tmp_path / 'data'
    assert main(['synth', 'dataset', '--out', str(out), '--frames', '1', '--seed', '1',
                 '--size', '64x48', '--split', 'val', '--image-format', 'jpg',
                 '--depth-format', 'npy']) == 0
    depth = np.load(out / 'val' / 'depth' / '000000.npy')
    assert depth.dtype == np.float32 and depth.shape == (48, 64)
    assert (out / 'val' / 'rgb' / '000000.jpg').exists()


def test_preview_picture(tmp_path, capsys):
    out = tmp_path / 'preview.png'
    assert main(['synth', 'preview', '--out', str(out), '--frames', '2', '--size', '96x72',
                 '--quality', 'fast']) == 0
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] == 2 * 2 * 480
