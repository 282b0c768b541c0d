"""Link the package's installed files into a prefix, as colcon --symlink-install does.

An editable pip install gives the import path and console scripts but no data files;
ROS tools find launch/config/model files through the ament index, so this links every
data file setup.py installs (share/ament_index/.../depthdet_ros, share/depthdet_ros/...)
to its source file, one link per file, and the console scripts under
<prefix>/lib/depthdet_ros as `ros2 run` expects them.

Files, not directories: `ros2 launch PACKAGE FILE` finds FILE with os.walk, which does
not descend into links to directories. Links and link-to-directory layouts left by older
versions of this script are replaced; the source tree is never written.

Usage: python tools/link_share.py PREFIX   (tools/setup_env.sh runs it on .venv)
"""
import contextlib
import os
import sys

import setuptools  # noqa: F401  (puts setuptools' distutils first, for run_setup)
from distutils.core import run_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'depthdet_ros'
# This package's own folders in the prefix; links met inside them are replaced.
OWNED = (os.path.join('share', PACKAGE), os.path.join('lib', PACKAGE))


def installed_files(root=ROOT):
    """Read setup.py: (data files as {install path: source path}, console script names)."""
    with contextlib.chdir(root):
        dist = run_setup('setup.py', stop_after='init')
    data = {os.path.join(folder, os.path.basename(source)): os.path.join(root, source)
            for folder, sources in dist.data_files for source in sources}
    scripts = [spec.split('=')[0].strip()
               for spec in dist.entry_points.get('console_scripts', [])]
    return data, scripts


def _real_directory(prefix, relative):
    """Make prefix/relative a directory; inside OWNED folders, links on the way are dropped."""
    path = prefix
    for part in relative.split(os.sep):
        path = os.path.join(path, part)
        inside = os.path.relpath(path, prefix)
        if os.path.islink(path) and any(inside == d or inside.startswith(d + os.sep)
                                        for d in OWNED):
            os.remove(path)
        os.makedirs(path, exist_ok=True)
    return path


def _link(target, link):
    if os.path.islink(link) and os.readlink(link) == target:
        return
    if os.path.islink(link) or os.path.isfile(link):
        os.remove(link)
    os.symlink(target, link)


def _remove_stale_links(folder, wanted):
    """Remove links under folder that are not in `wanted`, then folders left empty."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files + dirs:
            path = os.path.join(root, name)
            if os.path.islink(path) and path not in wanted:
                os.remove(path)
        if root != folder and not os.listdir(root):
            os.rmdir(root)


def main(prefix, root=ROOT):
    """Link the data files and console scripts of the package at `root` into `prefix`."""
    prefix = os.path.abspath(prefix)
    data, scripts = installed_files(root)
    wanted = set()
    for relative, source in data.items():
        folder = _real_directory(prefix, os.path.dirname(relative))
        link = os.path.join(folder, os.path.basename(relative))
        _link(source, link)
        wanted.add(link)
    _remove_stale_links(os.path.join(prefix, 'share', PACKAGE), wanted)
    libexec = _real_directory(prefix, os.path.join('lib', PACKAGE))
    for script in scripts:
        source = os.path.join(prefix, 'bin', script)
        if os.path.exists(source):
            link = os.path.join(libexec, script)
            _link(source, link)
            wanted.add(link)
    _remove_stale_links(libexec, wanted)


if __name__ == '__main__':
    main(sys.argv[1])
