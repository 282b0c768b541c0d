"""Load a script of tools/ as a module, for the tests of the tools there."""
import importlib.util
import os

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools')


def load_tool(name):
    """Import tools/<name>.py (tools/ is no package) and return the module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
