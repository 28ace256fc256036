"""Turning a stream of class probabilities into discrete gesture events. Pure: time is passed in.

Rules (TwentyBN ``sense`` style hysteresis):

* smooth: average the last ``smoothing`` probability vectors;
* fire when a gesture's smoothed probability reaches ``threshold`` and that
  gesture is armed and no cooldown is running;
* after firing, that gesture is disarmed until its smoothed probability falls
  below ``rearm`` (so one held or slowly decaying gesture is one event), and
  every gesture waits ``cooldown_s``;
* return strokes: for ``opposite_s`` after a swipe fired, the opposite swipe does not
  fire (it is swallowed: disarmed, the cooldown starts, no event). Someone who swipes
  right moves the hand back left; to a model that sees the last 128 frames that return
  can look like a swipe left. Off (0) in this class; 1 s in ``config.yaml``, chosen with the
  bundled model on six validation streams (11 false events instead of 12 with it off, one fewer
  gesture matched). A swipe the other way within 1 s of a swipe is lost with it.

Example (threshold 0.6, rearm 0.4, smoothing 1, cooldown 1 s)::

    t=0.0 p(Left)=0.2 -> nothing
    t=0.5 p(Left)=0.9 -> EVENT Left
    t=1.0 p(Left)=0.8 -> nothing (disarmed)
    t=2.0 p(Left)=0.3 -> Left re-armed
    t=2.5 p(Left)=0.9 -> EVENT Left (a second gesture)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


OPPOSITES = {"2_Fingers_Left": "2_Fingers_Right", "2_Fingers_Right": "2_Fingers_Left"}


@dataclass(frozen=True)
class Decision:
    """What the debouncer says after one head output."""

    label: str | None       # the event's label, or None when nothing fired
    confidence: float       # smoothed probability of ``label`` (of the top class when None)
    smoothed: np.ndarray    # (n_labels,) smoothed probabilities


class Debouncer:
    def __init__(self, labels, threshold=0.6, rearm=0.4, cooldown_s=0.8, smoothing=2, background="no_gesture",
                 opposite_s=0.0, opposites=None):
        if not 0 <= rearm < threshold <= 1:
            raise ValueError(f"need 0 <= rearm < threshold <= 1, got rearm={rearm}, threshold={threshold}")
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1, got {smoothing}")
        self.labels = list(labels)
        self.threshold, self.rearm, self.cooldown_s = float(threshold), float(rearm), float(cooldown_s)
        self._hist: deque[np.ndarray] = deque(maxlen=int(smoothing))
        self._gesture_idx = [i for i, l in enumerate(self.labels) if l != background]
        self._armed = {i: True for i in self._gesture_idx}
        self._last_event_t = -np.inf
        if opposite_s < 0:
            raise ValueError(f"opposite_s must be >= 0, got {opposite_s}")
        self.opposite_s = float(opposite_s)
        pairs = OPPOSITES if opposites is None else opposites
        self._opposite = {self.labels.index(a): self.labels.index(b) for a, b in pairs.items()
                          if a in self.labels and b in self.labels}
        self._fired_t: dict[int, float] = {}

    @classmethod
    def from_config(cls, labels, cfg) -> "Debouncer":
        return cls(labels, cfg.threshold, cfg.rearm, cfg.cooldown_s, cfg.smoothing, opposite_s=cfg.opposite_s)

    def reset(self) -> None:
        self._hist.clear()
        self._armed = {i: True for i in self._gesture_idx}
        self._last_event_t = -np.inf
        self._fired_t.clear()

    def update(self, probs, t: float) -> Decision:
        """Feed one ``(n_labels,)`` probability vector at time ``t`` (seconds, monotonic)."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} probabilities, got {p.shape[0]}")
        self._hist.append(p)
        s = np.mean(self._hist, axis=0)
        for i in self._gesture_idx:
            if not self._armed[i] and s[i] < self.rearm:
                self._armed[i] = True
        best = max(self._gesture_idx, key=lambda i: s[i])
        if s[best] >= self.threshold and self._armed[best] and t - self._last_event_t >= self.cooldown_s:
            self._armed[best] = False
            self._last_event_t = t
            opp = self._opposite.get(best)
            if opp is not None and t - self._fired_t.get(opp, -np.inf) < self.opposite_s:
                return Decision(None, float(s[best]), s)  # the return stroke of the swipe just made
            self._fired_t[best] = t
            return Decision(self.labels[best], float(s[best]), s)
        top = int(np.argmax(s))
        return Decision(None, float(s[top]), s)
