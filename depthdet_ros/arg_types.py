"""Checked argparse types and output paths shared by the `depthdet` commands.

A value outside its range is refused by argparse itself (exit 2, naming the option), so
no command trains on a NaN learning rate or loops forever on a rate of 0.
"""
import argparse
import math
import os


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        name = 'an integer' if kind is int else 'a number'
        raise argparse.ArgumentTypeError(f'must be {name}, got {text!r}') from None


def checked_number(kind, ok, rule):
    """Return an argparse type reading `kind` that is finite and passes `ok` (else `rule`)."""
    def parse(text):
        value = _number(kind, text)
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f'must be {rule}, got {text!r}')
        return value
    parse.__name__ = rule  # argparse names the type in some messages
    return parse


positive_int = checked_number(int, lambda v: v > 0, 'an integer > 0')
non_negative_int = checked_number(int, lambda v: v >= 0, 'an integer >= 0')
positive_float = checked_number(float, lambda v: v > 0, 'a number > 0')
non_negative_float = checked_number(float, lambda v: v >= 0, 'a number >= 0')
fraction = checked_number(float, lambda v: 0 <= v <= 1, 'a number in [0, 1]')
finite_float = checked_number(float, lambda v: True, 'a finite number')
# A benchmark phase longer than an hour is a typo (1e12 would run without end).
MAX_BENCH_SECONDS = 3600.0
bench_seconds = checked_number(float, lambda v: 0 < v <= MAX_BENCH_SECONDS,
                               f'a number of seconds in (0, {MAX_BENCH_SECONDS:g}]')
# A benchmark's count of frames, iterations or rounds: more is a typo that runs for days.
MAX_BENCH_COUNT = 1_000_000
bench_count = checked_number(int, lambda v: 1 <= v <= MAX_BENCH_COUNT,
                             f'an integer in [1, {MAX_BENCH_COUNT}]')
# The least width or height of a benchmark's synthetic frame (`depthdet bench --size`,
# bench.safety_latency).
MIN_BENCH_IMAGE_SIDE = 32
image_side = checked_number(int, lambda v: MIN_BENCH_IMAGE_SIDE <= v <= 1 << 16,
                            f'an integer in [{MIN_BENCH_IMAGE_SIDE}, 65536] px')
# A network input side the YOLOv5-style strides (up to 32) divide.
multiple_of_32 = checked_number(int, lambda v: v > 0 and v % 32 == 0, 'a positive multiple of 32')


def parse_size(text: str, smallest: int = 1, largest: int = 1 << 16):
    """Read "WIDTHxHEIGHT" into (width, height); ValueError if malformed or out of range."""
    try:
        width, height = (int(v) for v in text.lower().strip().split('x'))
    except ValueError:
        raise ValueError(f'size {text!r} is not WIDTHxHEIGHT') from None
    if not (smallest <= width <= largest and smallest <= height <= largest):
        raise ValueError(f'size {text!r} is outside {smallest}x{smallest} .. {largest}x{largest}')
    return width, height


def output_file(path: str, option: str) -> str:
    """Make the folder of an output file; CliError when the path cannot take a file.

    Called before the work, so that a bad path does not cost a whole run.
    """
    from depthdet_ros.cli import CliError
    if os.path.isdir(path):
        raise CliError(f'{option} {path}: is a folder; give a file name')
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CliError(f'{option} {path}: cannot create its folder ({exc.strerror})') from None
    # Opening it is the only sure test (a root user passes os.access anywhere; /proc
    # takes no new files); a file this made is removed again.
    existed = os.path.exists(path)
    try:
        with open(path, 'a'):
            pass
    except OSError as exc:
        raise CliError(f'{option} {path}: cannot write it ({exc.strerror})') from None
    if not existed:
        os.remove(path)
    return path


def output_folder(path: str, option: str = '--out') -> str:
    """Make an output folder; CliError when it is a file, cannot be made or written."""
    from depthdet_ros.cli import CliError
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CliError(f'cannot create output folder {path}: {exc.strerror or exc}; '
                       f'choose another {option}') from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f'output folder {path} is not writable; choose another {option}')
    return path
