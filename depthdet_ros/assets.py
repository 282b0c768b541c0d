"""Where the package's installed files are: bundled models, default config."""
import os
import sys

PACKAGE = 'depthdet_ros'
DEFAULT_MODELS = {'detector': 'detector.onnx', 'depth': 'depth.onnx'}


def share_dir():
    """share/depthdet_ros: from the ament index, the install prefix or the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except (ImportError, LookupError, ValueError, OSError):
        pass
    installed = os.path.join(sys.prefix, 'share', PACKAGE)
    if os.path.isdir(installed):
        return installed
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_model(kind):
    """Path of the bundled default model of `kind` ('detector' or 'depth')."""
    return os.path.join(share_dir(), 'models', DEFAULT_MODELS[kind])


def default_params_file():
    """Path of the default parameters file."""
    return os.path.join(share_dir(), 'config', 'depthdet.yaml')
