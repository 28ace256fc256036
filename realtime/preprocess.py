"""The one preprocessing path, shared by live capture, ``gesture features`` and training.

The Sports1M C3D was trained in Caffe on BGR frames in 0..255, resized to
171x128 (w x h), with the mean subtracted and a 112x112 crop taken. The seed
post squashed frames straight to 112x112 with INTER_AREA and divided by 255,
so the pretrained filters saw inputs ~100x smaller than in training: one reason
it never learned.

The work is split in two so the capture thread does the cheap, per-frame part
once and the ring buffer can hold compact uint8 frames:

* :func:`crop_frame` (capture thread): ``(H, W, 3) uint8 BGR`` -> resize to
  ``preprocess.resize`` with ``cv2.INTER_LINEAR`` -> crop ``(size, size, 3) uint8``.
  A frame of another shape than the resize's 171x128 (a 16:9 webcam, a 9:16 phone
  video) is squeezed whole by default (``preprocess.aspect: stretch``, the Caffe
  recipe), which keeps a hand anywhere in the frame in view but 1.33 (16:9) or 2.4
  (9:16) times narrower than the 4:3 frames the bundled model learned from;
  ``crop`` cuts the frame's middle to 171x128 first, which keeps the proportions of a
  hand there and loses one nearer the edges. Which is better depends on where the
  hand is (docs/ablation.md, sessions 16 and 22).
* A frame more than twice the resize's size (a 640x480 or 1280x720 webcam) is
  first averaged down (``cv2.INTER_AREA``) to twice the resize in that dimension
  (342 wide, 256 high), then resized as above (``preprocess.downscale: area``).
  ``INTER_LINEAR`` straight from 1280 pixels to 171 reads 2 of every 7 pixels
  in each direction: edges alias and sensor noise is not averaged, so the frame
  looks unlike the 320x240 frames the small backbones learned from, and they
  fire more often on it (docs/ablation.md, "Session 25"). The Sports1M C3D keeps
  the Caffe recipe (``linear``); ``auto``, the default, picks per model
  (:func:`for_model`). A 320x240 frame is resized the same either way.
* A crop darker than ``preprocess.min_level`` (mean grey, 0-255) is brightened to it, at most
  ``MAX_GAIN`` times (:func:`brighten`): what a camera's gain does in a dim room, which the rendered
  rooms the bundled model learned from never were (docs/ablation.md, "Session 27").
* :func:`to_model_input` (inference): ``(..., size, size, 3) uint8`` ->
  float32 minus the BGR channel means.

Subtracting the means after the crop gives the same numbers as before it
(it is per channel), and resizing the uint8 frame is what reading frames with
OpenCV and resizing them does in the reference recipe.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .config import Config, PipelineConfig, PreprocessConfig
from .errors import GestureError

MAX_GAIN = 4.0            # preprocess.min_level brightens a dark crop by at most this much (noise grows with it)
ASPECT_TOLERANCE = 0.02   # frames within 2% of the resize's shape are used whole (320x240 is 0.2% off 171x128)


def _shaped_like_resize(width: int, height: int, pre: PreprocessConfig) -> bool:
    rw, rh = pre.resize
    return abs((width / height) / (rw / rh) - 1) <= ASPECT_TOLERANCE


def aspect_box(width: int, height: int, pre: PreprocessConfig, flip: bool = False) -> tuple[int, int, int, int]:
    """``(x, y, w, h)``: the part of a ``width x height`` frame that is resized to ``preprocess.resize``.

    The whole frame for ``aspect: stretch`` or a frame already of the resize's shape; for ``crop`` its middle,
    cut to that shape.
    ``flip``: the box of the frame flipped left to right, given on the frame as it is.
    Example (``crop``, 171x128): 1280x720 -> (159, 0, 962, 720); 720x1280 -> (0, 370, 720, 539).
    """
    if pre.aspect != "crop" or _shaped_like_resize(width, height, pre):
        return 0, 0, width, height
    rw, rh = pre.resize
    if width * rh > height * rw:    # wider than the resize: cut the sides
        w = max(1, min(width, int(round(height * rw / rh))))
        x = (width - w) // 2
        if flip:
            x = width - w - x
        return x, 0, w, height
    h = max(1, min(height, int(round(width * rh / rw))))
    return 0, (height - h) // 2, width, h


def for_model(pre: PreprocessConfig, width: float, saved: dict | None = None) -> PreprocessConfig:
    """``pre`` with ``downscale: auto`` made concrete for one model: what its ``model.json`` says (``saved``, its
    ``preprocess``), else ``area`` for a small backbone (``width`` < 1, trained here on 320x240 frames) and ``linear``
    for the full Sports1M C3D (the Caffe recipe its weights were trained with). A set value is kept as it is
    (``check_against_config`` refuses one the model disagrees with)."""
    if pre.downscale != "auto":
        return pre
    got = (saved or {}).get("downscale")
    mode = got if got in ("linear", "area") else ("area" if float(width) < 1.0 else "linear")
    return dataclasses.replace(pre, downscale=mode)


def config_for_model(cfg: Config, width: float, saved: dict | None = None) -> Config:
    """``cfg`` with its preprocessing made one model's (:func:`for_model`), so that training, evaluation,
    recording and the live path cut frames as that model was, or will be, trained on them."""
    return dataclasses.replace(cfg, preprocess=for_model(cfg.preprocess, width, saved))


def as_bgr(frame: np.ndarray, source: str = "frame") -> np.ndarray:
    """Any decoded frame -> ``(H, W, 3) uint8 BGR``: grayscale is expanded, BGRA loses alpha."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise GestureError(f"{source}: empty or missing frame")
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            frame = np.clip(frame, 0, 255)
        elif frame.dtype == np.uint16:
            frame = frame >> 8
        frame = frame.astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise GestureError(f"{source}: unsupported frame shape {frame.shape} (expected HxW, HxWx1, HxWx3 or HxWx4)")


def shape_note(size: tuple[int, int] | None, pre: PreprocessConfig) -> str | None:
    """One line for frames of ``size (width, height)`` not shaped like ``preprocess.resize`` (a 16:9 or 9:16 video):
    what happens to them, and the other way. None for 4:3 frames, where both ways are the same, or no size."""
    if not size:
        return None
    width, height = size
    if _shaped_like_resize(width, height, pre):
        return None
    rw, rh = pre.resize
    if pre.aspect == "crop":
        x, y, w, h = aspect_box(width, height, pre)
        return (f"{width}x{height} frames: their middle {w}x{h} is used (preprocess.aspect: crop); a hand outside it "
                f"is not seen (--set preprocess.aspect=stretch squeezes the whole frame instead)")
    return (f"{width}x{height} frames are squeezed to {rw}x{rh} (preprocess.aspect: stretch), which makes hands "
            f"narrower or flatter than in 4:3 video; if the hand stays in the middle, --set preprocess.aspect=crop "
            f"keeps its shape (README, 'How it works')")


def crop_frame(
    frame: np.ndarray,
    pre: PreprocessConfig | None = None,
    size: int = 112,
    out: np.ndarray | None = None,
    source: str = "frame",
    flip: bool = False,
    stabilizer=None,
) -> np.ndarray:
    """``(H, W, C) uint8`` camera frame -> ``(size, size, 3) uint8 BGR`` crop (written into ``out`` if given).

    ``flip``: the frame is a mirror image (``capture.mirrored``); the crop is that of the frame flipped left
    to right, so that left and right are the user's again. Resizing commutes with the flip, so the mirrored
    crop window of the resized frame is cut and flipped: no copy of the whole frame.
    ``stabilizer``: a :class:`realtime.stabilize.Stabilizer` (``capture.stabilize``), which moves the crop window
    with the camera's wobble (sub-pixel, inside the resized frame).
    """
    pre = pre or PreprocessConfig()
    frame = as_bgr(frame, source)
    bx, by, bw, bh = aspect_box(frame.shape[1], frame.shape[0], pre, flip)
    if bw != frame.shape[1] or bh != frame.shape[0]:
        frame = frame[by : by + bh, bx : bx + bw]
    w, h = pre.resize
    if pre.downscale == "area" and (frame.shape[1] > 2 * w or frame.shape[0] > 2 * h):  # auto, unresolved: linear
        frame = cv2.resize(frame, (min(frame.shape[1], 2 * w), min(frame.shape[0], 2 * h)), interpolation=cv2.INTER_AREA)
    dx, dy = stabilizer.shift(frame, (w, h)) if stabilizer is not None else (0.0, 0.0)
    if frame.shape[1] != w or frame.shape[0] != h:
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    r, c = pre.crop
    if flip:
        c = w - c - size
    if dx or dy:
        crop = cv2.getRectSubPix(frame, (size, size), (c + (size - 1) / 2 + dx, r + (size - 1) / 2 + dy))
    else:
        crop = frame[r : r + size, c : c + size]
    if flip:
        crop = crop[:, ::-1]
    if pre.min_level > 0:
        crop = brighten(crop, pre.min_level)
    if out is None:
        return np.ascontiguousarray(crop)
    out[...] = crop
    return out


def brighten(crop: np.ndarray, min_level: float) -> np.ndarray:
    """``crop`` if its mean grey level (the mean of its B, G and R values) is ``min_level`` or more; else a copy
    scaled up to it (by at most ``MAX_GAIN`` times, saturating at 255), as a camera's gain would brighten a dim room
    (``preprocess.min_level``).

    Per crop, so that training, recording and the live path do the same thing to the same frame. The bundled
    model learned from rendered rooms whose exposure varies 0.65-1.25x; a room 4x darker than that costs it a
    tenth of the gestures, and this gives back more than half of them (docs/ablation.md, "Session 27").
    """
    m = float(crop.mean())
    if m >= min_level:
        return crop
    return cv2.convertScaleAbs(np.ascontiguousarray(crop), alpha=min(min_level / max(m, 1.0), MAX_GAIN))


def model_view(width: int, height: int, pre: PreprocessConfig | None = None, size: int = 112,
               flip: bool = False) -> tuple[float, float, float, float]:
    """The part of a ``width x height`` frame that :func:`crop_frame` keeps: ``(x0, y0, x1, y1)`` in its pixels.

    The whole frame is resized to ``preprocess.resize`` and a ``size`` square cut at ``preprocess.crop``, so
    only this box ever reaches the model (with the defaults, the middle 65% of the width and 88% of the
    height: 640x480 -> (108.5, 30.0, 527.7, 450.0)). ``flip``: the box of the flipped frame
    (``capture.mirrored``), given on the frame as captured.
    """
    pre = pre or PreprocessConfig()
    bx, by, bw, bh = aspect_box(width, height, pre, flip)
    w, h = pre.resize
    r, c = pre.crop
    if flip:
        c = w - c - size
    sx, sy = bw / w, bh / h
    return bx + c * sx, by + r * sy, bx + (c + size) * sx, by + (r + size) * sy


def crop_frames(frames, pre: PreprocessConfig | None = None, size: int = 112) -> np.ndarray:
    """A sequence of frames -> ``(T, size, size, 3) uint8``."""
    frames = list(frames)
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, f in enumerate(frames):
        crop_frame(f, pre, size, out=out[i])
    return out


def to_model_input(crops: np.ndarray, pre: PreprocessConfig | None = None, dtype=np.float32) -> np.ndarray:
    """``(..., size, size, 3) uint8`` crops -> float input for C3D (BGR minus the Sports1M means)."""
    pre = pre or PreprocessConfig()
    mean = np.asarray(pre.mean_bgr, dtype=np.float32)
    return (crops.astype(np.float32) - mean).astype(dtype, copy=False)


def clip_starts(n_frames: int, clip_len: int = 16) -> list[int]:
    """Start frames of the non-overlapping clips from frame 0: floor(n / clip_len) of them."""
    return list(range(0, n_frames - clip_len + 1, clip_len))


def describe(pre: PreprocessConfig, pipe: PipelineConfig) -> dict:
    """The preprocessing fields saved beside the weights and checked at load time."""
    return {
        "color": "BGR",
        "range": [0, 255],
        "resize": list(pre.resize),
        "interpolation": "INTER_LINEAR",
        "crop": list(pre.crop),
        "mean_bgr": list(pre.mean_bgr),
        "size": pipe.size,
        "aspect": pre.aspect,
        "downscale": pre.downscale,
        "min_level": pre.min_level,
    }
