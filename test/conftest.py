"""Test set-up: every DDS participant stays on loopback, in a domain of its own.

Test processes publish camera-sized images as a camera driver does, so they get the
large-data Fast DDS profile the README asks drivers to use (without it a 640x480 image
can hold up the CameraInfo published beside it for seconds: `depthdet bench-qos`).
"""
import os

from depthdet_ros.bench.ros_bench import isolate_dds
from depthdet_ros.ros.qos import large_data_environment

isolate_dds()
os.environ.setdefault('MUJOCO_GL', 'osmesa')
os.environ.update(large_data_environment())
