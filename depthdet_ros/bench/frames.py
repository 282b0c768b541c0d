"""The benchmark's input: a synthetic camera frame as a sensor_msgs/Image would carry it."""
from typing import NamedTuple

ENCODINGS = ('rgb8', 'bgr8')


class RawFrame(NamedTuple):
    """The fields of sensor_msgs/Image that decoding reads (no ROS needed)."""

    encoding: str
    height: int
    width: int
    step: int
    data: bytes


def synthetic_rgb(width, height, seed=0):
    """Return an HxWx3 uint8 scene: a shaded floor and wall with a few textured boxes.

    Inference time does not depend on the picture; the structure keeps depth maps and
    detections from degenerate all-equal inputs.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[...] = (90.0 + 80.0 * ys / height)[..., None] * np.array([1.0, 0.95, 0.85])
    for _ in range(6):
        w = int(rng.integers(width // 10, width // 3))
        h = int(rng.integers(height // 10, height // 3))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        image[y:y + h, x:x + w] = rng.integers(30, 230, 3)
    image += rng.normal(0.0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def raw_frame(rgb, encoding='rgb8'):
    """Pack an RGB array as the bytes of an rgb8 or bgr8 image message."""
    import numpy as np

    if encoding not in ENCODINGS:
        raise ValueError(f'encoding {encoding!r} is not one of {", ".join(ENCODINGS)}')
    pixels = rgb if encoding == 'rgb8' else rgb[..., ::-1]
    height, width = rgb.shape[:2]
    return RawFrame(encoding, height, width, width * 3,
                    np.ascontiguousarray(pixels, np.uint8).tobytes())
