"""Synthetic camera world (MuJoCo): scenes, datasets, bags.

MuJoCo picks its OpenGL back end from MUJOCO_GL when it is first imported, so the
default is set here, before any module of this package imports it: OSMesa (software,
needs libOSMesa from tools/setup_system.sh), or EGL when only that is installed.
An explicit MUJOCO_GL is left alone.
"""
import ctypes.util
import os

if 'MUJOCO_GL' not in os.environ:
    _HAS_OSMESA = ctypes.util.find_library('OSMesa') is not None
    os.environ['MUJOCO_GL'] = 'osmesa' if _HAS_OSMESA or not ctypes.util.find_library('EGL') \
        else 'egl'
