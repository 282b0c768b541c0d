"""Several cameras on one machine: throughput and memory per extra camera.

Two ways to serve N cameras, each measured for N = 1 .. --cameras:

  processes  one worker process per camera (as one depthdet_node per camera runs), all
             started together, each with its own pipeline (its own sessions);
  shared     one worker process serving N cameras round-robin through one pipeline (one
             set of sessions), as one node serving several cameras would.

A worker loads the pipeline the node would load (same parameter values), says it is
ready, and on the go signal processes its cameras' frames the way the node does (image
bytes -> pipeline -> messages) for --camera-seconds. Each camera has its own synthetic
scene and its own frame buffer. While all workers run, this process reads each one's
resident (RSS) and proportional (PSS: shared pages split between the processes sharing
them) memory from /proc; the PSS sum is what N cameras add to the machine.
"""
import json
import os
import signal
import subprocess
import sys
import time

MODES = ('processes', 'shared')
# What one worker process holds, rounded up from the 205-214 MB RSS measured with the
# bundled models at 640x480 (README, *Several cameras on one machine*).
PROCESS_MB = 250
WARMUP_FRAMES = 3
CAMERA_HFOV_DEG = 60.0


def worker(values, cameras, seconds, width, height):
    """Serve `cameras` synthetic cameras through one pipeline; print one JSON line.

    Runs in a worker process: prints 'ready' once loaded, waits for a line on stdin,
    then processes frames round-robin for `seconds`.
    """
    from depthdet_ros.bench.frames import raw_frame, synthetic_rgb
    from depthdet_ros.bench.inprocess import message_builder, process_frame
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.ros.params import build_pipeline

    # Ctrl-C in a terminal reaches the workers too; the bench stops them itself, so they
    # stay quiet instead of printing KeyboardInterrupt tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pipeline = build_pipeline(values)
    builder, _ = message_builder()
    camera = CameraModel.from_fov(width, height, CAMERA_HFOV_DEG)
    frames = [raw_frame(synthetic_rgb(width, height, seed=i)) for i in range(cameras)]
    for i in range(WARMUP_FRAMES):
        process_frame(pipeline, frames[i % cameras], camera, builder)
    print('ready', flush=True)
    sys.stdin.readline()
    processed = [0] * cameras
    start = time.perf_counter()
    end = start + seconds
    i = 0
    while time.perf_counter() < end:
        process_frame(pipeline, frames[i % cameras], camera, builder)
        processed[i % cameras] += 1
        i += 1
    elapsed = time.perf_counter() - start
    pipeline.close()
    print(json.dumps({'frames': processed, 'seconds': round(elapsed, 3),
                      'messages': builder is not None}), flush=True)


def _start_worker(values_path, cameras, seconds, width, height):
    command = [sys.executable, '-m', 'depthdet_ros.bench.multicamera', '--worker',
               values_path, str(cameras), str(seconds), str(width), str(height)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def measure(values, processes, cameras_each, seconds, width, height, workdir):
    """Run `processes` workers serving `cameras_each` cameras each; returns a record."""
    from depthdet_ros.bench import system

    values_path = os.path.join(workdir, 'values.json')
    with open(values_path, 'w', encoding='utf-8') as f:
        json.dump(values, f)
    workers = [_start_worker(values_path, cameras_each, seconds, width, height)
               for _ in range(processes)]
    try:
        for proc in workers:
            line = proc.stdout.readline().strip()
            if line != 'ready':
                raise RuntimeError(f'a worker did not start (said {line!r}); run it alone: '
                                   f'{sys.executable} -m depthdet_ros.bench.multicamera')
        load_start = os.getloadavg()[0]
        for proc in workers:
            proc.stdin.write('go\n')
            proc.stdin.flush()
        # Memory in the middle of the run, with every worker's pages in use.
        time.sleep(seconds / 2)
        memory = [system.process_memory_mb(proc.pid) for proc in workers]
        results = [json.loads(proc.stdout.readline()) for proc in workers]
        load_end = os.getloadavg()[0]
    except BaseException:
        # Ctrl-C, SIGTERM (cli.unwind_on_sigterm) or a failed worker: the others would
        # run out their --camera-seconds (they ignore Ctrl-C) and outlive this process.
        for proc in workers:
            proc.terminate()
        raise
    finally:
        for proc in workers:
            try:
                proc.stdin.close()
            except BrokenPipeError:  # it has gone already
                pass
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    fps = [sum(r['frames']) / r['seconds'] for r in results]
    return {
        'processes': processes, 'cameras_per_process': cameras_each,
        'cameras': processes * cameras_each,
        'frames_per_s_total': round(sum(fps), 2),
        'frames_per_s_per_camera': round(sum(fps) / (processes * cameras_each), 2),
        'rss_mb_per_process': [m['rss'] for m in memory],
        'pss_mb_per_process': [m['pss'] for m in memory],
        'pss_mb_total': round(sum(m['pss'] for m in memory), 1),
        'messages_built': results[0]['messages'],
        'load_average': [round(load_start, 2), round(load_end, 2)],
    }


def run(values, max_cameras, seconds, width, height, workdir, repeats=1, progress=None):
    """Both modes for N = 1 .. max_cameras; returns {'processes': [...], 'shared': [...]}.

    The two modes alternate (N cameras one way, then the other) so that both meet about the
    same load from other processes; with `repeats` the whole sequence runs that many times
    and each figure is the median (the memory figures, PSS total and per-process RSS and
    PSS, those of the run with the median PSS total), the single runs kept under 'runs';
    load_average is the lowest and highest 1-minute load seen at the runs' starts and ends.
    """
    import statistics

    runs = {mode: [[] for _ in range(max_cameras)] for mode in MODES}
    for repeat in range(repeats):
        for n in range(1, max_cameras + 1):
            for mode in MODES:
                if progress is not None:
                    progress(f'{mode}: {n} camera(s), run {repeat + 1}/{repeats}')
                processes, each = (n, 1) if mode == 'processes' else (1, n)
                runs[mode][n - 1].append(measure(values, processes, each, seconds, width,
                                                 height, workdir))
    out = {}
    for mode in MODES:
        records = []
        for measured in runs[mode]:
            # One run's memory figures together: the run with the median PSS total.
            middle = statistics.median_low(r['pss_mb_total'] for r in measured)
            record = dict(next(r for r in measured if r['pss_mb_total'] == middle))
            for key in ('frames_per_s_total', 'frames_per_s_per_camera'):
                record[key] = round(statistics.median(r[key] for r in measured), 2)
            loads = [v for r in measured for v in r['load_average']]
            record['load_average'] = [min(loads), max(loads)]
            record['runs'] = measured
            records.append(record)
        for previous, record in zip(records, records[1:]):
            record['pss_mb_added_by_this_camera'] = round(
                record['pss_mb_total'] - previous['pss_mb_total'], 1)
        out[mode] = records
    out['repeats'] = repeats
    return out


def render_markdown(result):
    """Return the Markdown table of a `multicamera` record."""
    lines = ['| Cameras | How | frames/s, all cameras | frames/s per camera | PSS MB total '
             '(RSS per process) | PSS added by this camera | load average (1 min, lowest .. '
             'highest) |',
             '|---:|---|---:|---:|---:|---:|---|']
    how = {'processes': 'one process per camera', 'shared': 'one process, shared sessions'}
    for mode in MODES:
        for record in result[mode]:
            rss = ', '.join(f'{v:.0f}' for v in record['rss_mb_per_process'])
            added = record.get('pss_mb_added_by_this_camera')
            lines.append(
                f'| {record["cameras"]} | {how[mode]} | {record["frames_per_s_total"]:.1f} | '
                f'{record["frames_per_s_per_camera"]:.1f} | {record["pss_mb_total"]:.0f} '
                f'({rss}) | {"" if added is None else f"{added:+.0f}"} | '
                f'{record["load_average"][0]} .. {record["load_average"][1]} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    if len(sys.argv) == 7 and sys.argv[1] == '--worker':
        with open(sys.argv[2], encoding='utf-8') as f:
            worker_values = json.load(f)
        worker(worker_values, int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
               int(sys.argv[6]))
    else:
        sys.exit('usage: depthdet bench --sections multicamera (this module runs its workers)')
