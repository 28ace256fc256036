"""Streaming-aware training samples: labelled clips placed in context, cut into head windows.

The live engine decides on windows of ``window`` clips (8 x 16 frames = the
last 128 frames). A training sample is a sequence of ``S`` consecutive clips
(``S * 16`` frames) holding one labelled clip in context; every run of
``window`` consecutive clips in it is one head window, labelled by where the
gesture ends relative to the window's end (``d = window_end - gesture_end``,
frames):

=====================  ==============  ==========================================
d                      label           why
=====================  ==============  ==========================================
``0 <= d < 24``        the gesture     it has just been completed: fire now
``-16 <= d < 0``       ignored         nearly complete; either answer is fine
``24 <= d < 40``       ignored         completed a while ago; either is fine
otherwise              ``no_gesture``  not yet performed, or long done (so the
                                       probability falls and the debouncer re-arms)
=====================  ==============  ==========================================

Why not the seed's black padding: a camera never shows black frames, so a
model that learned "gesture = the part between black frames" has nothing to
go on live. A clip shorter than the sequence is placed in realistic context
instead: before it, the clip's own first frame held still (a hand waiting,
with sensor noise and a little tremor) or ``no_gesture`` footage from the
dataset; after it, its last frame held still. No window ever sees a black frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from .debounce import OPPOSITES

POS_D = 24          # windows ending 0..23 frames after the gesture end are positive
IGNORE_BEFORE = 16  # d in [-16, 0): ignored
IGNORE_AFTER = 16   # d in [24, 40): ignored

FLIP_SWAP = OPPOSITES  # mirroring the image swaps exactly the opposite swipes


def window_label(d: int, gesture: int, background: int, delay: int = 0) -> tuple[int, float]:
    """(class index, weight) for a window ending ``d`` frames after ``gesture``'s end.

    ``delay`` moves the whole labelling that many frames later (``gesture train --label-delay``): the head
    learns to answer only once it has seen what the hand does just after the gesture.
    """
    d -= delay
    if 0 <= d < POS_D:
        return gesture, 1.0
    if -IGNORE_BEFORE <= d < 0 or POS_D <= d < POS_D + IGNORE_AFTER:
        return background, 0.0
    return background, 1.0


def resample(clip: np.ndarray, rate: float) -> np.ndarray:
    """Play ``clip (T, ...)`` ``rate`` times faster (nearest frames): a faster or slower performer."""
    n = max(2, int(round(len(clip) / rate)))
    idx = np.clip(np.round(np.arange(n) * rate).astype(int), 0, len(clip) - 1)
    return clip[idx]


def held(frame: np.ndarray, n: int, rng: np.random.Generator, tremor: float = 0.6) -> np.ndarray:
    """``n`` frames of a hand held still: ``frame`` with sub-pixel tremor (no black frames)."""
    if n <= 0:
        return np.empty((0,) + frame.shape, frame.dtype)
    out = np.empty((n,) + frame.shape, frame.dtype)
    h, w = frame.shape[:2]
    walk = np.cumsum(rng.normal(0, tremor * 0.3, (n, 2)), axis=0).clip(-tremor * 2, tremor * 2)
    for i in range(n):
        m = np.float32([[1, 0, walk[i, 0]], [0, 1, walk[i, 1]]])
        out[i] = cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out


def loop_to(clip: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames from ``clip`` played forward then backward (ping-pong), no jumps."""
    if n <= 0:
        return clip[:0]
    pp = np.concatenate([clip, clip[::-1]]) if len(clip) > 1 else clip
    reps = int(np.ceil(n / len(pp)))
    return np.concatenate([pp] * reps)[:n]


def augment(seq: np.ndarray, rng: np.random.Generator, ref: int = 112, colour: float = 0.0) -> np.ndarray:
    """Same photometric and geometric change on every frame of ``seq (T, H, W, 3) uint8``.

    Shifts and sensor noise are given for a ``ref``-pixel crop and scale with the frame size, so a
    crop downsampled 4x for training gets the shift and the (4x4-averaged) noise the model sees live.
    With probability ``colour`` the colours change as well (:func:`recolour`: hue, saturation and
    channel order), so a model cannot lean on skin tone; at 0 no random number is drawn for it, so a
    recipe without it gives the same samples as before it existed.
    """
    if colour > 0 and rng.random() < colour:
        seq = recolour(seq, rng)
    T, h, w, _ = seq.shape
    px = w / ref
    s = rng.uniform(0.9, 1.12)
    ang = rng.uniform(-8, 8)
    tx, ty = rng.uniform(-8, 8, 2) * px
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, s)
    m[:, 2] += (tx, ty)
    gain = rng.uniform(0.65, 1.35) * rng.uniform(0.9, 1.1, 3)
    bias = rng.uniform(-25, 25)
    noise = rng.uniform(0, 6) * px
    lut = [np.clip(np.arange(256) * g + bias, 0, 255).astype(np.uint8) for g in gain]
    out = np.empty_like(seq)
    for i in range(T):
        f = cv2.warpAffine(seq[i], m, (w, h), borderMode=cv2.BORDER_REFLECT)
        out[i] = cv2.merge([cv2.LUT(f[:, :, c], lut[c]) for c in range(3)])
    if noise > 0.5 * px:
        bank = _noise_bank(h, w)
        idx = rng.integers(0, len(bank), T)
        out = np.clip(out.astype(np.int16) + (bank[idx] * (noise / 4)).astype(np.int16), 0, 255).astype(np.uint8)
    return out


def colour_matrix(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 colour transform: hue turned about the grey axis, saturation x0.3-1.6 (or 0: grey, 15%),
    channels shuffled.

    Grey stays grey (each row sums to 1), so brightness and the hand's outline survive: what changes
    is what colour the hand, the sleeve and the background are.
    """
    grey = np.full((3, 3), 1 / 3)
    a = rng.uniform(-np.pi, np.pi)
    u = np.ones(3) / np.sqrt(3)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rot = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)  # Rodrigues: turn about (1,1,1)
    sat = rng.choice([0.0, rng.uniform(0.3, 1.6)], p=[0.15, 0.85])
    m = grey + sat * rot @ (np.eye(3) - grey)
    return m[rng.permutation(3)]


def recolour(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``seq (..., 3) uint8`` with one :func:`colour_matrix` applied to every pixel."""
    m = colour_matrix(rng).astype(np.float32)
    out = seq.reshape(-1, 3).astype(np.float32) @ m.T
    return np.clip(out + 0.5, 0, 255).astype(np.uint8).reshape(seq.shape)  # +0.5: round, not truncate


_NOISE: dict = {}


def _noise_bank(h: int, w: int) -> np.ndarray:
    """32 frames of unit-sigma*4 Gaussian sensor noise, made once (drawing fresh noise per frame is slow)."""
    if (h, w) not in _NOISE:
        _NOISE[(h, w)] = np.random.default_rng(0).normal(0, 4, (32, h, w, 3)).astype(np.float32)
    return _NOISE[(h, w)]


def balance(y: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """Weights scaled so every class carries the same total weight (positives are a few windows per clip)."""
    tot = np.bincount(y, weights=w, minlength=n)
    scale = np.where(tot > 0, tot.sum() / (n * np.maximum(tot, 1e-9)), 0.0)
    return (w * scale[y]).astype(np.float32)
