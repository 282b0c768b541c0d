"""What the benchmark ran on: machine, library versions, memory, GPU memory."""
import os
import platform
import subprocess
import sys


def rss_mb():
    """Resident memory of this process in MB (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def peak_rss_mb():
    """Peak resident memory of this process so far in MB (Linux ru_maxrss is in KiB)."""
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def available_memory_mb():
    """Memory that new processes can take without swapping, in MB (Linux MemAvailable)."""
    with open('/proc/meminfo', encoding='utf-8') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('/proc/meminfo has no MemAvailable')


def process_memory_mb(pid):
    """Resident (rss) and proportional (pss) memory of a running process in MB, from /proc.

    PSS splits each shared page between the processes mapping it, so the PSS of several
    processes adds up to what they hold together.
    """
    fields = {}
    with open(f'/proc/{pid}/smaps_rollup', encoding='utf-8') as f:
        for line in f:
            name, _, rest = line.partition(':')
            if name in ('Rss', 'Pss'):
                fields[name.lower()] = round(int(rest.split()[0]) / 1024, 1)
    return fields


def gpu_memory_mb(pids):
    """GPU memory used by `pids` per nvidia-smi, in MB; None when it cannot be read."""
    try:
        out = subprocess.run(
            ['nvidia-smi', '--query-compute-apps=pid,used_memory', '--format=csv,noheader,'
             'nounits'], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = {}
    for line in out.strip().splitlines():
        pid, _, memory = line.partition(',')
        if pid.strip().isdigit() and int(pid) in pids:
            used[int(pid)] = float(memory)
    return used


def gpu_memory_used_mb():
    """Memory in use on the first NVIDIA GPU per nvidia-smi, in MB; None when unreadable."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=memory.used',
                              '--format=csv,noheader,nounits'],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def gpu_name():
    """Name of the first NVIDIA GPU per nvidia-smi, or None."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def environment():
    """Machine and library versions, as recorded in the JSON."""
    import cv2
    import numpy as np
    import onnxruntime as ort

    from depthdet_ros.bench.inprocess import usable_cores

    info = {
        'machine': platform.machine(),
        'cpu': _cpu_model(),
        'usable_cores': usable_cores(),
        'load_average': [round(v, 2) for v in os.getloadavg()],
        'python': sys.version.split()[0],
        'numpy': np.__version__,
        'opencv': cv2.__version__,
        'onnxruntime': ort.__version__,
        'onnxruntime_providers': ort.get_available_providers(),
        'gpu': gpu_name(),
    }
    try:
        import torch
        info['torch'] = torch.__version__
    except ImportError:
        info['torch'] = None
    return info


def _cpu_model():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.partition(':')[2].strip()
    except OSError:
        pass
    return platform.processor() or None
