"""Test set-up: every DDS participant stays on loopback, in a domain of its own."""
import os

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ.setdefault('MUJOCO_GL', 'osmesa')
