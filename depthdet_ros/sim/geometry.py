"""Small rigid-body helpers shared by the scene builder and the ground truth (numpy only).

Quaternions are (w, x, y, z) as MuJoCo stores them, unless a name says otherwise.
"""
import numpy as np

# MuJoCo cameras look down -z with y up; the optical frame (REP 103) looks down +z
# with y down. Both share x (right), so one frame is the other turned 180 deg about x.
OPTICAL_FROM_MUJOCO_CAMERA = np.diag([1.0, -1.0, -1.0])


def quat_to_matrix(quat) -> np.ndarray:
    """Return the 3x3 rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(matrix) -> np.ndarray:
    """Return the unit quaternion (w, x, y, z), w >= 0, of a 3x3 rotation matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    # Branch on the largest diagonal term so the square root stays well away from 0.
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s,
             (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s,
             (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s,
             (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s,
             0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def quat_multiply(a, b) -> np.ndarray:
    """Return the Hamilton product a * b of (w, x, y, z) quaternions (b first, then a)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw])


def yaw_quat(yaw: float) -> np.ndarray:
    """Return the rotation by `yaw` radians about +z."""
    return np.array([np.cos(yaw / 2.0), 0.0, 0.0, np.sin(yaw / 2.0)])


def axis_angle_quat(axis, angle: float) -> np.ndarray:
    """Return the rotation by `angle` radians about `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2.0)], np.sin(angle / 2.0) * axis])


def quat_z_to(direction) -> np.ndarray:
    """Return the rotation taking +z onto `direction` (capsule/cylinder axes are +z)."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    axis = np.cross([0.0, 0.0, 1.0], d)
    sin_angle = np.linalg.norm(axis)
    if sin_angle < 1e-9:
        return np.array([1.0, 0.0, 0.0, 0.0]) if d[2] > 0 else np.array([0.0, 1.0, 0.0, 0.0])
    return axis_angle_quat(axis / sin_angle, np.arctan2(sin_angle, d[2]))


def look_rotation(forward, roll: float = 0.0) -> np.ndarray:
    """Return the world-from-optical rotation of a camera looking along `forward`.

    World z is up; the optical x axis is horizontal before `roll` (radians, about
    the viewing axis) is applied.
    """
    z = np.asarray(forward, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-9:  # looking straight up or down: any horizontal x
        x = np.array([1.0, 0.0, 0.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=1)


def forward_vector(yaw: float, pitch: float) -> np.ndarray:
    """Return the unit viewing direction for heading `yaw` and elevation `pitch` (rad)."""
    return np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
