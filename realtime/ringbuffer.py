"""A preallocated ring buffer of preprocessed frames with a named drop policy.

Storage: ``(capacity, size, size, 3) uint8`` BGR crops plus each slot's frame id,
capture time and source frame id (the frame of the camera or file it shows: the same
id unless the source's frame rate was changed on the way in, ``realtime.framerate``). Frame ``i`` lives in slot ``i % capacity``; the buffer never
grows.

The consumer (the inference worker) says which frames it still needs with
:meth:`FrameRing.release` (``floor``: the oldest frame id any future clip or
recording will read). What the producer does when the slot it is about to
write still holds a needed frame depends on the policy:

* ``DropPolicy.DROP_OLDEST`` (cameras, ``--realtime`` files, the synthetic live
  source): overwrite it and count a dropped frame. The producer never waits.
* ``DropPolicy.WAIT`` (file sources by default): wait until the worker releases
  it, so every frame is processed and replays are deterministic.
"""

from __future__ import annotations

import enum
import threading

import numpy as np


class DropPolicy(enum.Enum):
    DROP_OLDEST = "drop_oldest"
    WAIT = "wait"


class FrameRing:
    def __init__(self, capacity: int, size: int = 112, policy: DropPolicy = DropPolicy.DROP_OLDEST):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.size, self.policy = int(capacity), int(size), policy
        self.frames = np.zeros((self.capacity, size, size, 3), np.uint8)
        self.ids = np.full(self.capacity, -1, np.int64)
        self.times = np.zeros(self.capacity, np.float64)
        self.source_ids = np.full(self.capacity, -1, np.int64)
        self._cond = threading.Condition()
        self._newest = -1          # newest committed frame id
        self._floor = 0            # frames with id >= floor are still needed by the consumer
        self._closed = False
        self.dropped = 0           # needed frames overwritten before the consumer read them
        self.written = 0

    # -- producer ---------------------------------------------------------------------------
    def reserve(self, frame_id: int, timeout: float) -> np.ndarray | None:
        """The slot array to write frame ``frame_id`` into, or None if WAIT timed out / ring closed.

        Under WAIT this blocks (up to ``timeout`` s) while the slot still holds a
        needed frame. Under DROP_OLDEST it never blocks; overwriting a needed frame
        counts as a drop.
        """
        slot = frame_id % self.capacity
        with self._cond:
            if self.policy is DropPolicy.WAIT:
                ok = self._cond.wait_for(
                    lambda: self._closed or frame_id - self.capacity < self._floor, timeout=timeout
                )
                if not ok or self._closed:
                    return None
            else:
                old = int(self.ids[slot])
                if old >= 0 and old >= self._floor:
                    self.dropped += 1
            self.ids[slot] = -1  # invalid while being written
        return self.frames[slot]

    def commit(self, frame_id: int, t: float, source_id: int | None = None) -> None:
        """Publish the frame written into the reserved slot, stamped with its capture time and the
        source frame it shows (default: ``frame_id``)."""
        slot = frame_id % self.capacity
        with self._cond:
            self.ids[slot] = frame_id
            self.times[slot] = t
            self.source_ids[slot] = frame_id if source_id is None else source_id
            self._newest = max(self._newest, frame_id)
            self.written += 1
            self._cond.notify_all()

    def put(self, frame_id: int, crop: np.ndarray, t: float, timeout: float = 1.0) -> bool:
        """Copy a ready ``(size, size, 3)`` crop in (reserve + commit). False if WAIT timed out."""
        slot = self.reserve(frame_id, timeout)
        if slot is None:
            return False
        slot[...] = crop
        self.commit(frame_id, t)
        return True

    def close(self) -> None:
        """Wake every waiter; later waits return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- consumer ---------------------------------------------------------------------------
    @property
    def newest(self) -> int:
        with self._cond:
            return self._newest

    def wait_newer(self, than: int, timeout: float) -> int:
        """Block until a frame newer than ``than`` is committed (or timeout/close); returns newest id."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._newest > than, timeout=timeout)
            return self._newest

    def release(self, floor: int) -> None:
        """Frames with id < ``floor`` are no longer needed (lets WAIT producers go on)."""
        with self._cond:
            if floor > self._floor:
                self._floor = floor
                self._cond.notify_all()

    def read(self, first_id: int, n: int, out: np.ndarray | None = None):
        """Frames ``first_id .. first_id + n - 1`` as ``(n, size, size, 3) uint8`` and their times.

        Returns ``(frames, times)`` or ``None`` when any of them was overwritten or
        not written yet. ``out`` (preallocated) avoids an allocation per clip.
        """
        if n > self.capacity or first_id < 0:
            return None
        ids = np.arange(first_id, first_id + n)
        slots = ids % self.capacity
        if out is None:
            out = np.empty((n, self.size, self.size, 3), np.uint8)
        with self._cond:
            if not np.array_equal(self.ids[slots], ids):
                return None
            np.take(self.frames, slots, axis=0, out=out)
            times = self.times[slots].copy()
        return out, times

    def source_id(self, frame_id: int) -> int | None:
        """The source frame that frame ``frame_id`` shows, or None once it was overwritten."""
        slot = frame_id % self.capacity
        with self._cond:
            return int(self.source_ids[slot]) if self.ids[slot] == frame_id else None

    def latest(self, n: int):
        """The newest ``n`` frames still held, oldest first: ``(frames copy, ids, times)``."""
        with self._cond:
            newest = self._newest
            if newest < 0:
                return np.empty((0, self.size, self.size, 3), np.uint8), np.empty(0, np.int64), np.empty(0)
            first = max(0, newest - min(n, self.capacity) + 1)
            ids = np.arange(first, newest + 1)
            slots = ids % self.capacity
            keep = self.ids[slots] == ids
            slots, ids = slots[keep], ids[keep]
            return self.frames[slots].copy(), ids, self.times[slots].copy()
