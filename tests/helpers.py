"""Small shared helpers for the tests: a synthetic video, a tiny model folder, a Keras-2 HDF5 writer.

Everything here is deliberately small (tiny C3D widths, short low-resolution
videos) so the whole suite runs in seconds on two CPU cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
TINY_WIDTH = 0.03


def make_frames(n: int, width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """``(n, height, width, 3) uint8 BGR``: a coloured blob moving over a fixed textured background."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    bg = cv2.resize(bg, (width, height), interpolation=cv2.INTER_NEAREST)
    bg = cv2.GaussianBlur(bg, (3, 3), 0)
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        f = bg.copy()
        cx = int(width * (0.2 + 0.6 * (i % 40) / 40))
        cy = int(height * (0.5 + 0.25 * np.sin(i / 6)))
        colour = (int(40 + 5 * i) % 256, 200, int(255 - 3 * i) % 256)
        cv2.circle(f, (cx, cy), max(4, height // 8), colour, -1)
        frames[i] = f
    return frames


def write_video(path, n: int = 48, width: int = 160, height: int = 120, fps: float = 30.0, seed: int = 0):
    """Write a small synthetic video; returns ``(path, frames)``.

    ``.avi`` uses the lossless FFV1 codec when this OpenCV has it (decoded frames
    equal ``frames``), else MJPG; ``.mp4`` uses mp4v (lossy).
    """
    frames = make_frames(n, width, height, seed)
    return write_frames(path, frames, fps), frames


def write_frames(path, frames, fps: float = 30.0) -> Path:
    """Write ``(n, H, W, 3) uint8 BGR`` frames as a video (codecs as in :func:`write_video`); returns the path."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    codecs = ["mp4v"] if path.suffix == ".mp4" else ["FFV1", "MJPG"]
    for codec in codecs:
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if w.isOpened():
            for f in frames:
                w.write(f)
            w.release()
            return path
        w.release()
    raise RuntimeError(f"cannot write {path} with {codecs}")


def read_video_frames(path) -> np.ndarray:
    """All decoded frames of a video, ``(T, H, W, 3) uint8 BGR`` (plain cv2, no project code)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return np.stack(out)


def banded_scene(t: int) -> np.ndarray:
    """Frame ``t`` of a textured room with a bright 'hand' (a 20x30 block) moving right 2 pixels a frame (back to
    the left edge every 40 frames), ``(112, 112, 3) uint8``: the crops the deflicker and light tests band."""
    ys, xs = np.mgrid[0:112, 0:112]
    room = 90 + 40 * np.sin(xs / 9.0) * np.cos(ys / 13.0)
    room[40:70, 10 + (2 * t) % 80 : 30 + (2 * t) % 80] = 200
    return np.repeat(room[..., None], 3, -1).astype(np.uint8)


def light_bands(t: int, depth: float, rows: int = 112) -> np.ndarray:
    """``(rows,)`` row gains of 100 Hz light read by a 25 ms rolling shutter, frame ``t`` at 30 fps."""
    return 1 + depth * np.cos(2 * np.pi * 100 * (t / 30 + 0.025 * np.arange(rows) / rows))


def shaking_camera(n: int, rms: float, seed: int = 0, hand: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A camera wobbling ``rms`` pixels (smoothed over about 0.3 s at 30 fps) in front of a cluttered room, a
    bright 60x80 block (a hand, in front of the room: it does not move with it) crossing from column 120 half a
    pixel a frame. Returns ``(frames (n, 240, 320, 3) uint8, offsets (n, 2))``: the room is seen moved by -offset."""
    rng = np.random.default_rng(seed)
    room = cv2.GaussianBlur(rng.uniform(0, 255, (320, 400)).astype(np.float32), (0, 0), 3)
    room = np.repeat(np.clip((room - room.mean()) / room.std() * 40 + 110, 0, 255)[..., None], 3, -1).astype(np.uint8)
    k = np.exp(-0.5 * (np.arange(-18, 19) / 4.5) ** 2)
    xy = np.stack([np.convolve(rng.normal(0, 1, n + 36), k, "valid") for _ in range(2)], axis=1)
    xy *= rms / np.sqrt((xy ** 2).sum(axis=1).mean()) if rms > 0 else 0.0
    frames = np.empty((n, 240, 320, 3), np.uint8)
    for i, (x, y) in enumerate(xy):
        m = np.float32([[1, 0, -40 - x], [0, 1, -40 - y]])
        frames[i] = cv2.warpAffine(room, m, (320, 240), flags=cv2.INTER_LINEAR)
        if hand:
            frames[i, 90:170, 120 + i // 2 : 180 + i // 2] = (150, 170, 210)
    return frames, xy


def room_motion(crops) -> float:
    """rms of the room's shift between consecutive crops ``(T, S, S, 3)``, by phase correlation on their left quarter
    (where :func:`shaking_camera`'s hand never is)."""
    q = max(8, crops[0].shape[1] // 4)
    s = [cv2.phaseCorrelate(a[:, :q, 0].astype(np.float32), b[:, :q, 0].astype(np.float32))[0]
         for a, b in zip(crops, crops[1:])]
    return float(np.sqrt((np.array(s) ** 2).sum(axis=1).mean()))


def tiny_config(**dotted):
    """The default config with dotted overrides, e.g. ``tiny_config(**{"pipeline.stride": 4})``."""
    from realtime.config import Config

    cfg = Config()
    return cfg.replace(**dotted) if dotted else cfg


def tiny_spec(cfg=None, width: float = TINY_WIDTH):
    from realtime.modelio import ModelSpec

    cfg = cfg or tiny_config()
    return ModelSpec.from_config(cfg, width=width, units=8, proj=16)


def tiny_models(cfg=None, width: float = TINY_WIDTH, seed: int = 0, precision: str = "fp32"):
    """``(spec, backbone, head)``: a random tiny model matching ``cfg``."""
    import keras

    from realtime.modelio import build_models

    keras.utils.set_random_seed(seed)
    spec = tiny_spec(cfg, width)
    bb, hd = build_models(spec, precision)
    return spec, bb, hd


def tiny_loaded(cfg=None, width: float = TINY_WIDTH, seed: int = 0):
    """A :class:`realtime.modelio.LoadedModel` (random weights) without touching disk."""
    from realtime.modelio import LoadedModel

    spec, bb, hd = tiny_models(cfg, width, seed)
    return LoadedModel(spec, bb, hd)


def write_tiny_model(model_dir, cfg=None, width: float = TINY_WIDTH, seed: int = 0):
    """Write a random tiny model folder; returns ``(path, spec, backbone, head)``."""
    from realtime.modelio import write_model

    spec, bb, hd = tiny_models(cfg, width, seed)
    d = write_model(model_dir, spec, bb, hd, card="tiny random model for tests\n")
    return d, spec, bb, hd


def random_c3d_weights(width: float, size: int = 112, clip_len: int = 16, n_classes: int = 487, seed: int = 0):
    """He-scaled random Sports1M-layout weights at a width: ``{layer: (kernel, bias)}`` float32.

    Shapes follow the Keras C3D (channels last): conv kernels ``(3, 3, 3, Cin, Cout)``,
    fc6 reads the flattened pool5 output ``(clip_len/16, ceil(size/32), ceil(size/32), C5)``.
    Written independently of ``realtime.c3d`` (only the channel counts are the published ones).
    """
    rng = np.random.default_rng(seed)
    ch = lambda n: max(4, int(round(n * width)))  # noqa: E731
    convs = [("conv1", 64), ("conv2", 128), ("conv3a", 256), ("conv3b", 256),
             ("conv4a", 512), ("conv4b", 512), ("conv5a", 512), ("conv5b", 512)]
    w, cin = {}, 3
    for name, n in convs:
        cout = ch(n)
        std = np.sqrt(2.0 / (27 * cin))
        w[name] = (rng.normal(0, std, (3, 3, 3, cin, cout)).astype(np.float32),
                   rng.normal(0, 0.05, cout).astype(np.float32))
        cin = cout
    sp = -(-(size // 16) // 2)  # after pool4 size/16, then Caffe ceil-mode pool5
    flat = max(1, clip_len // 16) * sp * sp * cin
    fc = ch(4096)
    for name, fin, fout in (("fc6", flat, fc), ("fc7", fc, fc), ("fc8", fc, n_classes)):
        w[name] = (rng.normal(0, np.sqrt(2.0 / fin), (fin, fout)).astype(np.float32),
                   rng.normal(0, 0.05, fout).astype(np.float32))
    return w


def write_keras2_h5_raw(path, weights: dict, skip: tuple = (), with_pool_groups: bool = True):
    """Write ``{layer: (kernel, bias)}`` with raw h5py in the Keras-2 ``save_weights`` layout.

    Root attrs ``layer_names`` / ``backend`` / ``keras_version``; one group per layer
    with attr ``weight_names`` like ``b"conv1/kernel:0"``; datasets at
    ``"conv1/conv1/kernel:0"``. Weightless layers (pools) get groups with no weights,
    as Keras 2 wrote them. Independent of ``realtime.c3d.save_keras2_h5``.
    """
    import h5py

    order = ["conv1", "pool1", "conv2", "pool2", "conv3a", "conv3b", "pool3", "conv4a", "conv4b", "pool4",
             "conv5a", "conv5b", "zeropadding3d_1", "pool5", "flatten_1", "fc6", "dropout_1", "fc7",
             "dropout_2", "fc8"]
    names = [n for n in order if n not in skip and (n in weights or with_pool_groups)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for n in names:
            g = f.create_group(n)
            if n in weights:
                kernel, bias = weights[n]
                wn = [f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()]
                g.attrs["weight_names"] = np.array(wn)
                g.create_dataset(f"{n}/kernel:0", data=kernel)
                g.create_dataset(f"{n}/bias:0", data=bias)
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
    return Path(path)


def gesture_cmd() -> list[str]:
    """The ``gesture`` console command (falls back to ``python -m realtime.cli``)."""
    import shutil

    exe = shutil.which("gesture")
    return [exe] if exe else [sys.executable, "-m", "realtime.cli"]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env.pop("DISPLAY", None)
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env
