"""Setup for the depthdet_ros ament_python package."""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'depthdet_ros'


def share(subdir, pattern='*'):
    """Install files of a source folder under share/depthdet_ros/<subdir>."""
    files = [f for f in glob(os.path.join(subdir, pattern)) if os.path.isfile(f)]
    return (os.path.join('share', PACKAGE, subdir), files)


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        share('launch', '*.launch.py'),
        share('config', '*.yaml'),
        share('config', '*.xml'),
        share('models', '*.onnx'),
        share('models', '*.md'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='depthdet_ros maintainers',
    maintainer_email='maintainers@depthdet-ros.dev',
    description='Mono-camera object detection with per-object metric depth for ROS 2.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'depthdet = depthdet_ros.cli:main',
            'depthdet_node = depthdet_ros.ros.entry:depthdet_node',
            'depthdet_lifecycle_node = depthdet_ros.ros.entry:depthdet_lifecycle_node',
            'synthetic_camera = depthdet_ros.ros.entry:synthetic_camera',
        ],
    },
)
