"""Synthetic datasets on disk: images, depth, masks and COCO annotations.

Layout of `depthdet synth dataset --out DIR --split SPLIT` (frame index i, 6 digits)::

    DIR/SPLIT/generator.json      how the split was made (seed, scene, sizes, ...)
    DIR/SPLIT/rgb/000000.png      RGB (or .jpg with --image-format jpg)
    DIR/SPLIT/depth/000000.png    z-depth, uint16 millimetres, 0 = no surface
                                  (or .npy float32 metres, NaN = no surface)
    DIR/SPLIT/instance/000000.png uint16: 0 = no object, else the annotation's instance_id
    DIR/SPLIT/class/000000.png    uint8: 0 = no object, else category_id (class id + 1)
    DIR/SPLIT/frames/000000.json  the frame's COCO image entry and annotations; written
                                  last, so its presence marks the frame complete
    DIR/SPLIT/annotations.json    COCO detection file assembled from frames/*.json

COCO: categories are CLASS_NAMES with id = class id + 1. Each image entry holds
file names, size, scene kind and the camera (K row-major, D, frame_id, and the 4x4
world-from-optical pose). Each annotation has bbox [x, y, w, h] of the visible part
(pixel edges), area = visible pixels, iscrowd 0, and the extra fields instance_id,
depth (median z of visible pixels, m), distance (|center3d|, m), center3d and
size3d (optical frame, m), orientation_xyzw, visibility, visible_pixels and
unoccluded_pixels.

Frames are pure functions of (seed, split, index), so an interrupted run resumes by
skipping complete frames and the result equals an uninterrupted run.
"""
import json
import os
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from depthdet_ros.sim.objects import CLASS_NAMES

FORMAT_VERSION = 1
IMAGE_FORMATS = ('png', 'jpg')
DEPTH_FORMATS = ('png16', 'npy')
# Annotation ids: image id * this + instance id (a frame holds fewer objects).
ANNOTATION_ID_STRIDE = 1000
_PENDING_WRITES = 4  # frames encoded in the background at most


@dataclass(frozen=True)
class DatasetConfig:
    """What a split is generated from; stored as generator.json."""

    seed: int
    frames: int
    split: str = 'train'
    scene: str = 'mixed'
    sizes: Tuple[Tuple[int, int], ...] = ((640, 480),)
    quality: str = 'fast'
    image_format: str = 'png'
    depth_format: str = 'png16'
    moving: bool = False  # each frame a moment of a sequence with moving objects

    def split_seed(self) -> int:
        """Seed of this split: the user seed mixed with the split name (stable hash)."""
        return int(self.seed) * 65536 + zlib.crc32(self.split.encode()) % 65536

    def identity(self) -> Dict:
        """Fields that must match for a resumed run to continue an existing split."""
        fields = asdict(self)
        fields.pop('frames')
        if not self.moving:
            fields.pop('moving')  # splits written before the option existed still match
        fields['sizes'] = [list(s) for s in self.sizes]
        fields['format_version'] = FORMAT_VERSION
        fields['class_names'] = list(CLASS_NAMES)
        return fields


@dataclass(frozen=True)
class DatasetSummary:
    """Result of a dataset run."""

    directory: Path
    frames_total: int
    frames_written: int
    frames_skipped: int
    seconds: float
    annotations: int

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0


def _name(index: int) -> str:
    return f'{index:06d}'


def _write_atomic(path: Path, text: str):
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def _imwrite(path: Path, image: np.ndarray, params=()):
    # Write under a temporary name so an interrupted run leaves no half file behind.
    tmp = path.with_name(path.stem + '.tmp' + path.suffix)
    if not cv2.imwrite(str(tmp), image, list(params)):
        raise OSError(f'could not write {path}')
    os.replace(tmp, path)


def frame_record(frame, config: DatasetConfig) -> Dict:
    """Return the COCO image entry and annotations of one rendered frame."""
    name = _name(frame.index)
    image = {
        'id': frame.index, 'file_name': f'rgb/{name}.{config.image_format}',
        'width': int(frame.camera.width), 'height': int(frame.camera.height),
        'depth_file': f'depth/{name}.{"npy" if config.depth_format == "npy" else "png"}',
        'instance_file': f'instance/{name}.png', 'class_file': f'class/{name}.png',
        'scene': frame.scene,
        'camera': {'K': [float(v) for v in np.asarray(frame.camera.K).reshape(-1)],
                   'D': [float(v) for v in frame.camera.D],
                   'frame_id': frame.camera.frame_id,
                   'world_from_optical': [float(v) for v in frame.camera_pose.reshape(-1)]},
    }
    annotations = []
    for obj in frame.objects:
        box = obj.box
        annotations.append({
            'id': frame.index * ANNOTATION_ID_STRIDE + obj.instance_id,
            'image_id': frame.index, 'category_id': obj.class_id + 1,
            'bbox': [box.x1, box.y1, box.width, box.height], 'area': obj.visible_pixels,
            'iscrowd': 0, 'instance_id': obj.instance_id, 'depth': obj.depth,
            'distance': obj.distance, 'center3d': [obj.center.x, obj.center.y, obj.center.z],
            'size3d': [obj.size.x, obj.size.y, obj.size.z],
            'orientation_xyzw': list(obj.orientation_xyzw), 'visibility': obj.visibility,
            'visible_pixels': obj.visible_pixels, 'unoccluded_pixels': obj.unoccluded_pixels})
    return {'image': image, 'annotations': annotations}


def _write_frame(directory: Path, frame, config: DatasetConfig):
    name = _name(frame.index)
    bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    if config.image_format == 'jpg':
        _imwrite(directory / 'rgb' / f'{name}.jpg', bgr, (cv2.IMWRITE_JPEG_QUALITY, 95))
    else:
        _imwrite(directory / 'rgb' / f'{name}.png', bgr)
    if config.depth_format == 'npy':
        tmp = directory / 'depth' / f'{name}.tmp.npy'
        np.save(tmp, frame.depth.astype(np.float32))
        os.replace(tmp, directory / 'depth' / f'{name}.npy')
    else:
        millimetres = np.nan_to_num(frame.depth * 1000.0, nan=0.0)
        millimetres[millimetres > 65535] = 0  # beyond the format's range: no reading
        _imwrite(directory / 'depth' / f'{name}.png', np.rint(millimetres).astype(np.uint16))
    _imwrite(directory / 'instance' / f'{name}.png', frame.instance_mask)
    _imwrite(directory / 'class' / f'{name}.png', frame.class_mask)
    _write_atomic(directory / 'frames' / f'{name}.json',
                  json.dumps(frame_record(frame, config), separators=(',', ':')))


def _check_or_store_config(directory: Path, config: DatasetConfig):
    stored_path = directory / 'generator.json'
    identity = config.identity()
    if stored_path.exists():
        try:
            stored = json.loads(stored_path.read_text())
        except ValueError as exc:
            raise ValueError(f'{stored_path} is not valid JSON ({exc}): delete it to start '
                             'the split again, or use another --out or --split') from None
        if stored != identity:
            changed = sorted(k for k in set(stored) | set(identity)
                             if stored.get(k) != identity.get(k))
            raise ValueError(f'{directory} was generated with other settings '
                             f'({", ".join(changed)}); use another --out or --split')
    else:
        _write_atomic(stored_path, json.dumps(identity, indent=2))


def assemble_coco(directory: Path, frames: int) -> Dict:
    """Collect frames/*.json of frames 0..frames-1 into one COCO dictionary."""
    images, annotations = [], []
    for index in range(frames):
        record = json.loads((directory / 'frames' / f'{_name(index)}.json').read_text())
        images.append(record['image'])
        annotations.extend(record['annotations'])
    generator = json.loads((directory / 'generator.json').read_text())
    return {
        'info': {'description': 'depthdet_ros synthetic dataset (MuJoCo)',
                 'version': str(FORMAT_VERSION), 'generator': generator},
        'licenses': [],
        'categories': [{'id': i + 1, 'name': name, 'supercategory': 'object'}
                       for i, name in enumerate(CLASS_NAMES)],
        'images': images,
        'annotations': annotations,
    }


def generate_dataset(out: Path, config: DatasetConfig,
                     progress: Optional[Callable[[int], None]] = None,
                     world=None) -> DatasetSummary:
    """Render the missing frames of a split, then write its annotations.json.

    `progress(n)` is called with the number of frames finished (written or skipped).
    """
    from depthdet_ros.sim.world import SimWorld, frame_layout
    if config.image_format not in IMAGE_FORMATS or config.depth_format not in DEPTH_FORMATS:
        raise ValueError('unknown image or depth format')
    directory = Path(out) / config.split
    for sub in ('rgb', 'depth', 'instance', 'class', 'frames'):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    _check_or_store_config(directory, config)
    missing = [i for i in range(config.frames)
               if not (directory / 'frames' / f'{_name(i)}.json').exists()]
    skipped = config.frames - len(missing)
    if progress and skipped:
        progress(skipped)
    start = time.perf_counter()
    if missing:
        own = world is None
        width = max(w for w, _ in config.sizes)
        height = max(h for _, h in config.sizes)
        world = world or SimWorld(width, height, quality=config.quality)
        pending: List[Future] = []
        try:
            # Encoding and writing run in a thread (OpenCV releases the GIL) while the
            # next frame renders.
            with ThreadPoolExecutor(max_workers=1) as writer:
                for index in missing:
                    layout = frame_layout(config.split_seed(), index, config.scene, config.sizes,
                                          config.moving)
                    frame = world.render(layout, index)
                    pending.append(writer.submit(_write_frame, directory, frame, config))
                    while len(pending) > _PENDING_WRITES or (pending and pending[0].done()):
                        pending.pop(0).result()
                        if progress:
                            progress(1)
                for future in pending:
                    future.result()
                    if progress:
                        progress(1)
        finally:
            if own:
                world.close()
    seconds = time.perf_counter() - start
    coco = assemble_coco(directory, config.frames)
    _write_atomic(directory / 'annotations.json', json.dumps(coco))
    return DatasetSummary(directory, config.frames, len(missing), skipped, seconds,
                          len(coco['annotations']))


def split_folder(path) -> Path:
    """Return the split folder of `path`: the folder itself, or that of its annotations.json."""
    path = Path(path)
    return path.parent if path.name == 'annotations.json' and path.is_file() else path


def unfinished_hint(directory: Path) -> str:
    """Return the advice for a split folder a run began but did not finish ('' if none)."""
    directory = Path(directory)
    if (directory / 'generator.json').is_file() or any((directory / 'frames').glob('*')):
        return ('; it holds an unfinished `depthdet synth dataset` run: run the same command '
                'again to finish it')
    return ''


def load_annotations(directory: Path) -> Dict:
    """Read a split's annotations.json (COCO)."""
    return json.loads((Path(directory) / 'annotations.json').read_text())


def parse_sizes(text: str) -> Tuple[Tuple[int, int], ...]:
    """Parse '640x480' or '640x480,320x240' into ((640, 480), ...)."""
    from depthdet_ros.arg_types import parse_size
    return tuple(parse_size(part, 16, 4096) for part in text.split(','))
