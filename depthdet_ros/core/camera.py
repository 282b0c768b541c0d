"""Camera model from CameraInfo-like intrinsics, and back-projection.

Pinhole with plumb_bob / rational_polynomial distortion, or equidistant (fisheye).
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple

import cv2
import numpy as np

# Intrinsics of another image size are scaled to the image when the two aspect ratios
# agree to within this share (a resized stream); beyond it the image is a crop or
# another camera's, and nothing 3D is computed from them.
ASPECT_TOLERANCE = 0.01


def same_aspect(size: Tuple[int, int], other: Tuple[int, int]) -> bool:
    """Whether two (width, height) sizes are one image resized (ASPECT_TOLERANCE)."""
    return abs((other[0] / size[0]) / (other[1] / size[1]) - 1.0) <= ASPECT_TOLERANCE


# sensor_msgs/distortion_models.hpp: the models CameraInfo names, each with its usual
# number of coefficients and those OpenCV takes (equidistant is OpenCV's fisheye model, and
# no pinhole even with all of its coefficients 0). An empty name is taken as plumb_bob, as
# drivers that leave it blank mean.
PLUMB_BOB, RATIONAL_POLYNOMIAL, EQUIDISTANT = 'plumb_bob', 'rational_polynomial', 'equidistant'
DISTORTION_COEFFICIENTS = {PLUMB_BOB: (5, (4, 5, 8, 12, 14)),
                           RATIONAL_POLYNOMIAL: (8, (4, 5, 8, 12, 14)),
                           EQUIDISTANT: (4, (0, 4))}
# A fisheye ray further than this off the optical axis has no usable z-depth (at 90 deg
# none at all): such pixels get no 3D point (NaN).
MAX_RAY_ANGLE_RAD = np.radians(85.0)


class CameraModelError(ValueError):
    """Intrinsics that cannot be used for back-projection."""


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of the camera that took the image (as in sensor_msgs/CameraInfo).

    K is the 3x3 matrix, D the coefficients of `distortion_model` (may be empty),
    width/height the image size the intrinsics belong to.
    """

    K: np.ndarray
    width: int
    height: int
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_id: str = ''
    distortion_model: str = PLUMB_BOB

    def __post_init__(self):
        if not self.distortion_model:  # drivers that leave it blank mean plumb_bob
            object.__setattr__(self, 'distortion_model', PLUMB_BOB)

    @classmethod
    def from_camera_info(cls, msg):
        """Build a model from a sensor_msgs/CameraInfo (rclpy or rosbags; not validated)."""
        return cls(K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3), width=int(msg.width),
                   height=int(msg.height), D=np.asarray(msg.d, dtype=np.float64),
                   frame_id=msg.header.frame_id, distortion_model=msg.distortion_model)

    @classmethod
    def from_fov(cls, width, height, hfov_deg, frame_id=''):
        """Build an ideal pinhole model from a horizontal field of view."""
        fx = 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)
        K = np.array([[fx, 0.0, (width - 1) / 2.0],
                      [0.0, fx, (height - 1) / 2.0],
                      [0.0, 0.0, 1.0]])
        return cls(K=K, width=int(width), height=int(height), frame_id=frame_id)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def validate(self, image_shape: Optional[Tuple[int, int]] = None):
        """Raise CameraModelError when K, the size or D is unusable, or the size differs."""
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise CameraModelError('K must be a finite 3x3 matrix')
        if self.fx <= 0 or self.fy <= 0:
            raise CameraModelError(f'focal lengths must be positive (fx={self.fx}, fy={self.fy})')
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError(f'width and height must be positive, got {self.width}x'
                                   f'{self.height}')
        if self.D.size and not np.all(np.isfinite(self.D)):
            raise CameraModelError('distortion coefficients D must be finite')
        counts = DISTORTION_COEFFICIENTS.get(self.distortion_model, (None, None))[1]
        if counts is None and self._distorted():
            raise CameraModelError(
                f'distortion_model {self.distortion_model!r} is not supported (use '
                f'{", ".join(DISTORTION_COEFFICIENTS)}, or rectified images with D = 0)')
        # A known model's D is checked even when all zero: a malformed message.
        if counts is not None and self.D.size and self.D.size not in counts:
            raise CameraModelError(f'{self.distortion_model} takes '
                                   f'{" / ".join(map(str, counts))} coefficients in D, got '
                                   f'{self.D.size}')
        if image_shape is not None and (self.height, self.width) != tuple(image_shape):
            raise CameraModelError(
                f'camera_info is {self.width}x{self.height} but the image is '
                f'{image_shape[1]}x{image_shape[0]}')

    def normalized_rays(self, uv: np.ndarray) -> np.ndarray:
        """Map Nx2 pixel coordinates to Nx2 normalised coordinates (x/z, y/z).

        Distortion is removed by its model: equidistant always (no pinhole even with D =
        0), the others when D has non-zero coefficients. A fisheye pixel more than
        MAX_RAY_ANGLE_RAD off the axis gets NaN (z-depth does not place it).
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if self.distortion_model == EQUIDISTANT:
            # cv2.fisheye gives finite nonsense from 90 deg on (tan of the angle).
            theta_d = np.hypot((uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy)
            rays = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), self.K,
                                               self.info_coefficients()).reshape(-1, 2)
            wide = (theta_d >= np.pi / 2) | ~(np.hypot(rays[:, 0], rays[:, 1])
                                              <= np.tan(MAX_RAY_ANGLE_RAD))
            rays[wide] = np.nan
            return rays
        if self._distorted():
            return cv2.undistortPoints(uv.reshape(-1, 1, 2), self.K, self.D).reshape(-1, 2)
        return np.stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy], axis=1)

    def info_coefficients(self) -> np.ndarray:
        """D as a CameraInfo carries it: when empty, the model's usual number of zeros."""
        if self.D.size:
            return np.asarray(self.D, dtype=np.float64)
        return np.zeros(DISTORTION_COEFFICIENTS.get(self.distortion_model, (5, None))[0])

    def _distorted(self) -> bool:
        """Pixels are not those of a pinhole camera with K."""
        return self.distortion_model == EQUIDISTANT or bool(self.D.size and np.any(self.D != 0))

    def back_project(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Nx3 optical-frame points for pixels `uv` at z-depths `depth` (metres)."""
        rays = self.normalized_rays(uv)
        z = np.asarray(depth, dtype=np.float64).reshape(-1)
        return np.stack([rays[:, 0] * z, rays[:, 1] * z, z], axis=1)

    def for_image(self, width: int, height: int) -> Optional['CameraModel']:
        """Return the model for a width x height image of this camera, or None.

        Scaled when the image is this camera's resized; None when the aspect ratios
        differ by more than ASPECT_TOLERANCE: a crop, or another camera's intrinsics,
        which do not describe the image.
        """
        if (self.width, self.height) == (width, height):
            return self
        if not same_aspect((self.width, self.height), (width, height)):
            return None
        return self.scaled(width / self.width, height / self.height)

    def scaled(self, sx: float, sy: float) -> 'CameraModel':
        """Return the model for the same camera with the image resized by (sx, sy)."""
        S = np.diag([sx, sy, 1.0])
        K = S @ self.K
        # Pixel centres: u' + 0.5 = sx (u + 0.5).
        K[0, 2] = sx * (self.cx + 0.5) - 0.5
        K[1, 2] = sy * (self.cy + 0.5) - 0.5
        return CameraModel(K=K, width=int(round(self.width * sx)),
                           height=int(round(self.height * sy)), D=self.D,
                           frame_id=self.frame_id, distortion_model=self.distortion_model)
