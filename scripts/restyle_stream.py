"""Re-draw a synthetic stream's hand motion in another look: how much does a model rely on the renderer's?

Plans the same stream as ``gesture synth stream --seed S`` (the same hand landmarks, frame for frame, and
the same gestures, so the ``S.csv`` that command writes scores this video too), but paints each frame
with a different, much plainer painter: a flat two-colour gradient room with a few soft blobs, the hand as
a flat filled palm and thick rounded fingers with a forearm, in a skin tone or a glove colour, light
sensor noise. None of ``realtime.synth``'s backgrounds, shading, sleeve, lighting or blur is used.
The look changes at every scene cut; ``--look-seed L`` keeps one look (one user's room, skin and sleeve) for the
whole video, the same in every video given that L: recordings and a test stream from one "user".
Usage: python scripts/restyle_stream.py --seed S --minutes M --out OUT.mp4 [--glove] [--look-seed L]
       gesture eval --stream OUT.mp4 --annotations S.csv --json
"""

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from realtime.synth import SyntheticStream, _write_video

FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
PALM = (0, 1, 5, 9, 13, 17)


class Look:
    """One scene's colours: a new one each time the planned stream cuts to a new scene."""

    def __init__(self, rng, w, h, glove):
        a, b = rng.integers(30, 226, 3), rng.integers(30, 226, 3)
        across = rng.random() < 0.5   # left to right, or top to bottom
        ramp = np.linspace(0, 1, w if across else h, dtype=np.float32)
        ramp = ramp[None, :, None] if across else ramp[:, None, None]
        self.bg = np.broadcast_to(a * (1 - ramp) + b * ramp, (h, w, 3)).astype(np.float32).copy()
        for _ in range(int(rng.integers(2, 6))):   # soft blobs: furniture out of focus
            c = tuple(int(v) for v in rng.integers(0, 256, 3))
            blob = np.zeros_like(self.bg)
            cv2.circle(blob, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(15, 60)), c, -1)
            mask = cv2.GaussianBlur((blob.sum(-1) > 0).astype(np.float32), (0, 0), 6)[..., None]
            self.bg = self.bg * (1 - mask) + blob * mask
        if glove:
            self.hand = tuple(float(v) for v in rng.integers(20, 236, 3))
        else:   # BGR skin tones from dark to light
            t = rng.uniform(0, 1)
            self.hand = tuple(float(v) for v in np.array([60, 85, 120]) * (1 - t) + np.array([170, 195, 235]) * t)
        self.arm = tuple(float(v) for v in rng.integers(20, 236, 3)) if rng.random() < 0.7 else self.hand
        self.noise = rng.uniform(1.0, 4.0)


def paint(look, lm, rng):
    frame = look.bg.copy()
    if lm is not None and np.isfinite(lm).all():
        p = lm[:, :2].astype(np.float32)
        size = float(np.linalg.norm(p[9] - p[0])) + 1e-3
        wid = max(2, int(round(size * 0.28)))
        down = p[0] - p[9]
        down = down / (np.linalg.norm(down) + 1e-6)
        elbow = p[0] + down * size * 6
        cv2.line(frame, tuple(int(v) for v in p[0]), tuple(int(v) for v in elbow), look.arm, int(wid * 2.2),
                 cv2.LINE_AA)
        cv2.fillConvexPoly(frame, cv2.convexHull(p[list(PALM)].astype(np.int32)), look.hand, cv2.LINE_AA)
        for f in FINGERS:
            pts = ([p[0]] if f[0] == 1 else []) + [p[i] for i in f]   # the thumb starts at the wrist
            for a, b in zip(pts[:-1], pts[1:]):
                cv2.line(frame, tuple(int(v) for v in a), tuple(int(v) for v in b), look.hand, wid, cv2.LINE_AA)
    frame += rng.normal(0, look.noise, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def plan(seed):
    """``(scene, landmarks)`` of every frame of ``SyntheticStream(seed)`` without its painter: the same hand
    motion and gestures as ``gesture synth stream --seed seed``."""
    s = SyntheticStream(seed)
    while True:
        lm = s.advance()
        yield s.scene, lm


def frames(seed, n, glove, progress=True, look_seed=None):
    """The restyled frames; a new look at every scene cut, or with ``look_seed`` one look throughout (the same for
    every video given that ``look_seed``)."""
    rng = np.random.default_rng(seed + 10_000)
    look, scene = None, None
    for _, (sc, lm) in zip(tqdm(range(n), desc="restyle", unit="frame", disable=not progress), plan(seed)):
        if look is None and look_seed is not None:
            look = Look(np.random.default_rng(look_seed), sc.ctx.W, sc.ctx.H, glove)
        elif sc is not scene and look_seed is None:
            scene, look = sc, Look(rng, sc.ctx.W, sc.ctx.H, glove)
        yield paint(look, lm, rng)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--glove", action="store_true", help="gloves of any colour instead of skin tones")
    ap.add_argument("--look-seed", type=int, default=None,
                    help="one look for the whole video (one user's room, skin and sleeve), the same in every video "
                         "given this seed; default: a new look at every scene cut")
    a = ap.parse_args()
    s = SyntheticStream(a.seed)
    n = int(round(a.minutes * 60 * s.fps))
    _write_video(a.out, frames(a.seed, n, a.glove, look_seed=a.look_seed), s.fps, (s.width, s.height))
    print(f"wrote {a.out}; score it with the annotations of `gesture synth stream --seed {a.seed} --minutes {a.minutes}`")


if __name__ == "__main__":
    main()
