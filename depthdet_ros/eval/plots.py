"""Report plots (matplotlib, headless): error vs distance, per-class error, latency."""
import math
import os
from typing import Dict, List, Sequence

import numpy as np

from depthdet_ros.eval.object_errors import BOX_SOURCES, ObjectSample

SOURCE_TITLES = {'detected': 'detected boxes', 'ground_truth': 'ground-truth boxes'}
LATENCY_STAGES = ('total', 'detector', 'depth', 'decode')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _finite(samples):
    return [s for s in samples if math.isfinite(s.estimate) and math.isfinite(s.gt_depth)]


def _mark_empty(ax):
    ax.text(0.5, 0.5, 'no scored objects', ha='center', va='center', transform=ax.transAxes)
    ax.set_xticks([])


def error_vs_distance(samples: Sequence[ObjectSample], strategies: Sequence[str], path) -> None:
    """Signed error against GT depth per strategy, one panel per box source."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(BOX_SOURCES), figsize=(11, 4), sharey=True, squeeze=False)
    for ax, source in zip(axes[0], BOX_SOURCES):
        plotted = 0
        for strategy in strategies:
            chosen = _finite(s for s in samples
                             if s.box_source == source and s.strategy == strategy)
            ax.scatter([s.gt_depth for s in chosen], [s.error for s in chosen], s=10,
                       alpha=0.6, label=strategy)
            plotted += len(chosen)
        if not plotted:
            _mark_empty(ax)
        ax.axhline(0.0, color='black', linewidth=0.8)
        ax.set_title(SOURCE_TITLES[source])
        ax.set_xlabel('GT object depth (m)')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('estimate - GT (m)')
    axes[0][-1].legend(loc='best', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_class_error(tables: Dict, strategies: Sequence[str], path) -> None:
    """Bars of per-class MAE per strategy, one panel per box source.

    `tables` is the report's `objects` section.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(BOX_SOURCES), figsize=(11, 4), squeeze=False)
    width = 0.8 / max(len(strategies), 1)
    for ax, source in zip(axes[0], BOX_SOURCES):
        classes: List[str] = sorted({c for s in strategies
                                     for c in tables[source][s]['by_class']})
        if not classes:
            _mark_empty(ax)
        x = np.arange(len(classes))
        for k, strategy in enumerate(strategies):
            by_class = tables[source][strategy]['by_class']
            values = [by_class.get(c, {}).get('mae_m') for c in classes]
            ax.bar(x + (k - (len(strategies) - 1) / 2) * width,
                   [np.nan if v is None else v for v in values], width, label=strategy)
        ax.set_xticks(x)
        ax.set_xticklabels(classes, rotation=30, ha='right')
        ax.set_title(SOURCE_TITLES[source])
        ax.set_ylabel('MAE (m)')
        ax.grid(axis='y', alpha=0.3)
    axes[0][-1].legend(loc='best', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latency_histogram(latency_ms: Dict[str, List[float]], path) -> None:
    """Histograms of the main latency stages."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    shown = [s for s in LATENCY_STAGES if latency_ms.get(s)]
    # Common bins, so the stages compare bar for bar.
    bins = np.histogram_bin_edges(np.concatenate([latency_ms[s] for s in shown]), bins=40)
    for stage in shown:
        ax.hist(latency_ms[stage], bins=bins, alpha=0.5, label=stage)
    ax.set_xlabel('milliseconds')
    ax.set_ylabel('frames')
    ax.legend(loc='best', fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(report: Dict, samples: Sequence[ObjectSample],
                latency_ms: Dict[str, List[float]], out_dir) -> List[str]:
    """Write the plots that have data into `out_dir`; return their file names."""
    written = []
    objects = report['objects']
    if objects is not None and samples:
        strategies = objects['strategies']
        error_vs_distance(samples, strategies, os.path.join(out_dir, 'error_vs_distance.png'))
        per_class_error(objects, strategies, os.path.join(out_dir, 'per_class_error.png'))
        written += ['error_vs_distance.png', 'per_class_error.png']
    if any(latency_ms.get(s) for s in LATENCY_STAGES):
        latency_histogram(latency_ms, os.path.join(out_dir, 'latency.png'))
        written.append('latency.png')
    return written
