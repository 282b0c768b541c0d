"""Latency samples and their summaries (percentiles in milliseconds)."""
import collections
import math

PERCENTILES = (50, 90, 99)


def summarize(samples):
    """Summarise a list of millisecond samples: n, mean, p50, p90, p99 (None when empty)."""
    import numpy as np

    values = np.asarray([v for v in samples if v is not None and math.isfinite(v)], float)
    if not values.size:
        return {'n': 0, 'mean': None, **{f'p{p}': None for p in PERCENTILES}}
    summary = {'n': int(values.size), 'mean': round(float(values.mean()), 3)}
    for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
        summary[f'p{p}'] = round(float(v), 3)
    return summary


def ratio(numerator, denominator):
    """Return numerator / denominator to 3 places; None when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


class Samples:
    """Named series of samples collected over a run."""

    def __init__(self):
        self._series = collections.defaultdict(list)

    def add(self, name, value):
        """Append one sample to the series `name`."""
        self._series[name].append(value)

    def add_all(self, values):
        """Append every (name, value) of a dict."""
        for name, value in values.items():
            self._series[name].append(value)

    def names(self):
        """Return the series names, in the order they were first added."""
        return list(self._series)

    def values(self, name):
        """Return the samples of `name` (empty when none)."""
        return list(self._series.get(name, ()))

    def summaries(self, names=None):
        """Return {name: summary} for `names` (default: every series, in insertion order)."""
        return {name: summarize(self._series.get(name, ())) for name in names or self._series}
