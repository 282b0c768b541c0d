"""Copies of a camera's images: two publishers on one topic deliver every image twice.

A driver and a relay (or a bag played beside the live camera) on one image topic give
each image twice, the copy at once or frames late. Taken as another frame, a copy would
be a second hit for the tracker and the same measurement twice (a late copy an old one,
as a late frame). An image is a copy when its stamp, frame_id and identity (the
caller's: the message's fields and a CRC of its data) are those of one of the last
COPIES_KEPT images, arrived at most COPY_WINDOW_S before it (a relay over a network may
lag several frames). Later, the same image is a replay (a bag looped) and is taken as a
new image; a bag of a second or less in a loop has every other pass taken as copies.
An image with only the stamp and frame_id of the one before is new too, but says a
camera stamps several images alike (or not at all: stamp 0). The node answers a copy
of its newest image again and drops a late one; the bag tools skip both.
"""
import collections
from typing import Hashable

COPIES_KEPT = 30  # 1 s of a 30 Hz camera
COPY_WINDOW_S = 1.0

NEW, COPY, LATE_COPY, STAMP_REPEATED = 'new', 'copy', 'late copy', 'stamp repeated'


class RecentImages:
    """Tells a copy of one of a stream's last images from a new image (see the module doc)."""

    def __init__(self):
        self._arrivals = collections.OrderedDict()  # (stamp ns, frame_id, identity) -> s
        self._newest = None

    def classify(self, stamp_ns: int, frame_id: str, identity: Hashable,
                 arrival_s: float) -> str:
        """Return NEW, COPY (of the newest image), LATE_COPY or STAMP_REPEATED; remember it.

        arrival_s: when the image arrived, on any clock that does not go back (the
        node's receipt, a bag's record time).
        """
        key = (stamp_ns, frame_id, identity)
        arrived = self._arrivals.get(key)
        if arrived is not None and arrival_s - arrived <= COPY_WINDOW_S:
            return COPY if key == self._newest else LATE_COPY
        repeated = self._newest is not None and self._newest[:2] == key[:2] \
            and self._newest[2] != identity
        self._arrivals[key] = arrival_s
        self._arrivals.move_to_end(key)
        if len(self._arrivals) > COPIES_KEPT:
            self._arrivals.popitem(last=False)
        self._newest = key
        return STAMP_REPEATED if repeated else NEW
