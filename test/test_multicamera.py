"""`depthdet bench --sections multicamera`: both ways of serving cameras, memory from /proc.

A short real run with the bundled models: one worker process per camera, and one worker
serving both cameras through one set of sessions. No timed assertion: the figures are
only checked to exist and to add up.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from depthdet_ros.bench import system


def test_process_memory_reads_rss_and_pss():
    memory = system.process_memory_mb(os.getpid())
    assert set(memory) == {'rss', 'pss'}
    assert 0 < memory['pss'] <= memory['rss']


def test_two_cameras_both_ways(tmp_path):
    out = tmp_path / 'multicamera.json'
    result = subprocess.run(
        [sys.executable, '-m', 'depthdet_ros.cli', 'bench', '--sections', 'multicamera',
         '--cameras', '2', '--camera-seconds', '1', '--json', str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())['multicamera']
    assert record['repeats'] == 1
    for mode, processes in (('processes', [1, 2]), ('shared', [1, 1])):
        rows = record[mode]
        assert [r['cameras'] for r in rows] == [1, 2]
        assert [len(r['pss_mb_per_process']) for r in rows] == processes
        for row in rows:
            assert row['frames_per_s_total'] > 0
            assert row['pss_mb_total'] == round(sum(row['pss_mb_per_process']), 1)
            assert all(0 < p <= r for p, r in zip(row['pss_mb_per_process'],
                                                  row['rss_mb_per_process']))
        assert rows[1]['pss_mb_added_by_this_camera'] == round(
            rows[1]['pss_mb_total'] - rows[0]['pss_mb_total'], 1)
    assert '| 2 | one process, shared sessions |' in result.stdout
    table = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'bench', '--table',
                            str(out)], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0
    assert table.stdout.splitlines()[-1].startswith('| 2 | one process, shared sessions |')


def test_repeats_keep_one_runs_memory_figures_together(monkeypatch):
    """Medians of speed; PSS total and per-process figures from one run (the median one).

    They mixed the median PSS total with run 1's per-process values, and the load column
    said 'lowest .. highest' while it showed the first start and the last end.
    """
    from depthdet_ros.bench import multicamera
    runs = iter([(10.0, 300.0, [2.0, 2.5]), (12.0, 280.0, [1.5, 3.5]),
                 (11.0, 320.0, [3.0, 0.2])] * 2)

    def measure(values, processes, each, seconds, width, height, workdir):
        fps, pss, load = next(runs)
        return {'cameras': processes * each, 'frames_per_s_total': fps,
                'frames_per_s_per_camera': fps, 'pss_mb_total': pss,
                'pss_mb_per_process': [pss], 'rss_mb_per_process': [pss + 40],
                'load_average': load}

    monkeypatch.setattr(multicamera, 'measure', measure)
    result = multicamera.run({}, 1, 1.0, 64, 48, '/unused', repeats=3)
    for record in (result['processes'][0], result['shared'][0]):
        assert record['pss_mb_total'] == 300.0 and record['pss_mb_per_process'] == [300.0]
        assert record['rss_mb_per_process'] == [340.0]
        assert record['frames_per_s_total'] == 11.0
        assert record['load_average'] == [0.2, 3.5]  # the load fell during one run


@pytest.mark.parametrize('how, status', [('sigterm', 143), ('ctrl_c_group', 130)])
def test_a_stopped_bench_stops_its_workers_and_leaves_no_folder(how, status, tmp_path):
    # Outsider round 47: Ctrl-C waited for the workers to run out their seconds (they
    # ignore it), then a traceback and a worker left running; SIGTERM left the worker
    # and the temporary folder.
    import psutil
    proc = subprocess.Popen(
        [sys.executable, '-m', 'depthdet_ros.cli', 'bench', '--sections', 'multicamera',
         '--cameras', '1', '--camera-seconds', '120'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        deadline = time.monotonic() + 60
        workers = []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [p for p in psutil.Process(proc.pid).children()
                       if '--worker' in p.cmdline()]
        assert workers, 'no worker started'
        time.sleep(8.0)  # loaded and measuring
        assert workers[0].is_running()
        stopped = time.monotonic()
        if how == 'sigterm':
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == status, output
    assert took < 10, took
    assert 'Traceback' not in output, output
    psutil.wait_procs(workers, timeout=5)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    # The bench's temporary folder is gone (a library leaves a small file of its own).
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


def test_more_cameras_than_memory_holds_are_refused(capsys, monkeypatch):
    from depthdet_ros import cli
    from depthdet_ros.bench import multicamera
    monkeypatch.setattr(system, 'available_memory_mb', lambda: 1000.0)
    measured = []

    def run(values, cameras, *args, **kwargs):  # the bench itself: not run here
        measured.append(cameras)
        raise RuntimeError('stopped by the test after the memory check')

    monkeypatch.setattr(multicamera, 'run', run)
    assert cli.main(['bench', '--sections', 'multicamera', '--cameras', '5']) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'depthdet bench: error: --cameras 5 starts 5 processes at once, about 1250 MB with '
        '250 MB each, and 1000 MB are available: give fewer cameras']
    assert measured == []
    # Four (1000 MB) fit: the bench is started.
    assert cli.main(['bench', '--sections', 'multicamera', '--cameras', '4']) == 2
    assert measured == [4]
    assert 'stopped by the test after the memory check' in capsys.readouterr().err


def test_available_memory_is_read_from_meminfo():
    with open('/proc/meminfo', encoding='utf-8') as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith('MemAvailable:'))
    assert abs(system.available_memory_mb() - kib / 1024) < 512  # it moves between reads
