"""Write test/data/bundled_scene.{png,json}: one held-out frame for test_bundled_models.

usage: python tools/make_scene_asset.py SPLIT_DIR INDEX OUT_PREFIX

The JSON holds the frame's kept objects (class, COCO bbox, sim depth), its camera matrix K
(the test runs the pipeline with it, so a focal-aware depth net is scaled to this camera)
and its depth map block-averaged to 40x30 (30x40 portrait) in integer millimetres (small
enough to commit).
"""
import json
import shutil
import sys

import numpy as np

from depthdet_ros.train.data import SimDataset

GRID = (30, 40)  # rows, columns of the stored depth (swapped for a portrait frame)


def block_mean(depth, rows, cols):
    """Mean of the finite values in each of rows x cols blocks (NaN where none)."""
    h, w = depth.shape
    blocks = depth[:h - h % rows, :w - w % cols].reshape(rows, h // rows, cols, w // cols)
    return np.nanmean(blocks, axis=(1, 3))


def main(argv):
    split, index, prefix = argv[0], int(argv[1]), argv[2]
    dataset = SimDataset(split)
    camera_matrix = dataset.camera_matrix(index)
    if camera_matrix is None:
        sys.exit(f'{split} frame {index} has no camera matrix: the scene check runs with '
                 'the camera (use a `depthdet synth dataset` split)')
    shutil.copyfile(dataset.directory / dataset.images[index]['file_name'], prefix + '.png')
    depth = dataset.depth(index)
    rows, cols = GRID if depth.shape[1] >= depth.shape[0] else GRID[::-1]
    if depth.shape[0] % rows or depth.shape[1] % cols:
        # The test resizes the whole prediction onto the grid: blocks must tile the image.
        sys.exit(f'{split} frame {index} is {depth.shape[1]}x{depth.shape[0]}: pick a frame '
                 f'that {cols}x{rows} blocks tile (640x480, 480x640, 640x360 ...)')
    depth = block_mean(depth, rows, cols)
    objects = [{'category_id': o['category_id'], 'class_name':
                dataset.class_names[o['category_id'] - 1], 'bbox': o['bbox'],
                'depth': o['depth'], 'visibility': o['visibility']}
               for o in dataset.objects(index)]
    record = {'source': f'{split} frame {index}', 'objects': objects,
              'camera_matrix': camera_matrix.tolist(),
              'depth_mm': np.rint(depth * 1000).astype(int).tolist()}
    with open(prefix + '.json', 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
