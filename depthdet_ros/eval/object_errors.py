"""Per-object depth error tables, in the spirit of seed 000's Table II.

Every object yields one ObjectSample per depth strategy: the strategy's estimate on the
predicted depth map against the object's GT depth (see ground_truth). Two box sources:
'detected' (detections matched one-to-one to GT boxes of their class, as the node
ranges objects) and 'ground_truth' (the GT boxes themselves, which isolates the depth
strategy from detection errors).

Statistics per group (ErrorStats): count, missing (no estimate: too few valid depth
pixels), MAE, RMSE and signed bias in metres and mean relative error over the estimated
objects, and the outlier shares over_10pct / over_25pct: objects whose estimate is
missing or off by more than 10 % / 25 % of the GT depth (the metric counterparts of
Table II's >3px / >5px). Groups: overall, per class, per distance band (by GT depth)
and per occlusion level (by GT visibility; objects without one under 'unknown', and no
occlusion table when none has one).
"""
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

BOX_SOURCES = ('detected', 'ground_truth')
DEFAULT_DISTANCE_EDGES_M = (1.0, 2.0, 4.0, 8.0)
# Occlusion levels as KITTI's 0/1/2: (name, lowest visibility).
OCCLUSION_LEVELS = (('none', 0.9), ('partial', 0.5), ('heavy', 0.0))
UNKNOWN_OCCLUSION = 'unknown'
OUTLIER_THRESHOLDS = (0.10, 0.25)


@dataclass(frozen=True)
class ObjectSample:
    """One object's depth estimate by one strategy against its GT depth."""

    box_source: str
    strategy: str
    class_name: str
    gt_depth: float
    visibility: Optional[float]
    estimate: float  # NaN: the strategy had too few valid pixels
    frame: int

    @property
    def error(self) -> float:
        """Signed error estimate - GT, metres (NaN when missing)."""
        return self.estimate - self.gt_depth


@dataclass(frozen=True)
class ErrorStats:
    """Depth error of a group of objects (see the module doc); None where undefined."""

    count: int
    missing: int
    mae_m: Optional[float]
    rmse_m: Optional[float]
    abs_rel: Optional[float]
    bias_m: Optional[float]
    over_10pct: Optional[float]
    over_25pct: Optional[float]

    def as_dict(self) -> Dict:
        """Field name -> value."""
        return asdict(self)


def error_stats(samples: Sequence[ObjectSample]) -> ErrorStats:
    """Summarise the errors of `samples` (all of one strategy and box source)."""
    gt = np.array([s.gt_depth for s in samples], dtype=np.float64)
    est = np.array([s.estimate for s in samples], dtype=np.float64)
    n = gt.size
    ok = np.isfinite(est)
    missing = int(n - np.count_nonzero(ok))
    if not n:
        return ErrorStats(0, 0, None, None, None, None, None, None)
    rel = np.abs(est[ok] - gt[ok]) / gt[ok]
    outliers = [(missing + int(np.count_nonzero(rel > t))) / n for t in OUTLIER_THRESHOLDS]
    if not ok.any():
        return ErrorStats(n, missing, None, None, None, None, *outliers)
    err = est[ok] - gt[ok]
    return ErrorStats(count=n, missing=missing, mae_m=float(np.mean(np.abs(err))),
                      rmse_m=float(math.sqrt(np.mean(err * err))), abs_rel=float(rel.mean()),
                      bias_m=float(err.mean()), over_10pct=outliers[0], over_25pct=outliers[1])


def distance_band(depth: float, edges: Sequence[float]) -> str:
    """Label of the band holding `depth`: '<e0 m', 'e0-e1 m', ..., '>=eN m'."""
    if depth < edges[0]:
        return f'<{edges[0]:g} m'
    for low, high in zip(edges, edges[1:]):
        if depth < high:
            return f'{low:g}-{high:g} m'
    return f'>={edges[-1]:g} m'


def distance_band_labels(edges: Sequence[float]) -> List[str]:
    """Labels of all bands, nearest first."""
    return [f'<{edges[0]:g} m'] + [f'{a:g}-{b:g} m' for a, b in zip(edges, edges[1:])] + \
        [f'>={edges[-1]:g} m']


def occlusion_level(visibility: Optional[float]) -> str:
    """Name of the occlusion level of a visibility in [0, 1] (None: unknown)."""
    if visibility is None:
        return UNKNOWN_OCCLUSION
    for name, lowest in OCCLUSION_LEVELS:
        if visibility >= lowest:
            return name
    return OCCLUSION_LEVELS[-1][0]


@dataclass(frozen=True)
class StrategyTable:
    """Error statistics of one strategy and box source, overall and by group.

    by_occlusion is None when no object has a visibility.
    """

    overall: ErrorStats
    by_class: Dict[str, ErrorStats]
    by_distance: Dict[str, ErrorStats]
    by_occlusion: Optional[Dict[str, ErrorStats]]

    def as_dict(self) -> Dict:
        """JSON-ready nested dict."""
        def groups(table):
            return None if table is None else {k: v.as_dict() for k, v in table.items()}
        return {'overall': self.overall.as_dict(), 'by_class': groups(self.by_class),
                'by_distance': groups(self.by_distance),
                'by_occlusion': groups(self.by_occlusion)}


def _grouped(samples, key, order=None) -> Dict[str, ErrorStats]:
    groups: Dict[str, List[ObjectSample]] = {}
    for sample in samples:
        groups.setdefault(key(sample), []).append(sample)
    names = [n for n in order if n in groups] if order else sorted(groups)
    return {name: error_stats(groups[name]) for name in names}


def strategy_table(samples: Sequence[ObjectSample],
                   distance_edges: Sequence[float] = DEFAULT_DISTANCE_EDGES_M) -> StrategyTable:
    """Build the table of one strategy and box source."""
    with_visibility = any(s.visibility is not None for s in samples)
    return StrategyTable(
        overall=error_stats(samples),
        by_class=_grouped(samples, lambda s: s.class_name),
        by_distance=_grouped(samples, lambda s: distance_band(s.gt_depth, distance_edges),
                             distance_band_labels(distance_edges)),
        by_occlusion=_grouped(samples, lambda s: occlusion_level(s.visibility),
                              [name for name, _ in OCCLUSION_LEVELS] + [UNKNOWN_OCCLUSION])
        if with_visibility else None)


def error_tables(samples: Sequence[ObjectSample], strategies: Sequence[str],
                 distance_edges: Sequence[float] = DEFAULT_DISTANCE_EDGES_M
                 ) -> Dict[str, Dict[str, StrategyTable]]:
    """Return {box_source: {strategy: StrategyTable}} over samples with a finite GT depth."""
    usable = [s for s in samples if math.isfinite(s.gt_depth) and s.gt_depth > 0]
    return {source: {strategy: strategy_table(
        [s for s in usable if s.box_source == source and s.strategy == strategy],
        distance_edges) for strategy in strategies} for source in BOX_SOURCES}
