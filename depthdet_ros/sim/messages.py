"""Ground-truth vision_msgs for either message flavour: rclpy (live node) or rosbags (bags).

Builders take `make(type_name, **fields)`, which constructs a message of a full type
name such as 'vision_msgs/msg/Detection2D'; every field is given, as rosbags needs.
Ground truth: class_id = class name, score 1.0, pose = the object's 3D centre and
orientation in the optical frame with zero covariance (exact), 2D bbox = the visible
part, 3D bbox = centre, orientation and size, id = the instance id.
"""
import importlib

import numpy as np


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
