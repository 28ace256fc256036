"""Mirror averaging: every clip is also seen mirrored, and the two views must agree.

The four gestures are mirror images of each other in pairs: a clip flipped left to right shows the
same click or shake, and a left swipe becomes a right one (``debounce.OPPOSITES``; the training
already mirrors clips this way). So the head's output for the mirrored clip, with those two
labels swapped back, is a second opinion on the same motion. The engine combines the two by their
normalised geometric mean: a class scores high only where both views say so, which removes more
false events than it loses gestures (docs/ablation.md, "Session 8"). It costs one more backbone
and head call per clip, batched with the first.
"""

from __future__ import annotations

import numpy as np

from .debounce import OPPOSITES


def swap_index(labels) -> np.ndarray:
    """The label permutation a mirror applies: ``probs_mirrored[:, swap_index(labels)]`` is in ``labels`` order."""
    labels = list(labels)
    return np.array([labels.index(OPPOSITES[lab]) if OPPOSITES.get(lab) in labels else i
                     for i, lab in enumerate(labels)])


def mirror_clips(crops: np.ndarray) -> np.ndarray:
    """``crops (..., H, W, C)`` flipped left to right (a view; copy it where contiguity matters)."""
    return crops[..., ::-1, :]


def combine(probs: np.ndarray, probs_mirrored: np.ndarray, swap: np.ndarray) -> np.ndarray:
    """Normalised geometric mean of ``probs (n, K)`` and the mirrored view's ``(n, K)``, its labels swapped back."""
    g = np.sqrt(np.asarray(probs, np.float64) * np.asarray(probs_mirrored, np.float64)[:, swap])
    s = g.sum(-1, keepdims=True)
    return np.where(s > 0, g / np.maximum(s, 1e-300), np.asarray(probs, np.float64)).astype(np.float32)


def enabled(setting: str, spec) -> bool:
    """``pipeline.mirror_average`` for a model: ``auto`` is on for the small backbones (about 8 ms more per clip on
    2 cores for the bundled one) and off for the full Sports1M C3D (over a second per clip on a CPU)."""
    if setting == "auto":
        return float(spec.width) < 1.0
    return setting == "on"
