"""The `depthdet` command: one entry point, one subcommand per tool.

Each subcommand lives in its own module exposing `add_parser(subparsers)`, which
registers an argparse parser whose default `func(args)` runs it and returns an exit
code. Modules import heavy dependencies (torch, mujoco, rclpy) inside `func`, so
`depthdet --help` and the light subcommands stay fast.
"""
import argparse
import importlib
import os
import select
import signal
import sys
import threading

# (subcommand, module) in the order `depthdet --help` lists them.
SUBCOMMANDS = (
    ('run', 'depthdet_ros.tools.run_files'),
    ('pipeline', 'depthdet_ros.ros.launcher'),
    ('export', 'depthdet_ros.nets.export'),
    ('quantize', 'depthdet_ros.nets.quantize'),
    ('synth', 'depthdet_ros.sim.cli'),
    ('train', 'depthdet_ros.train.cli'),
    ('eval', 'depthdet_ros.eval.cli'),
    ('replay', 'depthdet_ros.eval.replay'),
    ('bench', 'depthdet_ros.bench.cli'),
    ('bench-qos', 'depthdet_ros.bench.qos'),
    ('soak', 'depthdet_ros.tools.soak'),
)


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def unwind_on_sigterm():
    """Make SIGTERM (kill, systemd, CI's timeout) unwind the stack as Ctrl-C does.

    Python's default ends the process at once: the children a command started (a node,
    bench workers) ran on without it, and its temporary folders stayed. Now
    SystemExit(143) runs every `finally` on the way out, and the exit status is the one
    a shell reports for SIGTERM; a second SIGTERM is ignored, so that it does not break
    into that cleanup. Commands that spin rclpy with ros.entry.StopSignals (pipeline's
    demo monitor, soak) replace it with their own; elsewhere the SystemExit may arrive
    inside an rclpy call. Main thread only, as Python's signals are. Returns the handler
    it replaced (None off the main thread).
    """
    def unwind(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, unwind)
    return None


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument error is one line naming the option (no usage block), exit code 2.

    Subcommand parsers are of the same class (add_subparsers takes the parent's).
    """

    def error(self, message):
        print(f'{self.prog}: error: {message} (see {self.prog} --help)', file=sys.stderr)
        sys.exit(2)


def build_parser():
    parser = OneLineErrorParser(
        prog='depthdet',
        description='Object detection with per-object metric depth from one camera.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith('depthdet_ros'):
                continue  # subcommand not built yet in this checkout
            raise
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Run the `depthdet` command line."""
    try:
        try:
            return _run(argv)
        finally:
            # Here, not at exit: a pipe whose reader left (`| head`) fails this flush.
            sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_is_broken():
            raise  # another pipe (a child process's): a real error
        # No traceback, and none when Python flushes stdout again at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file (run in-process)
            pass
        return 128 + signal.SIGPIPE


def _stdout_is_broken() -> bool:
    """Whether stdout is a pipe whose reader has left (its write end polls as an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (OSError, ValueError, AttributeError):  # not a file (run in-process)
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _run(argv):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Launch-style NAME:=VALUE arguments may stand anywhere on the command line.
    if extra and hasattr(args, 'assignments') and all(':=' in e for e in extra):
        args.assignments = list(args.assignments) + extra
    elif extra:
        # Name the subcommand whose --help lists what it takes.
        prog = f'depthdet {args.command}' if getattr(args, 'command', None) else 'depthdet'
        print(f'{prog}: error: unrecognized arguments: {" ".join(extra)} (see {prog} --help)',
              file=sys.stderr)
        sys.exit(2)
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    from depthdet_ros.bags import DamagedBagError  # any subcommand reading a bag
    from depthdet_ros.ros.params import ConfigError  # what a subcommand's settings raise
    previous = unwind_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError, DamagedBagError) as exc:
        print(f'depthdet {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if previous is not None:  # a caller in the same process (tests) keeps its own
            signal.signal(signal.SIGTERM, previous)


if __name__ == '__main__':
    # Run through the package module so CliError is the class subcommands raise.
    from depthdet_ros.cli import main as package_main
    sys.exit(package_main())
