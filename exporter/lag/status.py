"""A group's status over a sliding window, as Burrow evaluates consumers: no thresholds, only what
the offsets did. Verdicts, most severe first:
- stopped: lag > 0 and no members (the group is Empty: nothing will consume it); members unknown (the
  describe failed) is never stopped;
- stalled: lag > 0, members all through the window, and not one committed offset moved over it (a
  group whose members just came back has a window to commit first);
- lagging: offsets move, but the group's lag grew from sample to sample over the whole window;
- ok: anything else, a window with a sample at lag 0, and a window not yet covered (a restarted
  exporter does not page before it has seen a window)."""
from __future__ import annotations

import itertools
from collections import deque

from exporter.lag.model import LAGGING, OK, STALLED, STOPPED, Snapshot


class StatusTracker:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        # group -> samples (taken_at, a digest of the committed offsets of the partitions with a lag, total lag,
        # members): the digest, not the offsets, so a 10-minute window of 10,000 groups over 50 partitions each
        # holds 200,000 numbers, not 10 million offsets
        self._history: dict[str, deque[tuple[float, int, int, int | None]]] = {}

    def update(self, snap: Snapshot) -> dict[str, int]:
        verdicts = {}
        for gid, group in snap.groups.items():
            lags = {tp: lag for tp in group.committed if (lag := snap.lag(gid, tp)) is not None}
            history = self._history.setdefault(gid, deque())
            history.append((snap.taken_at, hash(frozenset((tp, group.committed[tp]) for tp in lags)),
                            sum(lags.values()), group.members))
            # keep the newest sample at or before the window's start: it says whether the window is covered
            while len(history) > 1 and history[1][0] <= snap.taken_at - self.window_s:
                history.popleft()
            verdicts[gid] = self._verdict(history, group.members, snap.taken_at)
        for gone in set(self._history) - set(snap.groups) - snap.unread_groups:      # unread is not gone
            del self._history[gone]
        return verdicts

    def _verdict(self, history: deque[tuple[float, int, int, int | None]], members: int | None, now: float) -> int:
        total = history[-1][2]
        if total == 0:
            return OK
        if members == 0:
            return STOPPED
        if history[0][0] > now - self.window_s or any(lag == 0 for _, _, lag, _ in history):
            return OK
        if history[0][1] == history[-1][1]:        # the same partitions lag, at the same committed offsets
            return STALLED if all(n for _, _, _, n in history) else OK
        totals = [lag for _, _, lag, _ in history]
        if all(b >= a for a, b in itertools.pairwise(totals)) and totals[-1] > totals[0]:
            return LAGGING
        return OK
