"""A copy of an annotated stream as a worse camera would have filmed it: darker or brighter, noisier, out of
focus, JPEG-compressed, or under flickering light. Measures how far the model holds up outside the renderer's
range (docs/ablation.md, "Session 27").

Each frame, in the order a camera makes them: defocus (Gaussian blur of sigma ``--blur`` pixels), the
scene's light scaled by ``--exposure`` (and, with ``--flicker A``, by 1 + A cos(2 pi 100 t) at the time t
each row is read: LED or fluorescent light on 50 Hz mains seen by a rolling shutter that reads the frame
top to bottom in 25 ms, as dark bands rolling through the picture), sensor read noise (Gaussian, sigma
``--noise`` in 8-bit levels, new every frame) added, the result amplified by ``--gain`` and clipped to
0-255, then each frame JPEG-compressed at quality ``--jpeg`` (as an MJPEG webcam sends it). A low-light webcam is
``--exposure 0.35 --noise 3 --gain 2.5``: the picture is as bright as before, with the noise amplified.
The annotations IN.csv are copied to OUT.csv unchanged (the frames are the same frames).

Usage: python scripts/degrade_stream.py IN.mp4 OUT.mp4 [--exposure E] [--noise S] [--gain G]
                                        [--blur S] [--jpeg Q] [--flicker A] [--seed N]
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

from realtime.cli import _at_least, _real  # noqa: E402


LIGHT_HZ = 100.0     # the light's flicker: twice the mains frequency (50 Hz)
READOUT_S = 0.025    # a rolling shutter's time from the top row to the bottom one


def degrade(frame: np.ndarray, rng: np.random.Generator, exposure=1.0, noise=0.0, gain=1.0, blur=0.0, jpeg=0,
            flicker=0.0, t=0.0):
    """One BGR uint8 frame (taken at ``t`` seconds) through the worse camera; a new uint8 frame of the same shape."""
    x = cv2.GaussianBlur(frame, (0, 0), blur) if blur > 0 else frame
    x = x.astype(np.float32) * exposure
    if flicker > 0:
        rows = t + READOUT_S * np.arange(x.shape[0], dtype=np.float32) / x.shape[0]
        x *= (1.0 + flicker * np.cos(2 * np.pi * LIGHT_HZ * rows))[:, None, None]
    if noise > 0:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    out = np.clip(x * gain, 0, 255).round().astype(np.uint8)
    if jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


_level = _real("a number >= 0", lambda v: 0.0 <= v < float("inf"))   # the `gesture` command's own flag types
_quality = _at_least(1, 100)


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
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
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
    done = 0
    with tqdm(total=n, desc=a.out.name, unit="frame") as bar:
        while True:
            ok, f = cap.read()
            if not ok:
                break
            vw.write(degrade(f, rng, a.exposure, a.noise, a.gain, a.blur, a.jpeg, a.flicker, done / fps))
            done += 1
            bar.update()
    vw.release()
    cap.release()
    shutil.copyfile(ann, a.out.with_suffix(".csv"))
    print(f"wrote {a.out} ({done} frames) and {a.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
