"""Frame sources the trainers read: RGB with depth (depth net) or with boxes (detector).

`ArrayFrames` holds frames in memory (tests, small experiments); `SimDataset` reads a
split written by `depthdet synth dataset` (format in depthdet_ros/sim/dataset.py). Both
give `load(i)` -> (rgb, depth) and `load_boxes(i)` -> BoxSample.

Boxes too small to learn from or to detect at the detector's input (`LabelFilter`) are
dropped from training targets and from the ground truth of every evaluation alike.
"""
from dataclasses import dataclass
import json
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from depthdet_ros.sim.dataset import split_folder, unfinished_hint
from depthdet_ros.train.augment import BoxSample, fit_longer_side


class DepthFrames(Protocol):
    """Indexed RGB-D frames: rgb HxWx3 uint8, depth HxW float32 metres (NaN or 0 invalid)."""

    def __len__(self) -> int:
        ...

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        ...


class BoxFrames(Protocol):
    """Indexed RGB frames with class-labelled boxes (xyxy pixels)."""

    class_names: Sequence[str]

    def __len__(self) -> int:
        ...

    def load_boxes(self, index: int) -> BoxSample:
        ...


class ArrayFrames:
    """Frames held in memory; depth and boxes are optional per use."""

    def __init__(self, rgbs: Sequence[np.ndarray], depths: Optional[Sequence[np.ndarray]] = None,
                 boxes: Optional[Sequence[np.ndarray]] = None,
                 classes: Optional[Sequence[np.ndarray]] = None,
                 class_names: Sequence[str] = (),
                 cameras: Optional[Sequence[np.ndarray]] = None):
        self.cameras = list(cameras) if cameras is not None else None
        self.rgbs = list(rgbs)
        self.depths = list(depths) if depths is not None else None
        self.boxes = list(boxes) if boxes is not None else None
        self.classes = list(classes) if classes is not None else None
        self.class_names = tuple(class_names)

    def __len__(self) -> int:
        return len(self.rgbs)

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """RGB and depth of frame `index`."""
        return self.rgbs[index], self.depths[index]

    def camera_matrix(self, index: int) -> Optional[np.ndarray]:
        """3x3 intrinsics K of frame `index`, or None when not given."""
        return None if self.cameras is None else np.asarray(self.cameras[index], np.float64)

    def load_boxes(self, index: int) -> BoxSample:
        """RGB, boxes and classes of frame `index`."""
        boxes = np.asarray(self.boxes[index], np.float64).reshape(-1, 4)
        return BoxSample(self.rgbs[index], boxes, np.asarray(self.classes[index], np.int64))


class Subset:
    """The first `count` frames of a source (all when count is 0 or larger)."""

    def __init__(self, source, count: int):
        self.source = source
        self.count = len(source) if count <= 0 else min(count, len(source))
        self.class_names = getattr(source, 'class_names', ())

    def __len__(self) -> int:
        return self.count

    def load(self, index: int):
        """See DepthFrames.load."""
        return self.source.load(self._check(index))

    def load_boxes(self, index: int) -> BoxSample:
        """See BoxFrames.load_boxes."""
        return self.source.load_boxes(self._check(index))

    def objects(self, index: int):
        """Per-object ground truth, where the source has it (SimDataset.objects)."""
        return self.source.objects(self._check(index))

    def camera_matrix(self, index: int):
        """Intrinsics of frame `index`, where the source has them."""
        return self.source.camera_matrix(self._check(index))

    def instances(self, index: int):
        """Instance-id image of frame `index`, where the source has one."""
        return self.source.instances(self._check(index))

    def _check(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return index


class ConcatFrames:
    """Several sources one after another (e.g. dataset shards rendered in parallel)."""

    def __init__(self, sources: Sequence):
        if not sources:
            raise ValueError('no frame sources')
        names = [tuple(getattr(s, 'class_names', ())) for s in sources]
        if any(n != names[0] for n in names):
            raise ValueError('the sources name different classes')
        self.sources = list(sources)
        self.class_names = names[0]
        self._starts = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = int(np.searchsorted(self._starts, index, side='right')) - 1
        return self.sources[k], index - int(self._starts[k])

    def load(self, index: int):
        """See DepthFrames.load."""
        source, i = self._locate(index)
        return source.load(i)

    def load_boxes(self, index: int) -> BoxSample:
        """See BoxFrames.load_boxes."""
        source, i = self._locate(index)
        return source.load_boxes(i)

    def objects(self, index: int):
        """Per-object ground truth of the source frame."""
        source, i = self._locate(index)
        return source.objects(i)

    def camera_matrix(self, index: int):
        """Intrinsics of the source frame."""
        source, i = self._locate(index)
        return source.camera_matrix(i)

    def instances(self, index: int):
        """Instance-id image of the source frame."""
        source, i = self._locate(index)
        return source.instances(i)


@dataclass(frozen=True)
class LabelFilter:
    """Which annotated objects count: enough visible pixels and a box of some size."""

    min_visible_pixels: int = 64
    min_side_px: float = 6.0

    def keep(self, annotation: Dict) -> bool:
        """Whether a COCO annotation of the sim's format is kept."""
        _, _, w, h = annotation['bbox']
        return annotation.get('visible_pixels', w * h) >= self.min_visible_pixels and \
            min(w, h) >= self.min_side_px


class SimDataset:
    """One split of a `depthdet synth dataset` folder (DIR/SPLIT with annotations.json).

    Frames are indexed 0..N-1 in image-id order. `objects(i)` gives the kept annotations
    of frame i (with the sim's per-object ground truth: depth, center3d, visibility ...).
    """

    def __init__(self, directory, label_filter: LabelFilter = LabelFilter()):
        self.directory = split_folder(directory)
        path = self.directory / 'annotations.json'
        if not path.is_file():
            raise ValueError(f'{path} not found: expected a split folder written by '
                             '`depthdet synth dataset` (DIR/SPLIT)'
                             + unfinished_hint(self.directory))
        coco = json.loads(path.read_text())
        categories = sorted(coco['categories'], key=lambda c: c['id'])
        if [c['id'] for c in categories] != list(range(1, len(categories) + 1)):
            raise ValueError(f'{path}: category ids must be 1..N')
        self.class_names = tuple(c['name'] for c in categories)
        self.images = sorted(coco['images'], key=lambda image: image['id'])
        by_image: Dict[int, List[Dict]] = {image['id']: [] for image in self.images}
        for annotation in coco['annotations']:
            if label_filter.keep(annotation):
                by_image[annotation['image_id']].append(annotation)
        self._objects = [by_image[image['id']] for image in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def rgb(self, index: int) -> np.ndarray:
        """HxWx3 uint8 RGB of frame `index`."""
        path = self.directory / self.images[index]['file_name']
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f'cannot read {path}')
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def depth(self, index: int) -> np.ndarray:
        """Return the HxW float32 z-depth in metres, NaN where no surface."""
        path = self.directory / self.images[index]['depth_file']
        if path.suffix == '.npy':
            return np.load(path).astype(np.float32)
        millimetres = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if millimetres is None or millimetres.dtype != np.uint16:
            raise OSError(f'cannot read {path} as a 16-bit depth PNG')
        depth = millimetres.astype(np.float32) / 1000.0
        depth[millimetres == 0] = np.nan
        return depth

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """RGB and depth of frame `index`."""
        return self.rgb(index), self.depth(index)

    def instances(self, index: int) -> np.ndarray:
        """Return the HxW uint16 instance ids of frame `index` (0: none; see objects())."""
        path = self.directory / self.images[index]['instance_file']
        ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if ids is None or ids.dtype != np.uint16 or ids.ndim != 2:
            raise OSError(f'cannot read {path} as a 16-bit instance image')
        return ids

    def objects(self, index: int) -> List[Dict]:
        """Kept annotations of frame `index`."""
        return self._objects[index]

    def load_boxes(self, index: int) -> BoxSample:
        """RGB, kept boxes (xyxy pixels) and class ids of frame `index`."""
        objects = self._objects[index]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in
                          (o['bbox'] for o in objects)], np.float64).reshape(-1, 4)
        classes = np.array([o['category_id'] - 1 for o in objects], np.int64)
        return BoxSample(self.rgb(index), boxes, classes)

    def camera_matrix(self, index: int) -> np.ndarray:
        """3x3 intrinsics K of frame `index`."""
        return np.asarray(self.images[index]['camera']['K'], np.float64).reshape(3, 3)


class FittedBoxFrames:
    """Box frames resized once to a longer side of `size` and kept in memory.

    The detector trains at `size`: decoding and resizing each full frame for every mosaic
    tile would cost about as much as the network itself on a CPU.
    """

    def __init__(self, source: BoxFrames, size: int):
        self.source = source
        self.size = size
        self.class_names = source.class_names
        self._cache: Dict[int, BoxSample] = {}

    def __len__(self) -> int:
        return len(self.source)

    def load_boxes(self, index: int) -> BoxSample:
        """Return frame `index` resized (cached after the first call)."""
        if index not in self._cache:
            self._cache[index] = fit_longer_side(self.source.load_boxes(index), self.size)
        return self._cache[index]
