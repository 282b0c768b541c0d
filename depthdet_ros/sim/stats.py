"""Statistics of synthetic ground truth: objects per class, depth range, occlusion."""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from depthdet_ros.sim.objects import CLASS_NAMES

DEPTH_BINS_M = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, np.inf)
VISIBILITY_BINS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
# An object whose box covers more than this share of its image is "large": a person
# near enough to fill the view, which a detector must also learn.
LARGE_BOX_SHARE = 0.4


@dataclass(frozen=True)
class ObjectSample:
    """The per-object numbers the statistics need."""

    class_name: str
    depth: float
    visibility: float
    area: int
    box_share: float  # box area / image area


@dataclass(frozen=True)
class DatasetStats:
    """Summary of a set of frames."""

    frames: int
    objects: int
    per_class: Dict[str, int]
    large_per_class: Dict[str, int]  # box covering more than LARGE_BOX_SHARE of the image
    scenes: Dict[str, int]
    depth_min: float
    depth_median: float
    depth_max: float
    depth_histogram: Tuple[Tuple[float, float, int], ...]
    visibility_histogram: Tuple[Tuple[float, float, int], ...]
    occluded_share: float  # visibility < 0.99
    median_area: float


def samples_from_frames(frames: Iterable) -> Tuple[List[ObjectSample], Dict[str, int], int]:
    """Collect (object samples, frames per scene kind, frame count) from SimFrames."""
    samples, scenes, count = [], {}, 0
    for frame in frames:
        count += 1
        scenes[frame.scene] = scenes.get(frame.scene, 0) + 1
        image_area = float(frame.camera.width * frame.camera.height)
        samples += [ObjectSample(o.class_name, o.depth, o.visibility, o.visible_pixels,
                                 o.box.width * o.box.height / image_area)
                    for o in frame.objects]
    return samples, scenes, count


def samples_from_coco(coco: Dict) -> Tuple[List[ObjectSample], Dict[str, int], int]:
    """Collect (object samples, frames per scene kind, frame count) from a COCO dict."""
    names = {c['id']: c['name'] for c in coco['categories']}
    scenes: Dict[str, int] = {}
    for image in coco['images']:
        scenes[image.get('scene', '?')] = scenes.get(image.get('scene', '?'), 0) + 1
    # The box share needs the image size and the box; a split without them (not written
    # by `synth dataset`) still gets every other figure.
    image_area = {image.get('id'): image.get('width', 0) * image.get('height', 0)
                  for image in coco['images']}

    def box_share(annotation):
        area, box = image_area.get(annotation.get('image_id'), 0), annotation.get('bbox')
        return box[2] * box[3] / area if area and box else float('nan')

    samples = [ObjectSample(names[a['category_id']], float(a['depth']), float(a['visibility']),
                            int(a['area']), box_share(a)) for a in coco['annotations']]
    return samples, scenes, len(coco['images'])


def _histogram(values, edges) -> Tuple[Tuple[float, float, int], ...]:
    counts = []
    for i, (low, high) in enumerate(zip(edges, edges[1:])):
        last = i == len(edges) - 2
        inside = (values >= low) & ((values <= high) if last else (values < high))
        counts.append((float(low), float(high), int(np.count_nonzero(inside))))
    return tuple(counts)


def compute_stats(samples: Sequence[ObjectSample], scenes: Dict[str, int],
                  frames: int) -> DatasetStats:
    """Summarise object samples."""
    per_class = {name: 0 for name in CLASS_NAMES}
    large_per_class = dict(per_class)
    for sample in samples:
        per_class[sample.class_name] = per_class.get(sample.class_name, 0) + 1
        if sample.box_share > LARGE_BOX_SHARE:
            large_per_class[sample.class_name] = large_per_class.get(sample.class_name, 0) + 1
    depth = np.array([s.depth for s in samples], dtype=np.float64)
    visibility = np.array([s.visibility for s in samples], dtype=np.float64)
    area = np.array([s.area for s in samples], dtype=np.float64)
    empty = depth.size == 0
    return DatasetStats(
        frames=frames, objects=len(samples), per_class=per_class,
        large_per_class=large_per_class, scenes=dict(scenes),
        depth_min=float('nan') if empty else float(depth.min()),
        depth_median=float('nan') if empty else float(np.median(depth)),
        depth_max=float('nan') if empty else float(depth.max()),
        depth_histogram=_histogram(depth, DEPTH_BINS_M),
        visibility_histogram=_histogram(visibility, VISIBILITY_BINS),
        occluded_share=float('nan') if empty else float(np.mean(visibility < 0.99)),
        median_area=float('nan') if empty else float(np.median(area)))


def format_stats(stats: DatasetStats) -> str:
    """Render statistics as a plain-text report."""
    lines = [f'frames: {stats.frames} ({", ".join(f"{k} {v}" for k, v in stats.scenes.items())})',
             f'objects: {stats.objects} ({stats.objects / max(stats.frames, 1):.1f} per frame), '
             f'median visible area {stats.median_area:.0f} px',
             f'objects per class (per frame; with a box over {LARGE_BOX_SHARE:.0%} of the '
             'image):']
    width = max(len(name) for name in stats.per_class)
    frames = max(stats.frames, 1)
    lines += [f'  {name:<{width}} {count:6d}  {count / frames:5.2f}  '
              f'{stats.large_per_class.get(name, 0):5d}'
              for name, count in stats.per_class.items()]
    lines.append(f'depth (median z of visible pixels): min {stats.depth_min:.2f} m, '
                 f'median {stats.depth_median:.2f} m, max {stats.depth_max:.2f} m')
    lines += [f'  {low:5.1f} - {high:5.1f} m  {count:6d}'
              for low, high, count in stats.depth_histogram]
    lines.append(f'visibility (visible / unoccluded pixels); occluded (< 0.99): '
                 f'{100 * stats.occluded_share:.0f}%')
    lines += [f'  {low:4.2f} - {high:4.2f}  {count:6d}'
              for low, high, count in stats.visibility_histogram]
    return '\n'.join(lines)
