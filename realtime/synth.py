"""Procedural renderer of hand-gesture videos: training clips and a continuous test stream.

There is no camera and no gesture video set here, so data is drawn: a hand is a set of
21 MediaPipe-style landmarks per frame, and each frame is painted with OpenCV (palm
polygon, tapered anti-aliased finger capsules, outline, highlight, forearm and sleeve)
over a random scene (solid / gradient / noise texture / cluttered room, optionally a
person behind), with lighting, white balance, exposure drift, sensor noise and motion
blur.

Hand motion comes from two sources, mixed:

* real trajectories: ``realtime/data/landmarks`` (MediaPipe landmarks of real people,
  see its README), with gaps interpolated, MediaPipe glitches removed, a random time
  warp, scale, shift and small rotation, and an optional handedness mirror;
* procedural motion models: parametric hand poses (finger curls, spread, 3-D hand
  orientation) driven by keyframes, oscillators and tremor noise, for every gesture and
  every ``no_gesture`` behaviour.

Direction convention (important)
--------------------------------
Frames are what an UNMIRRORED webcam delivers, and left/right are the USER's own, as in
the real recordings: in the raw image a ``2_Fingers_Left`` moves toward the image's
RIGHT edge (x increasing) and a ``2_Fingers_Right`` toward the image's LEFT edge (x
decreasing). Handedness (a left or a right hand) only mirrors the hand's SHAPE around
the wrist: procedural hands are mirrored in the hand's own frame before the hand is
oriented and placed, real trajectories (right hands) are reflected about the hand's long
axis through the wrist, so where the fingers point is kept. It never changes the
direction of the motion: the wrist path is the same for both hands.

Gestures (labels from ``realtime.config``)
------------------------------------------
* ``1_Finger_Click``: index out, others curled; the fingertip presses forward/down and
  back, 1-2 presses; the wrist moves little.
* ``2_Fingers_Left`` / ``2_Fingers_Right``: index + middle extended, sliding sideways
  (see the convention above); the hand usually rotates a little with the slide.
* ``Shake_Hand``: open hand waved side to side, 3-7 direction changes, ends near its start.
* ``no_gesture``: idle hand (tremor; any hand shape, including a gesture's shape held
  still), hand entering / leaving (unhurried, mostly from below, also from the sides),
  slow random drift, fidgeting (finger wiggles, open/close, partial curls, thumb
  twiddling, small slow pokes that are not a click, half-swipes much slower and shorter
  than a swipe), repositioning (mostly vertical, moderate speed), an empty scene, and
  other moving things (ball / box / stick / skin-coloured blob crossing, swinging or
  bouncing; a person passing; a head swaying, nodding, leaning or crossing; lighting
  flicker, strobe, a light switched on/off, slow dimming), with or without a hand in
  view; sometimes a second distractor is overlaid.

Clip timing (what the training side should know)
-------------------------------------------------
``render_clip`` for a gesture: 0-10 idle lead-in frames (hand already in view, in the
gesture's start pose), then the gesture motion (0.6-2.5 s; real trajectories are time
warped into that range), then 0-10 lead-out frames. The clip ends 0-10 frames after the
motion ends, so the motion sits at the END of the clip. ``no_gesture`` clips are 1.5-4.5
s of one behaviour (sometimes with a second, overlaid distractor).
``SyntheticStream.segments`` marks exactly the motion span (lead-in/out idle excluded).

Only ``cv2``, ``numpy`` (and ``tqdm`` for progress bars) are imported; the live engine
imports this module for ``--source synthetic``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import DEFAULT_LABELS, GESTURES, NO_GESTURE

__all__ = ["render_clip", "SyntheticStream", "write_clips", "write_stream", "LANDMARK_DIR"]

LANDMARK_DIR = Path(__file__).resolve().parent / "data" / "landmarks"

_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA

# ---------------------------------------------------------------------------------------
# small numeric helpers
# ---------------------------------------------------------------------------------------


def _mj(x):
    """Minimum-jerk 0->1 profile."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)


def _smooth_noise(rng, n, sigma, cols=1):
    """(n, cols) smooth noise with unit standard deviation; ``sigma`` in frames."""
    sigma = max(0.5, float(sigma))
    pad = int(3 * sigma) + 2
    x = rng.standard_normal((n + 2 * pad, cols)).astype(np.float32)
    k = int(2 * math.ceil(3 * sigma) + 1)
    y = cv2.GaussianBlur(x, (1, k), sigmaX=0, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)[pad:pad + n]
    sd = math.sqrt(float((cv2.getGaussianKernel(k, sigma) ** 2).sum()))  # std of filtered unit noise
    return (y / sd).astype(np.float64)


def _kf(ts, vs, n, fps):
    """Keyframe interpolation (minimum-jerk between keys). ts: seconds, vs: (K, ...) -> (n, ...)."""
    ts = np.asarray(ts, np.float64)
    vs = np.asarray(vs, np.float64)
    if len(ts) == 1:
        return np.repeat(vs[:1], n, axis=0)
    t = np.arange(n) / fps
    i = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
    span = np.maximum(ts[i + 1] - ts[i], 1e-9)
    u = _mj((t - ts[i]) / span)
    u = u.reshape((n,) + (1,) * (vs.ndim - 1))
    return vs[i] + (vs[i + 1] - vs[i]) * u


def _col(x, n):
    """Scalar or (n,) -> (n,) float array."""
    a = np.asarray(x, np.float64)
    return np.broadcast_to(a, (n,)).copy() if a.ndim == 0 else a.astype(np.float64)


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


# ---------------------------------------------------------------------------------------
# hand kinematics: 21 landmarks in the MediaPipe order
# ---------------------------------------------------------------------------------------

# local hand frame (right hand, palm toward the camera, fingers up): x toward the thumb
# side, y down (image convention, so the fingers point to -y), z away from the camera.
_MCP = np.array([[0.30, -0.95, 0.02], [0.07, -1.00, 0.0], [-0.16, -0.94, 0.01], [-0.37, -0.83, 0.03]])
_FAN = np.array([0.12, 0.0, -0.11, -0.24])
_SPREAD = np.array([0.20, 0.04, -0.13, -0.28])
_LEN = np.array([[0.40, 0.25, 0.21], [0.45, 0.29, 0.22], [0.42, 0.27, 0.21], [0.33, 0.21, 0.19]])
_THUMB_CMC = np.array([0.21, -0.27, -0.03])
_THUMB_LEN = np.array([0.40, 0.31, 0.26])

# drawing tables
_R_REL = np.array([0.16, 0.19, 0.135, 0.118, 0.103, 0.112, 0.104, 0.094, 0.084, 0.118, 0.11, 0.099,
                   0.089, 0.11, 0.1, 0.09, 0.081, 0.097, 0.086, 0.078, 0.07])
_SEGS = np.array([(1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (9, 10), (10, 11), (11, 12),
                  (13, 14), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20)])
_FINGER_JOINTS = [(2, 3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20)]
_PALM = (0, 5, 9, 13, 17)
_ARC_K = 7
_ARC1 = np.stack([np.cos(np.linspace(np.pi / 2, 3 * np.pi / 2, _ARC_K)),
                  np.sin(np.linspace(np.pi / 2, 3 * np.pi / 2, _ARC_K))], 1)
_ARC2 = np.stack([np.cos(np.linspace(-np.pi / 2, np.pi / 2, _ARC_K)),
                  np.sin(np.linspace(-np.pi / 2, np.pi / 2, _ARC_K))], 1)
_CIRC10 = np.stack([np.cos(np.linspace(0, 2 * np.pi, 10, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 10, endpoint=False))], 1)


def _fk(curl, mcp_extra, spread, tabd):
    """Forward kinematics. curl, mcp_extra: (T,5) [thumb..pinky]; spread, tabd: (T,). -> (T,21,3) local."""
    T = curl.shape[0]
    out = np.zeros((T, 21, 3))
    c = curl[:, 1:]
    a = (_FAN + spread[:, None] * _SPREAD) * (1.0 - 0.55 * c)
    d0 = np.stack([np.sin(a), -np.cos(a), np.zeros_like(a)], -1)  # (T,4,3)
    n = np.array([0.0, 0.0, -1.0])
    m1 = 1.35 * c + mcp_extra[:, 1:]
    m2 = m1 + 1.7 * c
    m3 = m2 + 1.05 * c
    phi = np.stack([m1, m2, m3], -1)  # (T,4,3)
    dirs = np.cos(phi)[..., None] * d0[:, :, None, :] + np.sin(phi)[..., None] * n
    joints = _MCP[None, :, None, :] + np.cumsum(_LEN[None, :, :, None] * dirs, axis=2)
    for f in range(4):
        base = 5 + 4 * f
        out[:, base] = _MCP[f]
        out[:, base + 1:base + 4] = joints[:, f]
    # thumb
    ct = curl[:, 0]
    th = 0.45 + 0.55 * tabd - 0.35 * ct
    ps = 0.30 + 0.45 * ct + 0.15 * (1 - tabd)
    dt = np.stack([np.sin(th) * np.cos(ps), -np.cos(th) * np.cos(ps), -np.sin(ps)], -1)
    braw = np.array([-1.0, -0.15, -0.55])
    bt = braw - (dt @ braw)[:, None] * dt
    bt /= np.linalg.norm(bt, axis=1, keepdims=True)
    b1 = 0.05 + 0.25 * ct + mcp_extra[:, 0]
    b2 = b1 + 0.1 + 0.55 * ct
    b3 = b2 + 0.1 + 0.75 * ct
    bb = np.stack([b1, b2, b3], -1)  # (T,3)
    tdirs = np.cos(bb)[..., None] * dt[:, None, :] + np.sin(bb)[..., None] * bt[:, None, :]
    out[:, 1] = _THUMB_CMC
    out[:, 2:5] = _THUMB_CMC + np.cumsum(_THUMB_LEN[None, :, None] * tdirs, axis=1)
    return out


def _rot(roll, yaw, pitch):
    """(T,) angles -> (T,3,3) = Rz(roll) @ Ry(yaw) @ Rx(pitch), image axes (x right, y down, z away)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    T = len(roll)
    Rz = np.zeros((T, 3, 3)); Rz[:, 0, 0] = cr; Rz[:, 0, 1] = -sr; Rz[:, 1, 0] = sr; Rz[:, 1, 1] = cr; Rz[:, 2, 2] = 1
    Ry = np.zeros((T, 3, 3)); Ry[:, 0, 0] = cy; Ry[:, 0, 2] = sy; Ry[:, 1, 1] = 1; Ry[:, 2, 0] = -sy; Ry[:, 2, 2] = cy
    Rx = np.zeros((T, 3, 3)); Rx[:, 0, 0] = 1; Rx[:, 1, 1] = cp; Rx[:, 1, 2] = -sp; Rx[:, 2, 1] = sp; Rx[:, 2, 2] = cp
    return Rz @ Ry @ Rx


def _place(local, h, roll, yaw, pitch, wx, wy, scale):
    """Local (T,21,3) -> image px (T,21,3) (z: px, relative to the wrist, toward camera negative)."""
    T = local.shape[0]
    loc = local.copy()
    loc[..., 0] *= h
    R = _rot(_col(roll, T), _col(yaw, T), _col(pitch, T))
    sc = _col(scale, T)
    p = np.einsum("tij,tkj->tki", R, loc) * sc[:, None, None]
    F = 7.0 * sc[:, None]
    pf = np.clip(F / np.maximum(F + p[..., 2], 1e-3), 0.7, 1.5)
    out = np.empty_like(p)
    out[..., 0] = _col(wx, T)[:, None] + p[..., 0] * pf
    out[..., 1] = _col(wy, T)[:, None] + p[..., 1] * pf
    out[..., 2] = p[..., 2]
    return out


@dataclass
class _Ctx:
    """What a motion generator needs to know about the scene: frame size, fps, the person."""

    W: int
    H: int
    fps: float
    h: float  # +1 right hand, -1 left hand
    s: float  # base hand size: wrist -> middle-finger MCP, px


def _sec(ctx, s):
    return max(1, int(round(s * ctx.fps)))


POSTURES = ("open", "relaxed", "point", "two", "fist", "claw", "thumb", "three", "pinch")


def _posture(rng, kind):
    """Static hand-shape parameters: curl (5,), mcp (5,), spread, thumb abduction."""
    u = lambda lo, hi, n=None: rng.uniform(lo, hi, n)  # noqa: E731
    mcp = np.zeros(5)
    if kind == "open":
        curl = np.r_[u(0, 0.2), u(0, 0.12, 4)]; spread = u(0.3, 1.0); tabd = u(0.4, 1.0)
    elif kind == "relaxed":
        base = u(0.12, 0.45)
        curl = np.r_[u(0.05, 0.4), np.clip(base + np.array([0, 0.05, 0.1, 0.15]) + u(-0.08, 0.08, 4), 0, 1)]
        spread = u(0.0, 0.4); tabd = u(0.2, 0.7)
    elif kind == "point":
        curl = np.r_[u(0.45, 1.0) if rng.random() < 0.85 else u(0.0, 0.3), u(0, 0.1), u(0.75, 1.0, 3)]
        spread = u(0.0, 0.3); tabd = u(0.0, 0.5)
    elif kind == "two":
        curl = np.r_[u(0.45, 1.0) if rng.random() < 0.85 else u(0.0, 0.3), u(0, 0.12, 2), u(0.8, 1.0, 2)]
        spread = u(0.0, 0.6); tabd = u(0.0, 0.5)
    elif kind == "fist":
        curl = np.r_[u(0.6, 1.0), u(0.85, 1.0, 4)]; spread = u(0, 0.2); tabd = u(0, 0.3)
    elif kind == "claw":
        curl = np.r_[u(0.2, 0.6), u(0.35, 0.7, 4)]; spread = u(0.2, 0.8); tabd = u(0.3, 0.8)
    elif kind == "thumb":
        curl = np.r_[u(0, 0.15), u(0.85, 1.0, 4)]; spread = u(0, 0.2); tabd = u(0.5, 1.0)
    elif kind == "three":
        curl = np.r_[u(0.5, 1.0), u(0, 0.12, 3), u(0.8, 1.0)]; spread = u(0.1, 0.7); tabd = u(0, 0.5)
    else:  # pinch / "ok"
        curl = np.r_[u(0.4, 0.6), u(0.45, 0.65), u(0, 0.3, 3)]; spread = u(0.1, 0.6); tabd = u(0.3, 0.6)
    return dict(curl=curl, mcp=mcp, spread=spread, tabd=tabd)


def _orient(rng, mode="any"):
    """(roll, yaw, pitch) of a resting hand. Mostly palm toward the camera, fingers up."""
    r = rng.random()
    if mode == "front" or (mode == "any" and r < 0.6):
        yaw = rng.normal(0, 0.35)
    elif r < 0.85 or mode == "side":
        yaw = rng.choice([-1, 1]) * _u(rng, 0.6, 1.35)
    else:
        yaw = math.pi + rng.normal(0, 0.35)
    roll = rng.normal(0, 0.3)
    pitch = rng.uniform(-0.35, 0.3)
    return roll, yaw, pitch


def _tremor(rng, n, s, amp=None):
    """Wrist jitter + slow sway: (n,2) px and roll (n,) rad."""
    amp = _u(rng, 0.004, 0.018) if amp is None else amp
    sway = _u(rng, 0.0, 0.05)
    xy = _smooth_noise(rng, n, _u(rng, 1.0, 2.5), 2) * amp * s + _smooth_noise(rng, n, _u(rng, 10, 25), 2) * sway * s
    roll = _smooth_noise(rng, n, _u(rng, 3, 10), 1)[:, 0] * _u(rng, 0.0, 0.03)
    return xy, roll


def _hand_pos(rng, ctx, s, margin_x=0.18):
    """A comfortable wrist position for a hand of size s (fingers up, in view)."""
    lo_y = min(0.92 * ctx.H, 2.05 * s + 0.03 * ctx.H)
    y = _u(rng, lo_y, max(lo_y, 0.92 * ctx.H))
    x = _u(rng, margin_x * ctx.W, (1 - margin_x) * ctx.W)
    return x, y


def _sample_s(rng, ctx):
    return ctx.s * _u(rng, 0.85, 1.15)


class _Pose:
    """Parametric hand pose over time; every field is an (n,) or (n,5) array."""

    def __init__(self, n, posture, roll, yaw, pitch, wx, wy, s):
        self.n = n
        self.curl = np.repeat(posture["curl"][None], n, 0).astype(np.float64)
        self.mcp = np.repeat(posture["mcp"][None], n, 0).astype(np.float64)
        self.spread = _col(posture["spread"], n)
        self.tabd = _col(posture["tabd"], n)
        self.roll, self.yaw, self.pitch = _col(roll, n), _col(yaw, n), _col(pitch, n)
        self.wx, self.wy, self.scale = _col(wx, n), _col(wy, n), _col(s, n)

    def landmarks(self, h):
        loc = _fk(np.clip(self.curl, 0, 1.1), self.mcp, self.spread, self.tabd)
        return _place(loc, h, self.roll, self.yaw, self.pitch, self.wx, self.wy, self.scale)

    def add_tremor(self, rng, amp=None):
        xy, roll = _tremor(rng, self.n, float(np.mean(self.scale)), amp)
        self.wx += xy[:, 0]; self.wy += xy[:, 1]; self.roll += roll
        self.curl += _smooth_noise(rng, self.n, 4, 5) * 0.015
        return self


# ---------------------------------------------------------------------------------------
# real trajectories (MediaPipe landmarks of real people)
# ---------------------------------------------------------------------------------------

_REAL: dict[str, list[np.ndarray]] | None = None


def _palm_size(p):
    """Robust hand size (wrist -> middle MCP) from landmarks (..., 21, 3)."""
    a = np.linalg.norm(p[..., 9, :] - p[..., 0, :], axis=-1)
    b = np.linalg.norm(p[..., 5, :] - p[..., 17, :], axis=-1) / 0.68
    c = np.linalg.norm(p[..., 5, :] - p[..., 0, :], axis=-1) / 0.99
    d = np.linalg.norm(p[..., 17, :] - p[..., 0, :], axis=-1) / 0.9
    return np.median(np.stack([a, b, c, d], -1), axis=-1)


def _clean_real(raw):
    """(T,63) normalized (x,y,z), zero rows = no hand -> (T',21,3) in frame-height units,
    leading gaps trimmed, glitches dropped, gaps interpolated. None when unusable."""
    a = raw.reshape(-1, 21, 3).astype(np.float64) * np.array([4.0 / 3.0, 1.0, 4.0 / 3.0])
    valid = np.abs(raw).sum(1) > 0
    if valid.sum() < 8:
        return None
    s = float(np.median(_palm_size(a[valid])))
    idx = np.flatnonzero(valid)
    # a gap longer than 8 frames loses the gesture itself: not usable
    if len(idx) > 1 and (np.diff(idx) - 1).max() > 8:
        return None
    # glitches: a frame far from both neighbours' average
    for _ in range(2):
        idx = np.flatnonzero(valid)
        for j in range(len(idx)):
            t = idx[j]
            nb = [idx[k] for k in (j - 1, j + 1) if 0 <= k < len(idx)]
            if not nb:
                continue
            ref = np.mean([a[k, :, :2] for k in nb], axis=0)
            dev = np.linalg.norm(a[t, :, :2] - ref, axis=-1).mean() / s
            if dev > (0.6 if len(nb) == 2 else 0.8):
                valid[t] = False
    idx = np.flatnonzero(valid)
    k = 0
    while k < min(8, len(idx) - 8) and a[idx[k], 9, 1] > a[idx[k], 0, 1]:
        k += 1
    idx = idx[k:]
    a = a[idx[0]:idx[-1] + 1]
    valid = valid[idx[0]:idx[-1] + 1]
    t = np.arange(len(a))
    flat = a.reshape(len(a), -1)
    good = np.flatnonzero(valid)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(t, good, flat[good, c])
    return flat.reshape(-1, 21, 3)


def _load_real():
    global _REAL
    if _REAL is not None:
        return _REAL
    out: dict[str, list[np.ndarray]] = {g: [] for g in GESTURES}
    index = LANDMARK_DIR / "index.csv"
    if index.exists():
        with open(index, newline="") as f:
            for row in csv.DictReader(f):
                label = row["label"]
                if label not in out:
                    continue
                raw = np.loadtxt(LANDMARK_DIR / row["file"], delimiter=",", skiprows=1, ndmin=2)
                trk = _clean_real(raw)
                if trk is not None:
                    out[label].append(trk)
    _REAL = out
    return out


def _motion_end(lm):
    """Index of the last frame that still moves noticeably (landmarks in any unit)."""
    s = float(np.median(_palm_size(lm)))
    sp = np.linalg.norm(np.diff(lm[:, :, :2], axis=0), axis=-1).mean(1) / max(s, 1e-9)
    if len(sp) == 0:
        return 0
    sp = np.convolve(np.r_[sp[0], sp, sp[-1]], [0.25, 0.5, 0.25], "valid")
    thr = max(0.05, 0.12 * sp.max())
    moving = np.flatnonzero(sp > thr)
    return int(moving[-1] + 1) if len(moving) else len(lm) - 1


def _mirror_shape(lm):
    """Reflect each frame's hand about its own long axis through the wrist (handedness flip)."""
    w = lm[:, 0:1, :2]
    axis = lm[:, [5, 9, 13, 17], :2].mean(1, keepdims=True) - w
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    rel = lm[..., :2] - w
    along = (rel * axis).sum(-1, keepdims=True) * axis
    out = lm.copy()
    out[..., :2] = w + 2 * along - rel
    return out


def _real_gesture(rng, label, ctx):
    """A real trajectory, warped and placed. -> (lm (T,21,3) px, motion_end index) or None."""
    pool = _load_real().get(label) or []
    if not pool:
        return None
    src = pool[int(rng.integers(len(pool)))]
    if rng.random() < 0.5:  # MediaPipe jitter: sometimes smooth it a little
        src = src.copy()
        src[1:-1] = 0.25 * src[:-2] + 0.5 * src[1:-1] + 0.25 * src[2:]
    mend = _motion_end(src)
    # time warp: global speed + smooth non-linear warp, motion length kept in 0.6-2.5 s
    n_motion = mend + 1
    speed = _u(rng, 0.8, 1.25)
    lo, hi = 0.6 * ctx.fps, 2.5 * ctx.fps
    n_new_motion = int(np.clip(round(n_motion * ctx.fps / 30.0 / speed), lo, hi))
    rate = np.exp(0.25 * _smooth_noise(rng, 4 * len(src), len(src))[:, 0])
    for _ in range(4):  # the non-linear warp moves the motion end: keep it within 0.6-2.5 s
        factor = n_new_motion / n_motion
        n_new = max(n_new_motion, int(round(len(src) * factor)), 2)
        r = np.interp(np.linspace(0, len(rate) - 1, n_new), np.arange(len(rate)), rate)
        cum = np.r_[0.0, np.cumsum(r)[:-1]]
        cum = cum / max(cum[-1], 1e-9) * (len(src) - 1)
        new_mend = min(max(int(np.searchsorted(cum, mend)), 1), n_new - 1)
        if new_mend + 1 < lo:
            n_new_motion = int(math.ceil(n_new_motion * lo / (new_mend + 1)))
        elif new_mend + 1 > hi:
            n_new_motion = int(n_new_motion * hi / (new_mend + 1))
        else:
            break
    i0 = np.clip(np.floor(cum).astype(int), 0, len(src) - 1)
    i1 = np.clip(i0 + 1, 0, len(src) - 1)
    fr = (cum - i0)[:, None, None]
    lm = src[i0] * (1 - fr) + src[i1] * fr
    # space: handedness, scale, rotation, position
    if ctx.h < 0:
        lm = _mirror_shape(lm)
    s_src = float(np.median(_palm_size(lm)))
    k = _sample_s(rng, ctx) / s_src
    ang = rng.normal(0, 0.12)
    ca, sa = math.cos(ang), math.sin(ang)
    c = lm[:, 0, :2].mean(0)
    rel = lm[..., :2] - c
    xy = np.stack([ca * rel[..., 0] - sa * rel[..., 1], sa * rel[..., 0] + ca * rel[..., 1]], -1) * k
    # place: the wrist path inside the frame, fingertips mostly in view
    wr = xy[:, 0]
    allp = xy.reshape(-1, 2)
    lo_x = 0.06 * ctx.W - wr[:, 0].min(); hi_x = 0.94 * ctx.W - wr[:, 0].max()
    cx = _u(rng, lo_x, hi_x) if hi_x > lo_x else 0.5 * (lo_x + hi_x)
    lo_y = 0.02 * ctx.H - np.percentile(allp[:, 1], 3); hi_y = 0.97 * ctx.H - wr[:, 1].max()
    cy = _u(rng, lo_y, hi_y) if hi_y > lo_y else 0.5 * (lo_y + hi_y)
    out = np.empty_like(lm)
    out[..., 0] = xy[..., 0] + cx
    out[..., 1] = xy[..., 1] + cy
    out[..., 2] = lm[..., 2] * k
    return out, new_mend


def _real_pose(rng, ctx):
    """A static real hand pose from the still tail of a real recording, relative to its wrist, size 1."""
    pools = [p for p in _load_real().values() if p]
    if not pools:
        return None
    pool = pools[int(rng.integers(len(pools)))]
    src = pool[int(rng.integers(len(pool)))]
    p = src[int(rng.integers(max(0, len(src) - 6), len(src)))].copy()
    if ctx.h < 0:
        p = _mirror_shape(p[None])[0]
    p -= p[0]
    return p / float(_palm_size(p))


def _animate_pose(rel, n, wx, wy, s, roll):
    """Rigidly move a unit-size pose (21,3) along paths (n,) -> (n,21,3) px."""
    wx, wy, s, roll = _col(wx, n), _col(wy, n), _col(s, n), _col(roll, n)
    c, si = np.cos(roll)[:, None], np.sin(roll)[:, None]
    out = np.empty((n, 21, 3))
    out[..., 0] = wx[:, None] + (c * rel[None, :, 0] - si * rel[None, :, 1]) * s[:, None]
    out[..., 1] = wy[:, None] + (si * rel[None, :, 0] + c * rel[None, :, 1]) * s[:, None]
    out[..., 2] = rel[None, :, 2] * s[:, None]
    return out


# ---------------------------------------------------------------------------------------
# procedural gestures: each returns (lm (T,21,3) px, motion_end index); motion starts at 0
# ---------------------------------------------------------------------------------------


def _fit_duration(parts, lo, hi):
    """Scale a list of phase durations (s) so their sum lies in [lo, hi]."""
    tot = sum(parts)
    if tot < lo:
        parts = [p * lo / tot for p in parts]
    elif tot > hi:
        parts = [p * hi / tot for p in parts]
    return parts


def _proc_click(rng, ctx):
    s = _sample_s(rng, ctx)
    presses = 1 if rng.random() < 0.6 else 2
    approach = _u(rng, 0.15, 0.5) if rng.random() < 0.35 else 0.0
    phases = [approach, _u(rng, 0.05, 0.35)]
    for i in range(presses):
        phases += [_u(rng, 0.1, 0.3), _u(rng, 0.0, 0.12), _u(rng, 0.12, 0.35)]
        if i < presses - 1:
            phases.append(_u(rng, 0.05, 0.3))
    phases = _fit_duration(phases, 0.6, 2.5)
    ts = np.cumsum([0.0] + phases)
    n = _sec(ctx, ts[-1])
    # p(t): 0 rest, 1 pressed
    vals = [0.0, 0.0, 0.0]
    for i in range(presses):
        depth = _u(rng, 0.7, 1.0)
        vals += [depth, depth, 0.0]
        if i < presses - 1:
            vals.append(0.0)
    p = _kf(ts, np.array(vals), n, ctx.fps)
    post = _posture(rng, "point")
    roll, yaw, pitch = _orient(rng)
    wx, wy = _hand_pos(rng, ctx, s)
    pose = _Pose(n, post, roll, yaw, pitch, wx, wy, s)
    if rng.random() < 0.7:  # finger press
        pose.mcp[:, 1] += p * _u(rng, 0.55, 1.15)
        pose.curl[:, 1] += p * _u(rng, 0.0, 0.25)
        pose.pitch += p * _u(rng, 0.0, 0.3)
        dy = _u(rng, 0.02, 0.12)
    else:  # whole-hand push with a stiff finger
        pose.mcp[:, 1] += p * _u(rng, 0.2, 0.5)
        pose.pitch += p * _u(rng, 0.35, 0.8)
        dy = _u(rng, 0.08, 0.2)
    pose.wy += p * dy * s
    pose.wx += p * rng.normal(0, 0.04) * s
    pose.scale *= 1 + p * _u(rng, 0.0, 0.1)
    if approach > 0:
        a = 1 - _mj(np.arange(n) / ctx.fps / max(approach, 1e-3))
        pose.wy += a * _u(rng, 0.2, 0.7) * s
        pose.wx += a * rng.normal(0, 0.2) * s
        pose.pitch -= a * _u(rng, 0.0, 0.3)
    pose.add_tremor(rng)
    return pose.landmarks(ctx.h), n - 1


def _proc_swipe(rng, ctx, direction):
    """direction: +1 toward the image's right edge (2_Fingers_Left), -1 toward the left edge."""
    s = _sample_s(rng, ctx)
    W = ctx.W
    flick = rng.random() < 0.25
    A = max(_u(rng, 0.15, 0.45) * W, 1.2 * s)
    A = min(A, 0.8 * W)
    t_pre = _u(rng, 0.0, 0.6)
    t_sw = _u(rng, 0.25, 1.0)
    t_post = _u(rng, 0.05, 0.35)
    t_pre, t_sw, t_post = _fit_duration([t_pre, t_sw, t_post], 0.6, 2.5)
    n = _sec(ctx, t_pre + t_sw + t_post)
    t = np.arange(n) / ctx.fps
    tau = np.clip((t - t_pre) / t_sw, 0, 1)
    gam = _u(rng, 0.7, 1.4)
    g = _mj(tau ** gam)
    # wind-up (small counter move), overshoot and settle
    wind = _u(rng, 0.0, 0.08) if rng.random() < 0.4 else 0.0
    pre = np.clip(t / max(t_pre, 1e-3), 0, 1)
    g = g - wind * np.sin(np.pi * pre) * (t < t_pre)
    over = _u(rng, 0.0, 0.06)
    post = np.clip((t - t_pre - t_sw) / max(t_post, 1e-3), 0, 1)
    g = g + over * np.sin(np.pi * post) * (t > t_pre + t_sw)
    wrist_amp = A * (_u(rng, 0.5, 0.75) if flick else 1.0)
    # start x so the path fits the frame
    x_lo, x_hi = 0.1 * W, 0.9 * W
    if direction > 0:
        x0 = _u(rng, x_lo, max(x_lo, x_hi - wrist_amp))
    else:
        x0 = _u(rng, min(x_hi, x_lo + wrist_amp), x_hi)
    _, y0 = _hand_pos(rng, ctx, s)
    wx = x0 + direction * wrist_amp * g
    arc = rng.normal(0, 0.08) * A
    wy = y0 + arc * np.sin(np.pi * np.clip(g, 0, 1)) + _u(rng, -0.1, 0.1) * A * g
    post_ = _posture(rng, "two")
    r = rng.random()
    if r < 0.55:
        roll0, yaw, pitch = _orient(rng)
    else:  # fingers pointing sideways, trailing the motion at the start (as in the real recordings)
        roll0 = -direction * _u(rng, 0.5, 1.4)
        yaw = rng.normal(0, 0.4) if rng.random() < 0.7 else rng.choice([-1, 1]) * _u(rng, 0.6, 1.2)
        pitch = _u(rng, -0.3, 0.3)
    ta = _u(rng, 0.0, 0.6) * (1.6 if flick else 1.0)
    tb = _u(rng, 0.0, 0.6) * (1.6 if flick else 1.0)
    roll = roll0 + direction * (-ta + (ta + tb) * g) * 0.5
    pose = _Pose(n, post_, roll, yaw + rng.normal(0, 0.15) * g, pitch, wx, wy, s)
    pose.scale *= 1 + _u(rng, -0.08, 0.08) * g
    pose.add_tremor(rng)
    return pose.landmarks(ctx.h), n - 1


def _proc_shake(rng, ctx):
    s = _sample_s(rng, ctx)
    W = ctx.W
    m = int(rng.integers(3, 8))  # direction changes
    half = _u(rng, 0.15, 0.35)
    D = float(np.clip(m * half, 0.6, 2.5))
    n = _sec(ctx, D)
    tau = np.arange(n) / max(n - 1, 1)
    warp = np.cumsum(np.exp(0.2 * _smooth_noise(rng, n, max(2, n / (2 * m)))[:, 0]))
    warp = (warp - warp[0]) / max(warp[-1] - warp[0], 1e-9)
    tau = 0.5 * tau + 0.5 * warp
    env = np.minimum(1.0, np.minimum(tau, 1 - tau) / 0.12) ** 0.7
    osc = np.sin(np.pi * m * tau)
    pivot = rng.random() < 0.3
    A = (_u(rng, 0.01, 0.04) if pivot else _u(rng, 0.05, 0.18)) * W
    A = max(A, (0.1 if pivot else 0.45) * s)
    ramp = _u(rng, 0.2, 0.6) * s if rng.random() < 0.3 else 0.0  # raise the hand while starting
    x0 = _u(rng, 0.15 * W + A, 0.85 * W - A) if 0.15 * W + A < 0.85 * W - A else 0.5 * W
    _, y0 = _hand_pos(rng, ctx, s)
    sign = rng.choice([-1, 1])
    wx = x0 + sign * A * osc * env
    wy = y0 + 0.12 * A * np.sin(2 * np.pi * m * tau + _u(rng, 0, 6.28)) + ramp * (1 - _mj(tau / 0.25))
    rot_amp = _u(rng, 0.4, 0.8) if pivot else _u(rng, 0.05, 0.5)
    lag = _u(rng, -0.6, 0.6)
    post_ = _posture(rng, "open" if rng.random() < 0.85 else "relaxed")
    roll0, yaw, pitch = _orient(rng, "front" if rng.random() < 0.75 else "any")
    roll = roll0 + sign * rot_amp * np.sin(np.pi * m * tau + lag) * env
    pose = _Pose(n, post_, roll, yaw + 0.15 * np.sin(np.pi * m * tau) * rng.normal(0, 1), pitch, wx, wy, s)
    pose.add_tremor(rng)
    return pose.landmarks(ctx.h), n - 1


def _fit_in_frame(lm, ctx, margin=0.02):
    """Shift a track (T,21,3) so that all its landmarks stay inside the frame where they can."""
    out = lm.copy()
    for axis, size in ((0, ctx.W), (1, ctx.H)):
        lo, hi = float(lm[..., axis].min()), float(lm[..., axis].max())
        a, b = margin * size, (1 - margin) * size
        if hi - lo > b - a:
            shift = 0.5 * (a + b) - 0.5 * (lo + hi) if axis == 0 else a - lo  # too big: keep fingertips
        elif lo < a:
            shift = a - lo
        elif hi > b:
            shift = b - hi
        else:
            shift = 0.0
        out[..., axis] += shift
    return out


def _gesture_track(rng, label, ctx, p_real=0.4):
    """(lm, motion_end) for a gesture: real trajectory (p_real) or procedural."""
    return _gesture_motion(rng, label, ctx, p_real)[:2]


def _gesture_motion(rng, label, ctx, p_real=0.4):
    """(lm, motion_end, source) for a gesture; source: "real" (a recorded trajectory) or "procedural"."""
    if rng.random() < p_real:
        r = _real_gesture(rng, label, ctx)
        if r is not None:
            lm, m = r
            if rng.random() < 0.85:
                lm = _fit_in_frame(lm, ctx)
            return lm, m, "real"
    if label == "1_Finger_Click":
        lm, m = _proc_click(rng, ctx)
    elif label == "2_Fingers_Left":
        lm, m = _proc_swipe(rng, ctx, +1)
    elif label == "2_Fingers_Right":
        lm, m = _proc_swipe(rng, ctx, -1)
    elif label == "Shake_Hand":
        lm, m = _proc_shake(rng, ctx)
    else:
        raise ValueError(f"unknown gesture label {label!r}")
    if rng.random() < 0.85:  # mostly the whole performance in view; sometimes cut by the frame edge
        lm = _fit_in_frame(lm, ctx)
    return lm, m, "procedural"


# ---------------------------------------------------------------------------------------
# no_gesture behaviours: each returns lm (n,21,3) px with NaN rows where no hand is in view
# ---------------------------------------------------------------------------------------


def _rest_hand(rng, ctx, n, kinds=POSTURES, p_real=0.35):
    """A resting hand (parametric pose or a real still pose) as a _Pose or a rigid real pose."""
    s = _sample_s(rng, ctx)
    wx, wy = _hand_pos(rng, ctx, s)
    if rng.random() < p_real:
        rel = _real_pose(rng, ctx)
        if rel is not None:
            return None, (rel, wx, wy, s, rng.normal(0, 0.25))
    kind = kinds[int(rng.integers(len(kinds)))]
    roll, yaw, pitch = _orient(rng)
    return _Pose(n, _posture(rng, kind), roll, yaw, pitch, wx, wy, s), None


def _render_rest(rng, ctx, n, pose, real, paths=None):
    """Landmarks of a resting hand plus optional (dx, dy, droll, dscale) paths and tremor."""
    dx, dy, dr, ds = paths if paths is not None else (0.0, 0.0, 0.0, 0.0)
    if pose is not None:
        pose.wx += dx; pose.wy += dy; pose.roll += dr; pose.scale *= 1 + _col(ds, n)
        pose.add_tremor(rng)
        return pose.landmarks(ctx.h)
    rel, wx, wy, s, roll = real
    xy, r = _tremor(rng, n, s)
    return _animate_pose(rel, n, wx + dx + xy[:, 0], wy + dy + xy[:, 1], s * (1 + _col(ds, n)), roll + dr + r)


def _ng_idle(rng, ctx, n):
    pose, real = _rest_hand(rng, ctx, n)
    return _render_rest(rng, ctx, n, pose, real)


def _ng_drift(rng, ctx, n):
    pose, real = _rest_hand(rng, ctx, n)
    k = max(2, int(n / ctx.fps / _u(rng, 0.8, 2.0)) + 1)
    ts = np.linspace(0, (n - 1) / ctx.fps, k)
    step = _u(rng, 0.02, 0.08) * ctx.W
    pts = np.cumsum(rng.normal(0, step, (k, 2)), 0)
    pts -= pts[0]
    path = _kf(ts, pts, n, ctx.fps)
    dr = _kf(ts, np.cumsum(rng.normal(0, 0.12, k)), n, ctx.fps)
    ds = _kf(ts, np.cumsum(rng.normal(0, 0.04, k)), n, ctx.fps)
    if pose is not None and rng.random() < 0.6:  # slow shape change too
        other = _posture(rng, POSTURES[int(rng.integers(len(POSTURES)))])
        w = _mj(np.arange(n) / max(n - 1, 1))[:, None]
        pose.curl = pose.curl * (1 - w) + other["curl"][None] * w
        pose.yaw += _kf(ts, np.cumsum(rng.normal(0, 0.15, k)), n, ctx.fps)
    return _render_rest(rng, ctx, n, pose, real, (path[:, 0], path[:, 1], dr, ds))


def _ng_fidget(rng, ctx, n):
    kind = rng.choice(["wiggle", "openclose", "partial", "poke", "halfswipe", "hold_shape", "twiddle"],
                      p=[0.2, 0.15, 0.12, 0.18, 0.17, 0.1, 0.08])
    s = _sample_s(rng, ctx)
    wx, wy = _hand_pos(rng, ctx, s)
    roll, yaw, pitch = _orient(rng)
    t = np.arange(n) / ctx.fps
    if kind == "wiggle":
        pose = _Pose(n, _posture(rng, rng.choice(["open", "relaxed", "claw"])), roll, yaw, pitch, wx, wy, s)
        f = rng.uniform(0.8, 3.0, 5)
        ph = rng.uniform(0, 6.28, 5)
        amp = rng.uniform(0.05, 0.45, 5)
        on = _kf([0, t[-1] * _u(rng, 0.1, 0.4), t[-1] * _u(rng, 0.6, 0.95), t[-1] + 1e-3], [0, 1, 1, 0], n, ctx.fps)
        pose.curl += (amp * (0.5 + 0.5 * np.sin(2 * np.pi * f * t[:, None] + ph))) * on[:, None]
    elif kind == "openclose":
        pose = _Pose(n, _posture(rng, "open"), roll, yaw, pitch, wx, wy, s)
        k = int(rng.integers(1, 3))
        period = t[-1] / k
        c = 0.5 - 0.5 * np.cos(2 * np.pi * t / max(period, 1e-3))
        pose.curl += c[:, None] * rng.uniform(0.5, 1.0, 5)
    elif kind == "partial":
        pose = _Pose(n, _posture(rng, "relaxed"), roll, yaw, pitch, wx, wy, s)
        k = int(rng.integers(2, 5))
        ts = np.linspace(0, t[-1], k)
        pose.curl += _kf(ts, rng.uniform(-0.1, 0.5, (k, 5)), n, ctx.fps)
    elif kind == "poke":  # small, slow index / middle flexes: not a click
        pose = _Pose(n, _posture(rng, rng.choice(["point", "relaxed", "open", "two"])), roll, yaw, pitch, wx, wy, s)
        finger = int(rng.choice([1, 1, 2, 3]))
        k = int(rng.integers(1, 4))
        ts, vs = [0.0], [0.0]
        for _ in range(k):
            ts += [ts[-1] + _u(rng, 0.3, 0.8), ts[-1] + _u(rng, 0.7, 1.5)]
            vs += [_u(rng, 0.08, 0.3), 0.0]
        pose.mcp[:, finger] += _kf(ts, vs, n, ctx.fps)
    elif kind == "halfswipe":  # two fingers sliding much slower and shorter than a swipe
        pose = _Pose(n, _posture(rng, "two"), roll, yaw, pitch, wx, wy, s)
        d = _u(rng, 0.03, 0.08) * ctx.W * rng.choice([-1, 1])
        t0 = _u(rng, 0.0, max(0.01, t[-1] - 1.5))
        dur = _u(rng, 0.8, 1.5)
        pose.wx += d * _mj((t - t0) / dur)
        pose.roll += _u(rng, 0.0, 0.15) * np.sign(d) * _mj((t - t0) / dur)
    elif kind == "hold_shape":  # a gesture's hand shape, held without the gesture's motion
        pose = _Pose(n, _posture(rng, rng.choice(["point", "two", "open"])), roll, yaw, pitch, wx, wy, s)
    else:  # twiddle: thumb rubbing
        pose = _Pose(n, _posture(rng, rng.choice(["relaxed", "pinch", "claw"])), roll, yaw, pitch, wx, wy, s)
        pose.curl[:, 0] += 0.25 * np.sin(2 * np.pi * _u(rng, 1.0, 3.0) * t)
        pose.tabd += 0.2 * np.sin(2 * np.pi * _u(rng, 0.7, 2.0) * t + 1)
    if rng.random() < 0.4:  # and some slow drift
        pose.wx += _smooth_noise(rng, n, 20)[:, 0] * _u(rng, 0.0, 0.02) * ctx.W
        pose.wy += _smooth_noise(rng, n, 20)[:, 0] * _u(rng, 0.0, 0.02) * ctx.H
    pose.add_tremor(rng)
    return pose.landmarks(ctx.h)


def _offscreen_offset(lm0, ctx, side):
    """Translation that moves the hand (21,3) fully out through `side` ('bottom','left','right','top')."""
    xs, ys = lm0[:, 0], lm0[:, 1]
    m = 0.04 * max(ctx.W, ctx.H)
    if side == "bottom":
        return np.array([0.0, ctx.H - ys.min() + m])
    if side == "top":
        return np.array([0.0, -ys.max() - m])
    if side == "left":
        return np.array([-xs.max() - m, 0.0])
    return np.array([ctx.W - xs.min() + m, 0.0])


def _enter_offset(rng, ctx, pose0):
    side = rng.choice(["bottom", "left", "right", "top"], p=[0.6, 0.18, 0.18, 0.04])
    off = _offscreen_offset(pose0, ctx, side)
    off[0] += rng.normal(0, 0.1) * ctx.W if side in ("bottom", "top") else 0.0
    off[1] += rng.normal(0, 0.15) * ctx.H if side in ("left", "right") else 0.0
    return off


def _enter_frames(rng, ctx, off, lo=0.5, hi=1.3):
    """Frames for a hand to travel `off` px at an unhurried speed (0.3-0.7 frame widths per second)."""
    dist = float(np.hypot(*off))
    return max(_sec(ctx, _u(rng, lo, hi)), _sec(ctx, dist / (_u(rng, 0.3, 0.7) * ctx.W)))


def _move_in(rng, ctx, pose0, n, reverse=False, off=None):
    """Hand (21,3) coming into view to pose0 over n frames (or leaving from it when reverse)."""
    off = _enter_offset(rng, ctx, pose0) if off is None else off
    u = _mj(np.arange(n) / max(n - 1, 1))
    w = u if reverse else 1 - u
    out = np.repeat(pose0[None], n, 0)
    out[..., 0] += w[:, None] * off[0]
    out[..., 1] += w[:, None] * off[1]
    # a little rotation while moving
    rot = w * rng.normal(0, 0.3)
    c, si = np.cos(rot)[:, None], np.sin(rot)[:, None]
    rel = out[..., :2] - out[:, :1, :2]
    out[..., 0] = out[:, :1, 0] + c * rel[..., 0] - si * rel[..., 1]
    out[..., 1] = out[:, :1, 1] + si * rel[..., 0] + c * rel[..., 1]
    return out


def _ng_enter(rng, ctx, n):
    idle = _ng_idle(rng, ctx, n)
    off = _enter_offset(rng, ctx, idle[-1])
    k = min(n, _enter_frames(rng, ctx, off))
    t0 = int(rng.integers(0, max(1, n - k - _sec(ctx, 0.3))))
    out = idle.copy()
    out[:t0] = np.nan
    e = min(t0 + k, n) - 1
    mv = _move_in(rng, ctx, idle[e], e - t0 + 1, off=off)
    out[t0:e + 1] = mv + (idle[t0:e + 1] - idle[e])  # keep the tremor
    return out


def _ng_leave(rng, ctx, n):
    idle = _ng_idle(rng, ctx, n)
    off = _enter_offset(rng, ctx, idle[0])
    k = min(n, _enter_frames(rng, ctx, off))
    t0 = int(rng.integers(0, max(1, n - k - _sec(ctx, 0.3)) + 1))
    t0 = min(t0, n - 1)
    k = min(k, n - t0)
    out = idle.copy()
    out[t0:t0 + k] = _move_in(rng, ctx, idle[t0], k, reverse=True, off=off) + (idle[t0:t0 + k] - idle[t0])
    out[t0 + k:] = np.nan
    return out


def _ng_reposition(rng, ctx, n):
    """The hand moves to another place at a moderate speed, mostly vertically, any non-gesture shape."""
    kinds = ("open", "relaxed", "fist", "claw", "thumb", "pinch", "three")
    pose, real = _rest_hand(rng, ctx, n, kinds=kinds)
    s = pose.scale[0] if pose is not None else real[3]
    ang = np.pi / 2 + rng.normal(0, 0.45)
    dist = _u(rng, 0.6, 1.8) * s
    d = np.array([math.cos(ang), math.sin(ang)]) * dist * rng.choice([-1, 1])
    dur = _u(rng, 0.5, 1.2)
    t0 = _u(rng, 0.0, max(0.01, n / ctx.fps - dur))
    t = np.arange(n) / ctx.fps
    g = _mj((t - t0) / dur)
    base = np.array([pose.wx[0], pose.wy[0]] if pose is not None else [real[1], real[2]])
    end = np.clip(base + d, [0.1 * ctx.W, 0.3 * ctx.H], [0.9 * ctx.W, 1.0 * ctx.H])
    dd = end - base
    return _render_rest(rng, ctx, n, pose, real, (dd[0] * g, dd[1] * g, rng.normal(0, 0.2) * g, 0.0))


def _ng_empty(rng, ctx, n):
    return np.full((n, 21, 3), np.nan)


# ---------------------------------------------------------------------------------------
# scene: background, person, distractors, lighting, noise
# ---------------------------------------------------------------------------------------


def _skin(rng):
    anchors = np.array([[196, 214, 245], [165, 190, 232], [135, 168, 214], [105, 142, 196],
                        [80, 112, 165], [58, 84, 128], [42, 60, 92]], np.float64)
    u = _u(rng, 0, len(anchors) - 1)
    i = min(int(u), len(anchors) - 2)
    c = anchors[i] * (1 - (u - i)) + anchors[i + 1] * (u - i)
    c = c + rng.normal(0, 6, 3) + np.array([-1, 0, 1]) * rng.normal(0, 6)
    return np.clip(c, 20, 250)


def _muted(rng, sat=(0.0, 0.45), val=(0.25, 0.95)):
    hsv = np.uint8([[[rng.integers(0, 180), int(255 * _u(rng, *sat)), int(255 * _u(rng, *val))]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _tc(c):
    return tuple(float(v) for v in c)


def _fx(v):
    return int(round(v * _ONE))


def _pt(p):
    return (_fx(p[0]), _fx(p[1]))


def _noise_field(rng, H, W, octaves=4, base=4):
    f = np.zeros((H, W), np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        g = base * (2 ** o)
        small = rng.random((max(2, g * H // max(H, W) + 2), g + 2)).astype(np.float32)
        f += amp * cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
        tot += amp
        amp *= _u(rng, 0.35, 0.65)
    f /= tot
    f -= f.min()
    return f / max(float(f.max()), 1e-6)


def _draw_person(img, rng, cx, cy, r, skin, hair, shirt, detail=True):
    """Head at (cx, cy) with radius r (px), neck and shoulders below."""
    sh = (_fx(cx), _fx(cy + 2.6 * r))
    H = img.shape[0]
    cv2.ellipse(img, sh, (_fx(2.4 * r), _fx(1.1 * r)), 0, 180, 360, _tc(shirt * 0.8), max(1, int(r * 0.1)), _AA, _SHIFT)
    cv2.ellipse(img, sh, (_fx(2.4 * r), _fx(1.1 * r)), 0, 180, 360, _tc(shirt), -1, _AA, _SHIFT)
    body = np.array([[cx - 2.4 * r, cy + 2.6 * r], [cx + 2.4 * r, cy + 2.6 * r],
                     [cx + 2.6 * r, max(H, cy + 6 * r) + 2], [cx - 2.6 * r, max(H, cy + 6 * r) + 2]])
    cv2.fillConvexPoly(img, (body * _ONE).astype(np.int32), _tc(shirt), _AA, _SHIFT)
    neck = np.array([[cx - 0.38 * r, cy + 0.6 * r], [cx + 0.38 * r, cy + 0.6 * r],
                     [cx + 0.45 * r, cy + 1.6 * r], [cx - 0.45 * r, cy + 1.6 * r]])
    cv2.fillConvexPoly(img, (neck * _ONE).astype(np.int32), _tc(skin * 0.8), _AA, _SHIFT)
    cv2.ellipse(img, _pt((cx, cy)), (_fx(0.8 * r), _fx(r)), 0, 0, 360, _tc(skin), -1, _AA, _SHIFT)
    cv2.ellipse(img, _pt((cx, cy - 0.25 * r)), (_fx(0.86 * r), _fx(0.82 * r)), 0, 180, 360, _tc(hair), -1, _AA, _SHIFT)
    if detail and r > 8:
        for ex in (-0.3, 0.3):
            cv2.ellipse(img, _pt((cx + ex * r, cy + 0.05 * r)), (_fx(0.12 * r), _fx(0.06 * r)), 0, 0, 360,
                        _tc(skin * 0.35), -1, _AA, _SHIFT)
        cv2.ellipse(img, _pt((cx, cy + 0.5 * r)), (_fx(0.22 * r), _fx(0.06 * r)), 0, 0, 360, _tc(skin * 0.6), -1,
                    _AA, _SHIFT)


def _background(rng, W, H, skin):
    kind = rng.choice(["solid", "gradient", "texture", "room", "room_texture"], p=[0.12, 0.15, 0.18, 0.4, 0.15])
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if kind == "solid":
        img = np.empty((H, W, 3), np.float32); img[:] = _muted(rng, (0, 0.6), (0.15, 0.95))
    elif kind == "gradient":
        c1, c2 = _muted(rng, (0, 0.6)), _muted(rng, (0, 0.6))
        if rng.random() < 0.6:
            a = _u(rng, 0, 2 * np.pi)
            g = (np.cos(a) * xx / W + np.sin(a) * yy / H)
        else:
            g = np.hypot(xx / W - _u(rng, 0, 1), yy / H - _u(rng, 0, 1))
        g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
        img = c1 * (1 - g[..., None]) + c2 * g[..., None]
    else:
        if kind == "room":
            c1, c2 = _muted(rng, (0, 0.35), (0.35, 0.95)), _muted(rng, (0, 0.35), (0.35, 0.95))
            g = (yy / H)[..., None] * _u(rng, 0, 1)
            img = c1 * (1 - g) + c2 * g
        else:
            f = _noise_field(rng, H, W, octaves=int(rng.integers(2, 6)), base=int(rng.integers(2, 8)))
            c1, c2 = _muted(rng, (0, 0.6)), _muted(rng, (0, 0.6))
            img = c1 * (1 - f[..., None]) + c2 * f[..., None]
        img = img.astype(np.float32)
        if kind.startswith("room"):
            img = np.ascontiguousarray(img)
            if rng.random() < 0.5:  # desk / floor band
                y = _u(rng, 0.7, 0.95) * H
                cv2.rectangle(img, (0, int(y)), (W, H), _tc(_muted(rng, (0, 0.5), (0.15, 0.7))), -1)
            for _ in range(int(rng.integers(3, 14))):
                r = rng.random()
                x0, y0 = _u(rng, -0.1, 1.0) * W, _u(rng, -0.1, 0.9) * H
                w_, h_ = _u(rng, 0.05, 0.45) * W, _u(rng, 0.05, 0.6) * H
                col = _muted(rng, (0, 0.8), (0.1, 1.0))
                if r < 0.45:
                    cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w_), int(y0 + h_)), _tc(col), -1)
                    if rng.random() < 0.4:  # frame / window bars
                        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w_), int(y0 + h_)), _tc(col * 0.5),
                                      int(rng.integers(1, 5)))
                        if rng.random() < 0.5:
                            cv2.line(img, (int(x0 + w_ / 2), int(y0)), (int(x0 + w_ / 2), int(y0 + h_)),
                                     _tc(col * 0.5), int(rng.integers(1, 4)))
                elif r < 0.6:  # shelf with books
                    y = int(y0)
                    cv2.line(img, (int(x0), y), (int(x0 + w_), y), _tc(col * 0.6), int(rng.integers(2, 6)))
                    x = x0
                    while x < x0 + w_:
                        bw = _u(rng, 0.01, 0.03) * W
                        bh = _u(rng, 0.05, 0.12) * H
                        cv2.rectangle(img, (int(x), int(y - bh)), (int(x + bw), y), _tc(_muted(rng, (0.2, 0.9))), -1)
                        x += bw + 1
                elif r < 0.75:
                    cv2.line(img, (int(x0), int(y0)), (int(x0 + _u(rng, -1, 1) * W), int(y0 + _u(rng, -1, 1) * H)),
                             _tc(col), int(rng.integers(1, 6)), _AA)
                elif r < 0.87:
                    cv2.circle(img, (int(x0), int(y0)), int(_u(rng, 0.02, 0.12) * H), _tc(col), -1, _AA)
                else:  # bright window / lamp
                    cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w_), int(y0 + h_)),
                                  _tc(np.clip(col + 120, 0, 255)), -1)
    img = np.clip(img, 0, 255).astype(np.float32)
    if rng.random() < 0.65:  # the user behind the hand
        r = _u(rng, 0.14, 0.3) * H
        cx = _u(rng, 0.3, 0.7) * W
        cy = _u(rng, 0.05, 0.45) * H
        img = np.ascontiguousarray(img)
        _draw_person(img, rng, cx, cy, r, skin * _u(rng, 0.85, 1.05), _muted(rng, (0, 0.5), (0.03, 0.4)),
                     _muted(rng, (0, 0.9), (0.1, 0.9)))
    sig = _u(rng, 0.0, 2.2)
    if sig > 0.4:
        img = cv2.GaussianBlur(img, (0, 0), sig)
    if rng.random() < 0.6:  # vignette
        v = 1 - _u(rng, 0.05, 0.4) * (((xx / W - 0.5) ** 2 + (yy / H - 0.5) ** 2) / 0.5)
        img = img * v[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


class _Event:
    """A distractor over frames [t0, t1) (scene time)."""

    def __init__(self, t0, t1):
        self.t0, self.t1 = int(t0), int(t1)

    def draw(self, img, t):
        pass

    def gain(self, t):
        return 1.0


class _Mover(_Event):
    """Ball / box / stick / skin blob / passer-by moving across or swinging."""

    def __init__(self, rng, ctx, t0, n, skin, slow=False):
        super().__init__(t0, t0 + n)
        W, H, fps = ctx.W, ctx.H, ctx.fps
        self.kind = rng.choice(["ball", "box", "stick", "blob", "passer"], p=[0.3, 0.25, 0.12, 0.18, 0.15])
        self.size = _u(rng, 0.04, 0.16) * H if self.kind != "passer" else _u(rng, 0.25, 0.45) * H
        self.col = skin * _u(rng, 0.8, 1.1) if self.kind == "blob" else _muted(rng, (0.0, 1.0), (0.1, 1.0))
        t = np.arange(n) / fps
        path = rng.choice(["line", "swing", "bounce"], p=[0.5, 0.3, 0.2]) if self.kind != "passer" else "line"
        if slow:
            path = "line"
        if path == "line":
            speed = _u(rng, 0.1, 0.3 if slow else 1.5) * W
            a = _u(rng, 0, 2 * np.pi)
            d = np.array([math.cos(a), math.sin(a)])
            if self.kind == "passer":
                d = np.array([rng.choice([-1.0, 1.0]), 0.0])
                speed = _u(rng, 0.15, 0.5) * W
            c = np.array([_u(rng, 0.2, 0.8) * W, _u(rng, 0.2, 0.8) * H])
            self.xy = c[None] + d[None] * speed * (t - t[-1] / 2)[:, None]
        elif path == "swing":
            A = _u(rng, 0.05, 0.3) * W
            f = _u(rng, 0.4, 2.5)
            c = np.array([_u(rng, 0.2, 0.8) * W, _u(rng, 0.2, 0.8) * H])
            ph = np.sin(2 * np.pi * f * t + _u(rng, 0, 6.28))
            self.xy = np.stack([c[0] + A * ph, c[1] + 0.2 * A * ph ** 2], 1)
        else:
            vx = _u(rng, -0.6, 0.6) * W
            x0 = _u(rng, 0.1, 0.9) * W
            per = _u(rng, 0.5, 1.2)
            hgt = _u(rng, 0.2, 0.6) * H
            ph = (t / per) % 1.0
            self.xy = np.stack([x0 + vx * t, H - self.size - 4 * hgt * ph * (1 - ph)], 1)
        self.rot = _u(rng, -3, 3) * t + _u(rng, 0, 3)
        self.aspect = _u(rng, 0.4, 1.0)
        self.p2 = rng.random()

    def draw(self, img, t):
        i = t - self.t0
        if i < 0 or i >= len(self.xy):
            return
        x, y = self.xy[i]
        r = self.size
        col = _tc(self.col)
        if self.kind == "ball":
            cv2.circle(img, _pt((x, y)), _fx(r), col, -1, _AA, _SHIFT)
            cv2.circle(img, _pt((x - 0.3 * r, y - 0.3 * r)), _fx(0.35 * r), _tc(np.clip(self.col * 1.3 + 30, 0, 255)),
                       -1, _AA, _SHIFT)
        elif self.kind in ("box", "stick"):
            w, h = (r * 2, r * 2 * self.aspect) if self.kind == "box" else (r * 3, r * 0.25)
            box = cv2.boxPoints(((float(x), float(y)), (float(w), float(h)), float(np.degrees(self.rot[i]))))
            cv2.fillConvexPoly(img, (box * _ONE).astype(np.int32), col, _AA, _SHIFT)
        elif self.kind == "blob":
            cv2.ellipse(img, _pt((x, y)), (_fx(r), _fx(r * self.aspect)), float(np.degrees(self.rot[i])), 0, 360, col,
                        -1, _AA, _SHIFT)
        else:
            cv2.ellipse(img, _pt((x, y + 1.6 * r)), (_fx(1.1 * r), _fx(1.8 * r)), 0, 0, 360, _tc(self.col * 0.6), -1,
                        _AA, _SHIFT)
            cv2.circle(img, _pt((x, y)), _fx(0.45 * r), _tc(self.col * 0.8), -1, _AA, _SHIFT)


class _Head(_Event):
    """A head-like blob (face, hair, shoulders) swaying, nodding, leaning in or crossing."""

    def __init__(self, rng, ctx, t0, n, skin):
        super().__init__(t0, t0 + n)
        W, H, fps = ctx.W, ctx.H, ctx.fps
        t = np.arange(n) / fps
        self.r0 = _u(rng, 0.1, 0.28) * H
        self.skin = skin * _u(rng, 0.85, 1.1)
        self.hair = _muted(rng, (0, 0.5), (0.03, 0.4))
        self.shirt = _muted(rng, (0, 0.9), (0.1, 0.9))
        mode = rng.choice(["sway", "nod", "lean", "cross"])
        cx, cy = _u(rng, 0.25, 0.75) * W, _u(rng, 0.1, 0.5) * H
        f = _u(rng, 0.3, 1.2)
        if mode == "sway":
            A = _u(rng, 0.04, 0.2) * W
            self.xy = np.stack([cx + A * np.sin(2 * np.pi * f * t), cy + 0 * t], 1)
            self.sc = np.ones(n)
        elif mode == "nod":
            A = _u(rng, 0.03, 0.1) * H
            self.xy = np.stack([cx + 0 * t, cy + A * np.sin(2 * np.pi * f * t)], 1)
            self.sc = np.ones(n)
        elif mode == "lean":
            g = _mj(t / max(t[-1], 1e-3) * _u(rng, 1.0, 2.0))
            self.xy = np.stack([cx + _u(rng, -0.1, 0.1) * W * g, cy + _u(rng, 0, 0.1) * H * g], 1)
            self.sc = 1 + _u(rng, -0.3, 0.5) * g
        else:
            d = rng.choice([-1, 1])
            x = np.linspace(-0.2 * W, 1.2 * W, n) if d > 0 else np.linspace(1.2 * W, -0.2 * W, n)
            self.xy = np.stack([x, cy + 0.02 * H * np.sin(2 * np.pi * 2 * t)], 1)
            self.sc = np.ones(n)

    def draw(self, img, t):
        i = t - self.t0
        if 0 <= i < len(self.xy):
            x, y = self.xy[i]
            _draw_person(img, None, x, y, self.r0 * self.sc[i], self.skin, self.hair, self.shirt)


class _Flicker(_Event):
    """Lighting: flicker, a light switched on/off, or a slow dimming."""

    def __init__(self, rng, ctx, t0, n, mild=False):
        super().__init__(t0, t0 + n)
        fps = ctx.fps
        t = np.arange(n) / fps
        mode = rng.choice(["flicker", "step", "dim", "strobe"], p=[0.35, 0.3, 0.2, 0.15])
        amp = _u(rng, 0.03, 0.06) if mild else _u(rng, 0.06, 0.35)
        if mode == "flicker":
            g = 1 + amp * np.sin(2 * np.pi * _u(rng, 0.5, 8.0) * t) * _smooth_noise(rng, n, 6)[:, 0].clip(-1.5, 1.5)
        elif mode == "step":
            tt = _u(rng, 0.1, 0.8) * t[-1]
            g = 1 + rng.choice([-1, 1]) * amp * 1.5 * _mj((t - tt) / _u(rng, 0.03, 0.2))
        elif mode == "dim":
            g = 1 + rng.choice([-1, 1]) * amp * _mj(t / max(t[-1], 1e-3))
        else:
            g = 1 + amp * (rng.random(n) < _u(rng, 0.05, 0.3)) * rng.choice([-1, 1])
        self.g = np.clip(g, 0.4, 1.8)

    def gain(self, t):
        i = t - self.t0
        return float(self.g[i]) if 0 <= i < len(self.g) else 1.0


class _Scene:
    """Appearance of one recording session: camera, room, person, lighting."""

    def __init__(self, rng, W, H, fps):
        self.W, self.H, self.fps = W, H, fps
        self.skin = _skin(rng)
        frac = _u(rng, 0.15, 0.6)  # hand length / frame height
        self.ctx = _Ctx(W, H, fps, 1.0 if rng.random() < 0.65 else -1.0, frac * H / 1.95)
        self.bg = _background(rng, W, H, self.skin)
        self.thick = _u(rng, 0.85, 1.2)
        self.palm_tint = np.array([_u(rng, 0, 8), _u(rng, 4, 12), _u(rng, 6, 16)])
        self.sleeve = None if rng.random() < 0.2 else _muted(rng, (0, 0.9), (0.05, 0.95))
        self.sleeve_at = _u(rng, 0.3, 3.0)
        self.sleeve_w = _u(rng, 1.0, 1.25)
        self.arm_follow = _u(rng, 0.2, 0.5)
        self.elbow_follow = _u(rng, 0.3, 0.75)
        self.elbow = np.array([W * (0.5 - 0.3 * self.ctx.h) + rng.normal(0, 0.2) * W, H * _u(rng, 1.15, 1.6)])
        la = _u(rng, -np.pi, 0) if rng.random() < 0.85 else _u(rng, 0, np.pi)
        self.light = np.array([math.cos(la), math.sin(la)])
        self.hi_gain = _u(rng, 1.04, 1.18)
        self.lo_gain = _u(rng, 0.45, 0.7)
        self.shutter = _u(rng, 0.2, 1.0)
        # lighting / camera
        self.gain0 = _u(rng, 0.65, 1.25)
        self.wb = np.exp(rng.normal(0, 0.08, 3))
        self.gamma = _u(rng, 0.8, 1.25)
        self.drift_f = rng.uniform(0.01, 0.15, 3)
        self.drift_a = rng.uniform(0, 0.04, 3)
        self.drift_p = rng.uniform(0, 6.28, 3)
        self.sigma = _u(rng, 0.5, 3.0) + (4.0 * (1.05 - self.gain0) if self.gain0 < 1.05 else 0)
        self.noise = np.clip(rng.normal(0, self.sigma, (H + 16, W + 16, 3)), -127, 127).astype(np.int16)
        self.noise_rng = np.random.default_rng(int(rng.integers(2 ** 31)))
        self.defocus = _u(rng, 0.6, 1.2) if rng.random() < 0.15 else 0.0
        self.events: list[_Event] = []
        self._lut_key, self._lut_cache = None, None

    # lighting
    def _gain(self, t):
        tt = t / self.fps
        g = self.gain0 * (1 + float(np.sum(self.drift_a * np.sin(2 * np.pi * self.drift_f * tt + self.drift_p))))
        for e in self.events:
            if e.t0 <= t < e.t1:
                g *= e.gain(t)
        return g

    def _lut(self, t):
        g0 = self._gain(t)
        key = int(round(g0 * 400))
        if key == self._lut_key:
            return self._lut_cache
        x = np.arange(256, dtype=np.float64) / 255.0
        base = x ** self.gamma
        g = key / 400.0 * self.wb
        lut = np.clip(base[:, None] * g[None, :] * 255.0, 0, 255).astype(np.uint8)
        self._lut_key, self._lut_cache = key, lut.reshape(1, 256, 3)
        return self._lut_cache

    def render(self, t, lm, prev=None):
        """Frame at scene time t with the hand landmarks lm (21,3) px (NaN/None: no hand)."""
        img = self.bg.copy()
        self.events = [e for e in self.events if e.t1 > t - 1]
        for e in self.events:
            if e.t0 <= t < e.t1:
                e.draw(img, t)
        if lm is not None and np.isfinite(lm).all():
            disp = 0.0
            if prev is not None and np.isfinite(prev).all():
                disp = float(np.abs(lm[:, :2] - prev[:, :2]).max())
            nsub = min(6, 1 + int(disp * self.shutter / 2.5)) if disp > 3.0 else 1
            if nsub <= 1:
                self._draw_hand(img, lm)
            else:
                acc = None
                for k in range(nsub):
                    f = 1.0 - self.shutter * (1.0 - k / (nsub - 1))
                    sub = img.copy()
                    self._draw_hand(sub, prev + (lm - prev) * f)
                    acc = sub if acc is None else cv2.addWeighted(acc, k / (k + 1.0), sub, 1.0 / (k + 1.0), 0.0)
                img = acc
        if self.defocus > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.defocus)
        img = cv2.LUT(img, self._lut(t))
        oy, ox = self.noise_rng.integers(0, 16, 2)
        img = cv2.add(img, self.noise[oy:oy + self.H, ox:ox + self.W], dtype=cv2.CV_8U)
        return img

    # the hand
    def _draw_hand(self, img, lm):
        s = float(_palm_size(lm))
        if not np.isfinite(s) or s < 1.0:
            return
        xy = lm[:, :2]
        z = lm[:, 2]
        pf = np.clip(7 * s / np.maximum(7 * s + z, 1e-3), 0.7, 1.5)
        rad = _R_REL * s * self.thick * pf
        ow = max(0.7, 0.035 * s)
        # palm faces the camera? (right hand: index MCP left of pinky MCP as seen along the fingers)
        a, b = xy[5] - xy[0], xy[17] - xy[0]
        cross = a[0] * b[1] - a[1] * b[0]
        palm_side = cross * self.ctx.h < 0
        tone = self.skin + (self.palm_tint if palm_side else 0.0)
        fill = np.clip(tone * 0.96, 0, 255)
        dark = np.clip(tone * self.lo_gain, 0, 255)
        light = np.clip(tone * self.hi_gain + 6, 0, 255)
        self._draw_arm(img, xy, s, dark)
        # palm hull
        wv = 0.36 * (xy[5] - xy[17])
        ax = xy[9] - xy[0]
        q = np.array([-ax[1], ax[0]]) / max(np.linalg.norm(ax), 1e-6)
        if np.linalg.norm(wv) < 0.25 * s:
            sg = 1.0 if wv @ q >= 0 else -1.0
            wv = wv + q * sg * (0.25 * s - np.linalg.norm(wv))
        keys = np.array([xy[0] + wv, xy[0] - wv, xy[1], xy[2], xy[5], xy[9], xy[13], xy[17]])
        kr = np.array([0.12 * s, 0.12 * s, rad[1] * 0.9, rad[2], rad[5], rad[9], rad[13], rad[17]])
        circ = _CIRC10
        pts_o = (keys[:, None] + (kr[:, None, None] + ow) * circ[None]).reshape(-1, 2)
        pts_f = (keys[:, None] + kr[:, None, None] * circ[None]).reshape(-1, 2)
        hull_o = cv2.convexHull((pts_o * _ONE).astype(np.int32))
        hull_f = cv2.convexHull((pts_f * _ONE).astype(np.int32))
        cen = keys.mean(0)
        inner = (cen + (pts_f - cen) * 0.62 + self.light * 0.12 * s)
        hull_i = cv2.convexHull((inner * _ONE).astype(np.int32))
        # capsules of all finger segments, outline and fill radii, in one go
        p1, p2 = xy[_SEGS[:, 0]], xy[_SEGS[:, 1]]
        r1, r2 = rad[_SEGS[:, 0]], rad[_SEGS[:, 1]]
        d = p2 - p1
        L = np.sqrt((d * d).sum(1))
        u = d / np.maximum(L, 1e-6)[:, None]
        u[L < 1e-6] = (0.0, -1.0)
        r2 = np.where(L < 2 * np.abs(r1 - r2) + 0.5, r1, r2)
        nrm = np.stack([-u[:, 1], u[:, 0]], 1)
        # arc points: p + r * (u cos(a) + n sin(a))
        dir1 = u[:, None, :] * _ARC1[None, :, :1] + nrm[:, None, :] * _ARC1[None, :, 1:]
        dir2 = u[:, None, :] * _ARC2[None, :, :1] + nrm[:, None, :] * _ARC2[None, :, 1:]
        rr1 = np.stack([r1 + ow, r1], 0)[:, :, None, None]
        rr2 = np.stack([r2 + ow, r2], 0)[:, :, None, None]
        caps = np.concatenate([p1[None, :, None, :] + rr1 * dir1[None], p2[None, :, None, :] + rr2 * dir2[None]], 2)
        caps = (caps * _ONE).astype(np.int32)  # (2, 15, 2K, 2): [outline, fill]
        rm = 0.5 * (r1 + r2)
        side = np.where((nrm @ self.light) >= 0, 1.0, -1.0)
        off = nrm * (0.35 * rm * side)[:, None]
        h1 = ((p1 + off + u * (0.2 * rm)[:, None]) * _ONE).astype(np.int32)
        h2 = ((p2 + off - u * (0.2 * rm)[:, None]) * _ONE).astype(np.int32)
        hth = np.maximum(1, np.round(0.55 * rm)).astype(int)
        c_dark, c_fill, c_light = _tc(dark), _tc(fill), _tc(light)
        c_mid = _tc(fill * 0.5 + light * 0.5)
        zs = z[_SEGS[:, 0]] + z[_SEGS[:, 1]]
        zpalm = z[list(_PALM)].mean()
        groups = [(-1, zpalm)]
        for f, joints in enumerate(_FINGER_JOINTS):
            groups.append((f, z[list(joints)].mean() - 0.12 * s))
        groups.sort(key=lambda g: -g[1])
        for g, _ in groups:
            if g < 0:
                cv2.fillConvexPoly(img, hull_o, c_dark, _AA, _SHIFT)
                cv2.fillConvexPoly(img, hull_f, c_fill, _AA, _SHIFT)
                cv2.fillConvexPoly(img, hull_i, c_mid, _AA, _SHIFT)
                continue
            idx = sorted((3 * g, 3 * g + 1, 3 * g + 2), key=lambda i: -zs[i])
            for i in idx:
                cv2.fillConvexPoly(img, caps[0, i], c_dark, _AA, _SHIFT)
            for i in idx:
                cv2.fillConvexPoly(img, caps[1, i], c_fill, _AA, _SHIFT)
            for i in idx:
                if L[i] > 0.5 * rm[i]:
                    cv2.line(img, (int(h1[i, 0]), int(h1[i, 1])), (int(h2[i, 0]), int(h2[i, 1])), c_light,
                             int(hth[i]), _AA, _SHIFT)
            if not palm_side:  # fingernail on the back of the hand
                i = 3 * g + 2
                rt = r2[i]
                c = p2[i] - u[i] * 0.45 * rt
                cv2.ellipse(img, _pt(c), (_fx(0.5 * rt), _fx(0.62 * rt)),
                            float(np.degrees(math.atan2(u[i][1], u[i][0]))) + 90.0, 0, 360,
                            _tc(np.clip(tone * 1.12 + 18, 0, 255)), -1, _AA, _SHIFT)

    def _draw_arm(self, img, xy, s, dark):
        w = xy[0]
        pm = xy[[5, 9, 13, 17]].mean(0)
        d = w - pm
        d = d / max(np.linalg.norm(d), 1e-6)
        # the forearm points toward an elbow below the frame that follows the wrist part of the way
        e = np.array([self.elbow[0] + self.elbow_follow * (w[0] - self.elbow[0]), self.elbow[1]]) - w
        e = e / max(np.linalg.norm(e), 1e-6)
        d = self.arm_follow * d + (1 - self.arm_follow) * e
        d = d / max(np.linalg.norm(d), 1e-6)
        n_ = np.array([-d[1], d[0]])
        far = 2.0 * (self.W + self.H)
        hw0 = 0.36 * s * self.thick
        hw1 = hw0 * 1.35

        def quad(a, b, wa, wb):
            return np.array([w + d * a + n_ * wa, w + d * b + n_ * wb, w + d * b - n_ * wb, w + d * a - n_ * wa])

        ow = max(0.7, 0.035 * s)
        ls = self.sleeve_at * s if self.sleeve is not None else far
        wl = hw0 + (hw1 - hw0) * min(1.0, ls / (6 * s))
        skin_q = quad(-0.1 * s, min(ls, far), hw0, wl)
        cv2.fillConvexPoly(img, (quad(-0.1 * s, min(ls, far), hw0 + ow, wl + ow) * _ONE).astype(np.int32), _tc(dark),
                           _AA, _SHIFT)
        cv2.fillConvexPoly(img, (skin_q * _ONE).astype(np.int32), _tc(self.skin * 0.9), _AA, _SHIFT)
        if self.sleeve is not None and ls < far:
            sq = quad(ls, far, wl * self.sleeve_w, hw1 * self.sleeve_w * 1.15)
            cv2.fillConvexPoly(img, (quad(ls - ow, far, wl * self.sleeve_w + ow, hw1 * self.sleeve_w * 1.15 + ow)
                                     * _ONE).astype(np.int32),
                               _tc(self.sleeve * 0.5), _AA, _SHIFT)
            cv2.fillConvexPoly(img, (sq * _ONE).astype(np.int32), _tc(self.sleeve), _AA, _SHIFT)


# ---------------------------------------------------------------------------------------
# clips
# ---------------------------------------------------------------------------------------

_NG_BEHAVIOURS = {  # name: (weight, hand generator, distractor)
    "idle": 0.1, "drift": 0.1, "fidget": 0.22, "enter": 0.08, "leave": 0.08, "reposition": 0.06,
    "empty": 0.06, "object": 0.12, "head": 0.09, "flicker": 0.09,
}


def _hold(rng, pose, n, s):
    """A pose (21,3) held still for n frames, with tremor."""
    if n <= 0:
        return np.zeros((0, 21, 3))
    xy, r = _tremor(rng, n, s, amp=_u(rng, 0.003, 0.01))
    out = np.repeat(pose[None], n, 0)
    rel = out[..., :2] - out[:, :1, :2]
    c, si = np.cos(r)[:, None], np.sin(r)[:, None]
    out[..., 0] = out[:, :1, 0] + xy[:, :1] + c * rel[..., 0] - si * rel[..., 1]
    out[..., 1] = out[:, :1, 1] + xy[:, 1:2] + si * rel[..., 0] + c * rel[..., 1]
    # keep continuity with the pose at the join
    return out


def _no_gesture(rng, scene, n, t0=0, kind=None, hand=None):
    """One no_gesture behaviour over n frames starting at scene time t0 -> lm (n,21,3), NaN = no hand.

    Distractor events are added to the scene. ``hand``: True/False forces a hand in view / none."""
    ctx = scene.ctx
    names = list(_NG_BEHAVIOURS)
    w = np.array([_NG_BEHAVIOURS[k] for k in names])
    kind = kind or names[int(rng.choice(len(names), p=w / w.sum()))]
    hand_fns = {"idle": _ng_idle, "drift": _ng_drift, "fidget": _ng_fidget, "enter": _ng_enter,
                "leave": _ng_leave, "reposition": _ng_reposition, "empty": _ng_empty}
    if kind in hand_fns:
        lm = hand_fns[kind](rng, ctx, n)
    else:
        with_hand = (rng.random() < 0.55) if hand is None else hand
        if with_hand:
            lm = (_ng_idle if rng.random() < 0.6 else _ng_drift)(rng, ctx, n)
        else:
            lm = _ng_empty(rng, ctx, n)
        k = n if rng.random() < 0.5 else int(rng.integers(max(1, n // 3), n + 1))
        e0 = t0 + int(rng.integers(0, n - k + 1))
        if kind == "object":
            scene.events.append(_Mover(rng, ctx, e0, k, scene.skin))
        elif kind == "head":
            scene.events.append(_Head(rng, ctx, e0, k, scene.skin))
        else:
            scene.events.append(_Flicker(rng, ctx, e0, k))
    # sometimes a second, overlaid distractor
    if rng.random() < 0.15:
        k = int(rng.integers(max(1, n // 3), n + 1))
        e0 = t0 + int(rng.integers(0, n - k + 1))
        scene.events.append(_Mover(rng, ctx, e0, k, scene.skin) if rng.random() < 0.6
                            else _Flicker(rng, ctx, e0, k))
    return lm


def _clip_landmarks(label, rng, scene):
    """Landmark track of one training clip (lead-in + motion + lead-out, or a no_gesture behaviour)."""
    ctx = scene.ctx
    if label == NO_GESTURE:
        n = _sec(ctx, _u(rng, 1.5, 4.5))
        return _no_gesture(rng, scene, n)
    if label not in GESTURES:
        raise ValueError(f"unknown label {label!r}; expected one of {DEFAULT_LABELS}")
    lm, mend = _gesture_track(rng, label, ctx)
    s = float(np.median(_palm_size(lm)))
    lead_out = int(rng.integers(0, 11))
    need = mend + 1 + lead_out
    if len(lm) >= need:
        lm = lm[:need]
    else:
        lm = np.concatenate([lm, _hold(rng, lm[-1], need - len(lm), s)])
    lead_in = int(rng.integers(0, 11))
    lm = np.concatenate([_hold(rng, lm[0], lead_in, s), lm])
    n = len(lm)
    if rng.random() < 0.1:  # slow background motion (not what decides the label)
        k = int(rng.integers(max(1, n // 2), n + 1))
        scene.events.append(_Mover(rng, ctx, int(rng.integers(0, n - k + 1)), k, scene.skin, slow=True))
    if rng.random() < 0.1:
        scene.events.append(_Flicker(rng, ctx, 0, n, mild=True))
    return lm


def render_clip(label: str, rng: np.random.Generator, *, width=320, height=240, fps=30.0) -> np.ndarray:
    """One clip of ``label`` as (T, height, width, 3) uint8 BGR frames.

    Gestures: 0-10 idle lead-in frames, the gesture motion (0.6-2.5 s), 0-10 lead-out frames
    (the clip ends within 10 frames of the motion's end). no_gesture: 1.5-4.5 s of one behaviour."""
    scene = _Scene(rng, int(width), int(height), float(fps))
    lm = _clip_landmarks(label, rng, scene)
    frames = np.empty((len(lm), int(height), int(width), 3), np.uint8)
    prev = None
    for t in range(len(lm)):
        frames[t] = scene.render(t, lm[t], prev)
        prev = lm[t]
    return frames


# ---------------------------------------------------------------------------------------
# continuous stream
# ---------------------------------------------------------------------------------------


def _axis_angle(p):
    v = p[[5, 9, 13, 17], :2].mean(0) - p[0, :2]
    return math.atan2(v[1], v[0])


def _morph(a, b, n):
    """From pose a to pose b (21,3) over n frames: wrist on a minimum-jerk path, the hand's rotation
    interpolated, its shape blended in a common orientation (no collapsing through the wrist)."""
    u = _mj(np.arange(1, n + 1) / n)
    ta, tb = _axis_angle(a), _axis_angle(b)
    dt = (tb - ta + np.pi) % (2 * np.pi) - np.pi

    def unrot(p, th):
        rel = p - p[0]
        c, s_ = math.cos(-th), math.sin(-th)
        out = rel.copy()
        out[:, 0] = c * rel[:, 0] - s_ * rel[:, 1]
        out[:, 1] = s_ * rel[:, 0] + c * rel[:, 1]
        return out

    ra, rb = unrot(a, ta), unrot(b, tb)
    rel = ra[None] * (1 - u)[:, None, None] + rb[None] * u[:, None, None]
    th = ta + dt * u
    c, s_ = np.cos(th)[:, None], np.sin(th)[:, None]
    out = np.empty((n, 21, 3))
    w = a[0][None] + (b[0] - a[0])[None] * u[:, None]
    out[..., 0] = w[:, None, 0] + c * rel[..., 0] - s_ * rel[..., 1]
    out[..., 1] = w[:, None, 1] + s_ * rel[..., 0] + c * rel[..., 1]
    out[..., 2] = w[:, None, 2] + rel[..., 2]
    return out


def _transition_frames(rng, ctx, a, b):
    """Frames to move from pose a to pose b at an unhurried speed."""
    dist = float(np.abs(a[:, :2] - b[:, :2]).max())
    return max(_sec(ctx, _u(rng, 0.3, 0.7)), _sec(ctx, dist / (_u(rng, 0.3, 0.6) * ctx.W)))


def _motion_details(lm, source: str) -> dict:
    """What makes a gesture easy or hard to see, from its landmarks over the motion span (px): where its motion
    came from (``real``: a recorded trajectory; ``procedural``), the hand's size (wrist to middle-finger MCP,
    median) and how far the index fingertip travels left to right."""
    tip = lm[:, 8, 0]
    return {"motion": source, "palm_px": round(float(np.nanmedian(_palm_size(lm))), 2),
            "travel_x_px": round(float(np.nanmax(tip) - np.nanmin(tip)), 2)}


class SyntheticStream:
    """Endless procedural webcam stream: gestures separated by no_gesture stretches.

    ``read()`` returns the next (height, width, 3) uint8 BGR frame; ``segments`` lists
    ``(label, start_frame, end_frame_inclusive)`` of every gesture whose motion has started
    (motion span only, the idle lead-in/out is part of the no_gesture stretch), and ``details`` one dict per
    segment: its motion source, hand size and fingertip travel (:func:`_motion_details`). The scene
    (room, person, skin, lighting, hand size, handedness) changes every 20-60 s, at a cut
    between a gesture and the next no_gesture stretch."""

    def __init__(self, seed: int = 0, *, width=320, height=240, fps=30.0, gap_s=(1.0, 5.0)):
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.gap_s = (float(gap_s[0]), float(gap_s[1]))
        self._rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.frame_index = 0
        self.segments: list[tuple[str, int, int]] = []
        self.details: list[dict] = []  # one per segment: how the gesture was made (see _motion_details)
        self._pending: list[tuple[tuple[str, int, int], dict]] = []
        self._scene: _Scene | None = None
        self._scene_t0 = 0
        self._scene_end = 0
        self._lm = np.zeros((0, 21, 3))  # planned landmarks from self._buf_t0
        self._buf_t0 = 0
        self._planned = 0  # first frame not yet planned
        self._last = None  # hand state at the end of the plan: (21,3) or None
        self._tail = 0  # idle frames after the last planned gesture's motion
        self._prev = None

    def _new_scene(self):
        self._scene = _Scene(self._rng, self.width, self.height, self.fps)
        self._scene_t0 = self._planned
        self._scene_end = self._planned + _sec(self._scene.ctx, _u(self._rng, 20.0, 60.0))
        self._last = None
        self._tail = 0

    def _plan(self):
        rng = self._rng
        if self._scene is None or self._planned >= self._scene_end:
            self._new_scene()
        scene, ctx = self._scene, self._scene.ctx
        t_local = self._planned - self._scene_t0
        label = GESTURES[int(rng.integers(len(GESTURES)))]
        g, mend, source = _gesture_motion(rng, label, ctx)
        tail = int(rng.integers(0, 11))  # idle frames after the motion: part of the next gap
        g = g[:mend + 1 + tail]
        if len(g) < mend + 1 + tail:
            g = np.concatenate([g, _hold(rng, g[-1], mend + 1 + tail - len(g), float(np.median(_palm_size(g))))])
        s = float(np.median(_palm_size(g)))
        n_gap = max(_sec(ctx, _u(rng, *self.gap_s)) - self._tail, 2)
        self._tail = tail
        lead = min(int(rng.integers(0, 11)), n_gap // 3)
        parts = []
        cur = self._last
        body = n_gap - lead
        t = t_local
        while body > 0:
            # transition into the gesture's start pose at the end of the gap
            if cur is None:
                off = _enter_offset(rng, ctx, g[0])
                n_tr = _enter_frames(rng, ctx, off, 0.5, 1.0)
            else:
                n_tr = _transition_frames(rng, ctx, cur, g[0])
            if body <= n_tr + _sec(ctx, 0.5):
                n_tr = body
                if cur is None:
                    parts.append(_move_in(rng, ctx, g[0], n_tr, off=off))
                else:
                    parts.append(_morph(cur, g[0], n_tr))
                cur = g[0]
                body = 0
                break
            d = min(body - n_tr, _sec(ctx, _u(rng, 1.0, 4.0)))
            if body - n_tr - d < _sec(ctx, 0.5):
                d = body - n_tr
            if cur is None:
                kind = rng.choice(["empty", "enter", "object", "head", "flicker"], p=[0.3, 0.3, 0.2, 0.1, 0.1])
                lm = _no_gesture(rng, scene, d, t0=t, kind=str(kind), hand=False)
            else:
                kind = rng.choice(["idle", "drift", "fidget", "reposition", "leave", "object", "head", "flicker"],
                                  p=[0.14, 0.14, 0.26, 0.08, 0.1, 0.12, 0.08, 0.08])
                lm = _no_gesture(rng, scene, d, t0=t, kind=str(kind), hand=True)
                if np.isfinite(lm[0]).all():  # move from the current pose into the behaviour
                    k = min(d - 1, _transition_frames(rng, ctx, cur, lm[0]))
                    if k > 0:
                        lm = np.concatenate([_morph(cur, lm[0], k), lm[:d - k]])
            parts.append(lm)
            last = lm[-1]
            cur = last if np.isfinite(last).all() else None
            body -= d
            t += d
        parts.append(_hold(rng, g[0], lead, s))
        gap = np.concatenate(parts) if parts else np.zeros((0, 21, 3))
        start = self._planned + len(gap)
        self._pending.append(((label, start, start + mend), _motion_details(g[:mend + 1], source)))
        plan = np.concatenate([gap, g])
        keep = self._lm[self.frame_index - self._buf_t0:]
        self._lm = np.concatenate([keep, plan])
        self._buf_t0 = self.frame_index
        self._planned += len(plan)
        self._last = g[-1]

    def advance(self) -> np.ndarray:
        """Move on one frame without painting it: the hand's landmarks ``(21, 3)`` px (NaN: no hand) in
        ``self.scene``. ``read()`` paints what this returns; another painter can paint it instead."""
        while self.frame_index >= self._planned:
            self._plan()
        t = self.frame_index
        lm = self._lm[t - self._buf_t0]
        while self._pending and self._pending[0][0][1] <= t:
            seg, det = self._pending.pop(0)
            self.segments.append(seg)
            self.details.append(det)
        self.frame_index += 1
        return lm

    @property
    def landmarks(self):
        """The hand's landmarks ``(21, 3)`` px that the last ``read()`` painted (NaN: no hand; None before one)."""
        return self._prev

    @property
    def scene(self):
        """The scene of the last frame advanced to (a new object at every scene cut)."""
        return self._scene

    def read(self) -> np.ndarray:
        t = self.frame_index
        lm = self.advance()
        # plans are made only when every planned frame has been read, so frame t belongs to the
        # current scene (a scene cut happens at the start of a plan)
        frame = self._scene.render(t - self._scene_t0, lm, self._prev)
        self._prev = lm
        return frame


# ---------------------------------------------------------------------------------------
# writing videos
# ---------------------------------------------------------------------------------------


def _write_video(path: Path, frames, fps, size):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix or '.mp4'}")
    w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not w.isOpened():
        raise RuntimeError(f"cannot open a video writer for {tmp}")
    n = 0
    try:
        try:
            for f in frames:
                w.write(f)
                n += 1
        finally:
            w.release()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def _clip_job(job):
    label, i, seed_seq, out_dir, width, height, fps = job
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed_seq)
    frames = render_clip(label, rng, width=width, height=height, fps=fps)
    rel = f"Train_Data/{label}/{label}_{i:05d}.mp4"
    n = _write_video(Path(out_dir) / rel, frames, fps, (width, height))
    return rel, label, n


def _refuse_foreign_meta(meta: Path) -> None:
    """A meta.csv that lists clips this renderer did not write (a user's recordings, say) would be
    replaced, and its rows lost: refuse before rendering anything. A rendered one may be replaced."""
    if not meta.exists():
        return
    from .dataset import read_csv_rows
    from .errors import GestureError

    rows = read_csv_rows(meta, "meta CSV", "columns file_path,action")
    ours = re.compile(rf"Train_Data/({'|'.join(map(re.escape, DEFAULT_LABELS))})/\1_\d{{5}}\.mp4")
    header = [h.strip() for h in rows[0]]
    if header != ["file_path", "action", "frame_count"]:
        what = f"its header is {','.join(header)}"
    else:
        foreign = [r[0].strip() for r in rows[1:] if r and not ours.fullmatch(r[0].strip())]
        if not foreign:
            return
        what = f"it lists {len(foreign)} clip(s) gesture synth did not render, the first {foreign[0]}"
    raise GestureError(f"{meta}: not a rendered dataset ({what}); rendering here would replace it and lose its "
                       "rows: choose another --out")


def write_clips(out_dir, per_class: int, seed: int = 0, *, width=320, height=240, fps=30.0, workers=2,
                progress=True) -> Path:
    """Render ``per_class`` clips of every label to out_dir/Train_Data/<label>/<label>_<i:05d>.mp4 and
    write out_dir/meta.csv (file_path,action,frame_count). Deterministic for a seed, any worker count."""
    out_dir = Path(out_dir)
    _refuse_foreign_meta(out_dir / "meta.csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    label_seqs = np.random.SeedSequence(seed).spawn(len(DEFAULT_LABELS))
    jobs = []
    for label, lss in zip(DEFAULT_LABELS, label_seqs):
        for i, ss in enumerate(lss.spawn(int(per_class))):
            jobs.append((label, i, ss, str(out_dir), int(width), int(height), float(fps)))
    from tqdm import tqdm

    rows = []
    bar = tqdm(total=len(jobs), desc="synth clips", unit="clip", disable=not progress)
    try:
        if workers and workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(int(workers)) as pool:
                for r in pool.imap_unordered(_clip_job, jobs, chunksize=1):
                    rows.append(r)
                    bar.update(1)
        else:
            for j in jobs:
                rows.append(_clip_job(j))
                bar.update(1)
    finally:
        bar.close()
    order = {lab: k for k, lab in enumerate(DEFAULT_LABELS)}
    rows.sort(key=lambda r: (order[r[1]], r[0]))
    meta = out_dir / "meta.csv"
    tmp = out_dir / f".meta.{os.getpid()}.tmp.csv"
    with open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file_path", "action", "frame_count"])
        wr.writerows(rows)
    os.replace(tmp, meta)
    return meta


def write_stream(out_path, minutes: float, seed: int = 0, *, width=320, height=240, fps=30.0,
                 progress=True) -> tuple[Path, Path]:
    """One continuous video (gestures between no_gesture stretches) + a CSV label,start_frame,end_frame
    of the gestures that lie wholly inside it (end_frame inclusive, frames counted from 0)."""
    out_path = Path(out_path)
    n = max(1, int(round(float(minutes) * 60.0 * float(fps))))
    stream = SyntheticStream(seed, width=width, height=height, fps=fps)
    from tqdm import tqdm

    bar = tqdm(total=n, desc="synth stream", unit="frame", disable=not progress)

    def frames():
        for _ in range(n):
            yield stream.read()
            bar.update(1)

    try:
        _write_video(out_path, frames(), fps, (int(width), int(height)))
    finally:
        bar.close()
    csv_path = out_path.with_suffix(".csv")
    tmp = csv_path.with_name(f".{csv_path.stem}.{os.getpid()}.tmp.csv")
    with open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["label", "start_frame", "end_frame"])
        for label, a, b in stream.segments:
            if 0 <= a <= b < n:
                wr.writerow([label, a, b])
    os.replace(tmp, csv_path)
    return out_path, csv_path
