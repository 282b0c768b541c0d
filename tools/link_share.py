"""Link the package's share/ files into a prefix, like colcon --symlink-install.

An editable pip install gives the import path and console scripts but no data
files; ROS tools find launch/config/model files through the ament index, so this
creates <prefix>/share/ament_index/.../depthdet_ros and symlinks
<prefix>/share/depthdet_ros/{launch,config,models,package.xml} to the source tree,
and the executables under <prefix>/lib/depthdet_ros as `ros2 run` expects them.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'depthdet_ros'


def relink(target, link):
    if os.path.islink(link) or os.path.isfile(link):
        os.remove(link)
    os.symlink(target, link)


def main(prefix):
    index = os.path.join(prefix, 'share', 'ament_index', 'resource_index', 'packages')
    os.makedirs(index, exist_ok=True)
    open(os.path.join(index, PACKAGE), 'w').close()
    share = os.path.join(prefix, 'share', PACKAGE)
    os.makedirs(share, exist_ok=True)
    for name in ('launch', 'config', 'models', 'package.xml'):
        relink(os.path.join(ROOT, name), os.path.join(share, name))
    libexec = os.path.join(prefix, 'lib', PACKAGE)
    os.makedirs(libexec, exist_ok=True)
    for exe in ('depthdet_node', 'synthetic_camera'):
        source = os.path.join(prefix, 'bin', exe)
        if os.path.exists(source):
            relink(source, os.path.join(libexec, exe))


if __name__ == '__main__':
    main(sys.argv[1])
