"""Ground-truth vision_msgs for either message flavour: rclpy (live node) or rosbags (bags).

Builders take `make(type_name, **fields)`, which constructs a message of a full type
name such as 'vision_msgs/msg/Detection2D'; every field is given, as rosbags needs.
Ground truth: class_id = class name, score 1.0, pose = the object's 3D centre and
orientation in the optical frame with zero covariance (exact), 2D bbox = the visible
part, 3D bbox = centre, orientation and size, id = the instance id.

Motion (sequences with moving objects): one nav_msgs/Odometry per object, child_frame_id
= the instance id (as Detection ids), pose = the object's centre with identity
orientation, so the child frame's axes are those of header.frame_id and the twist's
linear velocity (m/s) is expressed in that frame; angular velocity is not given (0).
In the optical frame the velocity is d/dt of the centre's optical coordinates (the
camera's motion included); in the world frame it is the object's own motion.

The camera's own motion (camera_odometry): a nav_msgs/Odometry as a robot's odometry
gives it, header.frame_id = the world, child_frame_id = the camera's optical frame,
pose = the camera's pose in the world, twist = its linear and angular velocity in the
optical frame (REP 105: the twist is in the child frame).
"""
import importlib

import numpy as np

from depthdet_ros.sim.geometry import matrix_to_quat


def rclpy_factory():
    """Return `make` building rclpy messages (imports the message packages lazily)."""
    classes = {}

    def make(type_name, **fields):
        cls = classes.get(type_name)
        if cls is None:
            package, _, name = type_name.split('/')
            cls = classes[type_name] = getattr(importlib.import_module(f'{package}.msg'), name)
        return cls(**fields)
    return make


def rosbags_factory(store):
    """Return `make` building rosbags messages of a typestore."""
    def make(type_name, **fields):
        return store.types[type_name](**fields)
    return make


def _pose(make, obj):
    x, y, z, w = obj.orientation_xyzw
    return make('geometry_msgs/msg/Pose',
                position=make('geometry_msgs/msg/Point', x=obj.center.x, y=obj.center.y,
                              z=obj.center.z),
                orientation=make('geometry_msgs/msg/Quaternion', x=x, y=y, z=z, w=w))


def _hypotheses(make, obj):
    return [make('vision_msgs/msg/ObjectHypothesisWithPose',
                 hypothesis=make('vision_msgs/msg/ObjectHypothesis', class_id=obj.class_name,
                                 score=1.0),
                 pose=make('geometry_msgs/msg/PoseWithCovariance', pose=_pose(make, obj),
                           covariance=np.zeros(36)))]


def detections_2d(make, header, objects):
    """Return a Detection2DArray of ground-truth objects (ObjectTruth records)."""
    detections = []
    for obj in objects:
        cx, cy = obj.box.center
        bbox = make('vision_msgs/msg/BoundingBox2D',
                    center=make('vision_msgs/msg/Pose2D',
                                position=make('vision_msgs/msg/Point2D', x=float(cx),
                                              y=float(cy)),
                                theta=0.0),
                    size_x=float(obj.box.width), size_y=float(obj.box.height))
        detections.append(make('vision_msgs/msg/Detection2D', header=header,
                               results=_hypotheses(make, obj), bbox=bbox,
                               id=str(obj.instance_id)))
    return make('vision_msgs/msg/Detection2DArray', header=header, detections=detections)


def detections_3d(make, header, objects):
    """Return a Detection3DArray of ground-truth objects (centre, orientation, size)."""
    detections = []
    for obj in objects:
        bbox = make('vision_msgs/msg/BoundingBox3D', center=_pose(make, obj),
                    size=make('geometry_msgs/msg/Vector3', x=obj.size.x, y=obj.size.y,
                              z=obj.size.z))
        detections.append(make('vision_msgs/msg/Detection3D', header=header,
                               results=_hypotheses(make, obj), bbox=bbox,
                               id=str(obj.instance_id)))
    return make('vision_msgs/msg/Detection3DArray', header=header, detections=detections)


def _quaternion(make, rotation):
    """Return the geometry_msgs/Quaternion of a 3x3 rotation matrix."""
    w, x, y, z = (float(v) for v in matrix_to_quat(rotation))
    return make('geometry_msgs/msg/Quaternion', x=x, y=y, z=z, w=w)


def camera_transform(make, header, child_frame_id, camera_pose):
    """Return a TFMessage of the camera's pose (4x4) in header's frame, as /tf carries it."""
    pose = np.asarray(camera_pose, dtype=np.float64)
    return make('tf2_msgs/msg/TFMessage', transforms=[make(
        'geometry_msgs/msg/TransformStamped', header=header, child_frame_id=child_frame_id,
        transform=make('geometry_msgs/msg/Transform',
                       translation=make('geometry_msgs/msg/Vector3', x=float(pose[0, 3]),
                                        y=float(pose[1, 3]), z=float(pose[2, 3])),
                       rotation=_quaternion(make, pose[:3, :3])))])


def camera_odometry(make, header, child_frame_id, camera_pose, camera_twist):
    """Return the Odometry of the camera (see the module doc); camera_twist: 6 floats."""
    pose = np.asarray(camera_pose, dtype=np.float64)
    linear, angular = (make('geometry_msgs/msg/Vector3', x=float(a), y=float(b), z=float(c))
                       for a, b, c in np.asarray(camera_twist, np.float64).reshape(2, 3))
    return make(
        'nav_msgs/msg/Odometry', header=header, child_frame_id=child_frame_id,
        pose=make('geometry_msgs/msg/PoseWithCovariance', pose=make(
            'geometry_msgs/msg/Pose',
            position=make('geometry_msgs/msg/Point', x=float(pose[0, 3]),
                          y=float(pose[1, 3]), z=float(pose[2, 3])),
            orientation=_quaternion(make, pose[:3, :3])),
            covariance=np.zeros(36)),
        twist=make('geometry_msgs/msg/TwistWithCovariance',
                   twist=make('geometry_msgs/msg/Twist', linear=linear, angular=angular),
                   covariance=np.zeros(36)))


def object_motion(make, header, objects, camera_pose=None):
    """Return one Odometry per object that has motion truth (see the module doc).

    Without `camera_pose` (4x4 world-from-optical): centre and velocity in the optical
    frame of `header`; with it: centre and world_velocity in the frame named by
    `header` (the world).
    """
    messages = []
    for obj in objects:
        if obj.velocity is None:
            continue
        centre = np.array([obj.center.x, obj.center.y, obj.center.z])
        velocity = obj.velocity
        if camera_pose is not None:
            centre = np.asarray(camera_pose)[:3, :3] @ centre + np.asarray(camera_pose)[:3, 3]
            velocity = obj.world_velocity
        pose = make('geometry_msgs/msg/Pose',
                    position=make('geometry_msgs/msg/Point', x=float(centre[0]),
                                  y=float(centre[1]), z=float(centre[2])),
                    orientation=make('geometry_msgs/msg/Quaternion', x=0.0, y=0.0, z=0.0,
                                     w=1.0))
        twist = make('geometry_msgs/msg/Twist',
                     linear=make('geometry_msgs/msg/Vector3', x=velocity.x, y=velocity.y,
                                 z=velocity.z),
                     angular=make('geometry_msgs/msg/Vector3', x=0.0, y=0.0, z=0.0))
        messages.append(make(
            'nav_msgs/msg/Odometry', header=header, child_frame_id=str(obj.instance_id),
            pose=make('geometry_msgs/msg/PoseWithCovariance', pose=pose,
                      covariance=np.zeros(36)),
            twist=make('geometry_msgs/msg/TwistWithCovariance', twist=twist,
                       covariance=np.zeros(36))))
    return messages
