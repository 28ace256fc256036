"""A copy of an annotated stream as a worse camera would have filmed it: darker or brighter, noisier, out of
focus, JPEG-compressed, under flickering light, with its white balance or exposure off, shaking, or at half
its frame rate. Measures how far the model holds up outside the renderer's range (docs/ablation.md, "Sessions
27-29").

Each frame, in the order a camera makes them: the camera's shake (the picture moved by a smooth random offset,
``--shake`` pixels rms, its edges repeated), defocus (Gaussian blur of sigma ``--blur`` pixels), the scene's
light scaled by ``--exposure`` (by 1 + A sin(2 pi t / 3 s) with ``--ae A``: an auto-exposure that hunts; and,
with ``--flicker A``, by 1 + A cos(2 pi f t) at the time t each row is read: LED or fluorescent light
flickering at ``--light-hz`` f, 100 on 50 Hz mains, 120 on 60 Hz, seen by a rolling shutter that reads the
frame top to bottom in 25 ms, as dark bands through the picture, rolling at 100 Hz and standing still at 120
Hz with 30 frames a second), each colour channel scaled by ``--tint B,G,R`` (a white balance off: tungsten
light is about ``0.65,1,1.3``), sensor read noise (Gaussian, sigma ``--noise`` in 8-bit levels, new every
frame) added, the result amplified by ``--gain`` and clipped to 0-255, then each frame JPEG-compressed at
quality ``--jpeg`` (as an MJPEG webcam sends it); with ``--hold N`` only every Nth frame is a new picture and
the others repeat it (a webcam that fell to 1/N of its rate in a dim room, recorded by an app that kept
writing the file's rate). A low-light webcam is ``--exposure 0.35 --noise 3 --gain 2.5``: the picture is as
bright as before, with the noise amplified. The annotations IN.csv are copied to OUT.csv unchanged (the frames
are the same frames).

Usage: python scripts/degrade_stream.py IN.mp4 OUT.mp4 [--exposure E] [--noise S] [--gain G] [--blur S]
                                        [--jpeg Q] [--flicker A] [--light-hz F] [--tint B,G,R] [--ae A]
                                        [--shake P] [--hold N] [--seed N]
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # FFmpeg quiet, as in `gesture`: our error is the one line
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from realtime.cli import _at_least, _fraction, _real  # noqa: E402


LIGHT_HZ = 100.0     # the light's flicker: twice the mains frequency (50 Hz)
READOUT_S = 0.025    # a rolling shutter's time from the top row to the bottom one
AE_PERIOD_S = 3.0    # one swing of a hunting auto-exposure
SHAKE_S = 0.3        # a shaking camera's offset changes over about this long


def degrade(frame: np.ndarray, rng: np.random.Generator, exposure=1.0, noise=0.0, gain=1.0, blur=0.0, jpeg=0,
            flicker=0.0, t=0.0, light_hz=LIGHT_HZ, tint=(1.0, 1.0, 1.0), ae=0.0, offset=(0.0, 0.0)):
    """One BGR uint8 frame (taken at ``t`` seconds, the camera moved by ``offset`` (x, y) pixels) through the
    worse camera; a new uint8 frame of the same shape."""
    x = frame
    if offset != (0.0, 0.0):
        m = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
        x = cv2.warpAffine(x, m, (x.shape[1], x.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x = cv2.GaussianBlur(x, (0, 0), blur) if blur > 0 else x
    x = x.astype(np.float32) * (exposure * (1.0 + ae * np.sin(2 * np.pi * t / AE_PERIOD_S)))
    if flicker > 0:
        rows = t + READOUT_S * np.arange(x.shape[0], dtype=np.float32) / x.shape[0]
        x *= (1.0 + flicker * np.cos(2 * np.pi * light_hz * rows))[:, None, None]
    if tuple(tint) != (1.0, 1.0, 1.0):
        x *= np.asarray(tint, np.float32)
    if noise > 0:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    out = np.clip(x * gain, 0, 255).round().astype(np.uint8)
    if jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def shake(rms: float, fps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` a shaking camera's (x, y) offset in each of ``n`` frames: white noise smoothed over about
    ``SHAKE_S`` (a wobble, not jumps), scaled to ``rms`` pixels from rest (zeros when ``rms`` is 0)."""
    if rms <= 0:
        return np.zeros((n, 2))
    sigma = SHAKE_S * fps / 2
    pad = int(4 * sigma)
    k = np.exp(-0.5 * (np.arange(-pad, pad + 1) / sigma) ** 2)
    noise = rng.normal(0.0, 1.0, (n + 2 * pad, 2))
    xy = np.stack([np.convolve(noise[:, i], k, "valid") for i in (0, 1)], axis=1)
    return xy * (rms / np.sqrt((xy ** 2).sum(axis=1).mean()))


_level = _real("a number >= 0", lambda v: 0.0 <= v < float("inf"))   # the `gesture` command's own flag types
_quality = _at_least(1, 100)
_frames = _at_least(1, 30)
_hz = _real("a frequency > 0", lambda v: 0.0 < v < float("inf"))


def _tint(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"three gains B,G,R, got {text!r}")
    return tuple(_level(v) for v in parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="annotated stream IN.mp4 (IN.csv beside it)")
    p.add_argument("out", type=Path, help="OUT.mp4 (OUT.csv is written beside it)")
    p.add_argument("--exposure", type=_level, default=1.0, help="scene light scale (default 1)")
    p.add_argument("--noise", type=_level, default=0.0, help="read-noise sigma, 8-bit levels (default 0)")
    p.add_argument("--gain", type=_level, default=1.0, help="amplification after the noise (default 1)")
    p.add_argument("--blur", type=_level, default=0.0, help="defocus sigma in pixels (default 0)")
    p.add_argument("--jpeg", type=_quality, default=0, help="JPEG quality of each frame, 1-100 (default: none)")
    p.add_argument("--flicker", type=_level, default=0.0,
                   help="depth of the 100 Hz flicker a rolling shutter sees as rolling bands, e.g. 0.1 (default 0)")
    p.add_argument("--light-hz", type=_hz, default=LIGHT_HZ,
                   help="the light's flicker frequency, twice the mains: 100 (50 Hz mains, the default) or 120")
    p.add_argument("--tint", type=_tint, default=(1.0, 1.0, 1.0),
                   help="white balance off: gains B,G,R, e.g. 0.65,1,1.3 for tungsten light (default 1,1,1)")
    p.add_argument("--ae", type=_fraction, default=0.0,
                   help=f"auto-exposure hunting: the exposure swings +- this fraction every {AE_PERIOD_S:g} s (default 0)")
    p.add_argument("--shake", type=_level, default=0.0,
                   help="camera shake: a smooth random offset of this many pixels rms (default 0)")
    p.add_argument("--hold", type=_frames, default=1,
                   help="each picture written this many times: a camera that fell to 1/N of the file's frame rate "
                        "(a dim room) while the app recording it kept the rate (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and the shake (default 0)")
    a = p.parse_args(argv)
    ann = a.src.with_suffix(".csv")
    for f in (a.src, ann):
        if not f.is_file():
            sys.exit(f"{f}: not found")
    cap = cv2.VideoCapture(str(a.src))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if n <= 0 or w <= 0:
        sys.exit(f"{a.src}: not a readable video")
    vw = cv2.VideoWriter(str(a.out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        sys.exit(f"{a.out}: cannot write a video there")
    rng = np.random.default_rng(a.seed)
    offsets = shake(a.shake, fps, n, np.random.default_rng([a.seed, 1]))
    done = 0
    with tqdm(total=n, desc=a.out.name, unit="frame") as bar:
        while True:
            ok, f = cap.read()
            if not ok:
                break
            if done % a.hold == 0:       # else the camera had no new picture: the app writes the last one again
                out = degrade(f, rng, a.exposure, a.noise, a.gain, a.blur, a.jpeg, a.flicker, done / fps,
                              a.light_hz, a.tint, a.ae, tuple(offsets[min(done, n - 1)]))
            vw.write(out)
            done += 1
            bar.update()
    vw.release()
    cap.release()
    shutil.copyfile(ann, a.out.with_suffix(".csv"))
    print(f"wrote {a.out} ({done} frames) and {a.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
