"""Synthetic camera world (MuJoCo): scenes, datasets, bags.

MuJoCo picks its OpenGL back end from MUJOCO_GL when it is first imported, so the
default is set here, before any module of this package imports it: OSMesa (software,
libOSMesa from tools/setup_system.sh), or EGL when only that library is installed.
An explicit MUJOCO_GL is left alone.
"""
import glob
import os

# Looking for the files is cheap; ctypes.util.find_library would run ldconfig.
_LIBRARY_DIRS = ('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64',
                 '/usr/lib', '/usr/local/lib')


def _installed(library: str) -> bool:
    return any(glob.glob(os.path.join(folder, f'lib{library}.so*')) for folder in _LIBRARY_DIRS)


if 'MUJOCO_GL' not in os.environ:
    os.environ['MUJOCO_GL'] = 'egl' if not _installed('OSMesa') and _installed('EGL') \
        else 'osmesa'
