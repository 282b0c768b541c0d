"""Entry points of the package's ROS executables, quiet when stopped while loading.

Ctrl-C in a node's first seconds, while rclpy, onnxruntime and OpenCV load, would break
the import with a KeyboardInterrupt traceback (and `ros2 launch` would report the node
as died). Each entry point imports its node's module under a SIGINT handler that exits
with status 0, as the nodes do for a Ctrl-C once running; then the node's own handling
takes over.

Console scripts call the functions; `python -m depthdet_ros.ros.entry NAME [ARGS]` runs
executable NAME the same way where the scripts are not on PATH (depthdet pipeline).
"""
import importlib
import signal
import sys

MODULES = {
    'depthdet_node': 'depthdet_ros.ros.node',
    'depthdet_lifecycle_node': 'depthdet_ros.ros.lifecycle_node',
    'synthetic_camera': 'depthdet_ros.ros.synthetic_camera',
}
# What each executable is, for --help (a node given --help would otherwise start).
SUMMARIES = {
    'depthdet_node': 'Objects with metric depth, 3D positions, track IDs and proximity alerts '
                     'from a mono camera.',
    'depthdet_lifecycle_node': 'depthdet_node as a managed (lifecycle) node: configure and '
                               'activate it to start.',
    'synthetic_camera': 'Rendered frames of the synthetic world with camera_info and ground '
                        'truth.',
}
USAGE = """usage: {name} [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r FROM:=TO]]

{summary}
Topics and parameters: README.md (ROS interface) and config/depthdet.yaml; on a running
node `ros2 param describe` gives each parameter's range."""


def _wants_help(args) -> bool:
    """Whether -h / --help comes before any --ros-args (what follows is ROS's to read)."""
    own = args[:args.index('--ros-args')] if '--ros-args' in args else args
    return '-h' in own or '--help' in own


class _Interrupted:
    """SIGINT handler during the imports: remembers the signal and unwinds them."""

    def __init__(self):
        self.signalled = False

    def __call__(self, signum, frame):
        self.signalled = True
        # The launcher forwards another SIGINT: it must not interrupt the way out.
        ignore_further_ctrl_c()
        raise SystemExit(0)


def run(executable: str) -> int:
    """Import the module of `executable` with Ctrl-C leaving quietly, then run its main."""
    if _wants_help(sys.argv[1:]):
        print(USAGE.format(name=executable, summary=SUMMARIES[executable]))
        return 0
    interrupted = _Interrupted()
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        module = importlib.import_module(MODULES[executable])
    except BaseException:
        # A C extension being initialised turns the exit into its own ImportError.
        if interrupted.signalled:
            raise SystemExit(0) from None
        signal.signal(signal.SIGINT, previous)
        raise
    signal.signal(signal.SIGINT, previous)
    return module.main()


def rcl_refusal(exc) -> str:
    """Say in one line why rclpy.init refused the arguments (rcl's message, trimmed).

    Without rcl's source position (", at /.../arguments.c:380") and its empty error text.
    """
    import re
    return re.sub(r'(\. Error: error not set)?, at \S+:\d+$', '', str(exc).splitlines()[0])


_CTRL_C = {'received': False}


def ctrl_c_received() -> bool:
    """Whether interrupt_once's handler has had its Ctrl-C.

    Raised while rclpy takes a message, the KeyboardInterrupt leaves pybind11 as
    'RuntimeError: Unable to convert call argument', and rclpy's own handler may not yet
    have shut the context down (it does so from another thread): the node then has to
    know that a stop was asked for (CI, session 21: exit 1 on a Ctrl-C mid-stream).
    """
    return _CTRL_C['received']


def interrupt_once():
    """Make Ctrl-C raise KeyboardInterrupt once; every later SIGINT is ignored.

    Call it before rclpy.init: rclpy's handler shuts the context down and then hands
    the signal to this one. Ignoring from inside the handler leaves no moment in which
    the SIGINT that `ros2 launch` forwards could break the cleanup.
    """
    import threading

    def first_only(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _CTRL_C['received'] = True
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():  # signals: main thread only
        signal.signal(signal.SIGINT, first_only)


class StopSignals:
    """Ctrl-C and SIGTERM recorded for a spinning loop to poll, never raised.

    An exception raised by a signal handler while rclpy turns a received message into a
    Python object leaves pybind11 as 'RuntimeError: Unable to convert call argument',
    not as itself: Ctrl-C during `depthdet pipeline --demo` ended in that traceback
    (CI). Loops that take messages check `received` between spin_once calls instead.
    Create it before rclpy.init with SignalHandlerOptions.NO, in the main thread. The
    handlers stay installed: a signal during the shutdown that follows is recorded, not
    raised into it (callers read `received` when their loop ends).
    """

    NAMES = {signal.SIGINT: 'Ctrl-C', signal.SIGTERM: 'SIGTERM'}

    def __init__(self):
        self.received = None  # the first signal's name
        self.signum = None
        for signum in self.NAMES:
            signal.signal(signum, self._record)

    def _record(self, signum, frame):
        if self.received is None:
            self.received, self.signum = self.NAMES[signum], signum

    @property
    def exit_status(self) -> int:
        """A shell's status for the first signal (128 + its number); 0 without one."""
        return 128 + self.signum if self.signum else 0


def ignore_further_ctrl_c():
    """Ignore SIGINT from now on: called once a node has begun to shut down.

    Ctrl-C in a terminal signals the whole process group, and `ros2 launch` or `depthdet
    pipeline` then forwards another SIGINT: that one must not break the cleanup into a
    KeyboardInterrupt traceback.
    """
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def depthdet_node() -> int:
    return run('depthdet_node')


def depthdet_lifecycle_node() -> int:
    return run('depthdet_lifecycle_node')


def synthetic_camera() -> int:
    return run('synthetic_camera')


if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
        sys.exit(f'usage: python -m depthdet_ros.ros.entry {{{",".join(MODULES)}}} [ARGS]')
    sys.exit(run(sys.argv.pop(1)))
