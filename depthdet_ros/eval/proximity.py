"""Proximity-alert precision and recall against ground truth.

A GT object is an alert when its GT depth is below its class's threshold
(class_max_depth, else max_depth), exactly as the node decides on estimates.

- Objects: a raised alert is a true positive when its detection is matched to a GT
  alert object, else a false positive; a GT alert object without a matched raised alert
  (missed detection, or estimated too far) is a false negative.
- Frames: a frame alerts when any object in it does; counted as tp/fp/fn/tn per frame.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple


def alert_limit(class_name: str, max_depth: float, class_max_depth: Dict[str, float]) -> float:
    """Alert distance of a class (metres)."""
    return class_max_depth.get(class_name, max_depth)


@dataclass(frozen=True)
class AlertCounts:
    """Confusion counts with precision, recall and F1 (None where undefined)."""

    tp: int
    fp: int
    fn: int
    tn: Optional[int] = None  # frames only: objects have no countable negatives

    @property
    def precision(self) -> Optional[float]:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> Optional[float]:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> Optional[float]:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None

    def as_dict(self) -> Dict:
        """Return the counts and rates."""
        out = {'tp': self.tp, 'fp': self.fp, 'fn': self.fn}
        if self.tn is not None:
            out['tn'] = self.tn
        out.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return out


class AlertTally:
    """Accumulates object- and frame-level alert outcomes over frames."""

    def __init__(self):
        self._objects = [0, 0, 0]
        self._frames = [0, 0, 0, 0]

    def add_frame(self, raised: Sequence[bool], gt_alert: Sequence[bool],
                  pairs: Sequence[Tuple[int, int]]) -> None:
        """Add one frame: alerts raised per detection, GT alert per GT object, matches."""
        matched_gt = {p: g for p, g in pairs}
        tp = sum(1 for p, up in enumerate(raised)
                 if up and p in matched_gt and gt_alert[matched_gt[p]])
        fp = sum(1 for up in raised if up) - tp
        fn = sum(1 for g in gt_alert if g) - tp
        self._objects = [a + b for a, b in zip(self._objects, (tp, fp, fn))]
        frame_raised, frame_truth = any(raised), any(gt_alert)
        outcome = (frame_raised and frame_truth, frame_raised and not frame_truth,
                   frame_truth and not frame_raised, not (frame_raised or frame_truth))
        self._frames = [a + int(b) for a, b in zip(self._frames, outcome)]

    def objects(self) -> AlertCounts:
        """Object-level counts so far."""
        return AlertCounts(*self._objects)

    def frames(self) -> AlertCounts:
        """Frame-level counts so far."""
        return AlertCounts(*self._frames)
