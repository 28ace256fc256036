"""fc7 features of a video's non-overlapping 16-frame clips (``gesture features``, training cache).

``extract_features(frames)``: ``(T, H, W, 3) uint8`` frames -> ``(floor(T/16), feature_dim) float32``,
clips starting at frame 0, 16, 32, ... Exactly the preprocessing of the live path.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .config import Config
from .errors import GestureError, writable_file
from .framerate import video_fps
from .preprocess import clip_starts, config_for_model, crop_frames, to_model_input


def read_video(path: str | Path, max_frames: int | None = None, with_fps: bool = False):
    """All frames of a video as ``(T, H, W, 3) uint8 BGR`` (and its frame rate, 30 when the file does
    not say, with ``with_fps``). Errors name the file."""
    path = Path(path)
    if not path.exists():
        raise GestureError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise GestureError(f"{path}: cannot open as a video (unsupported or corrupt file)")
    fps = video_fps(cap)
    frames = []
    shape = None
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, f = cap.read()
            if not ok or f is None:
                break
            if f.ndim == 2:
                f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
            elif f.shape[2] == 4:
                f = cv2.cvtColor(f, cv2.COLOR_BGRA2BGR)
            if shape is None:
                shape = f.shape
            elif f.shape != shape:
                f = cv2.resize(f, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
            frames.append(f)
    finally:
        cap.release()
    if not frames:
        raise GestureError(f"{path}: video has no readable frames (empty or corrupt)")
    return (np.stack(frames), fps) if with_fps else np.stack(frames)


def video_crops(path: str | Path, cfg: Config) -> np.ndarray:
    """A video's frames preprocessed like the live path: ``(T, size, size, 3) uint8``."""
    return crop_frames(read_video(path), cfg.preprocess, cfg.pipeline.size)


def clip_features(crops: np.ndarray, predict, cfg: Config, batch: int = 8, progress=None) -> np.ndarray:
    """Features of the non-overlapping clips of ``crops (T, size, size, 3) uint8``: ``(n_clips, D)``."""
    L = cfg.pipeline.clip_len
    starts = clip_starts(len(crops), L)
    out = []
    for i in range(0, len(starts), batch):
        s = starts[i : i + batch]
        clips = np.stack([crops[a : a + L] for a in s])
        out.append(predict(to_model_input(clips, cfg.preprocess)))
        if progress is not None:
            progress.update(len(s))
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out).astype(np.float32)


def features_command(video, weights, out, cfg: Config, precision: str = "fp32", batch: int = 4,
                     width: float = 1.0) -> np.ndarray:
    """``gesture features``: Sports1M C3D (built to fc8, weights loaded) -> fc7 of each clip -> .npy."""
    from tqdm import tqdm

    from .c3d import build_c3d, fc7_extractor, load_sports1m_weights
    from .modelio import predict_fn, set_precision

    out = writable_file(out, "--out")   # before minutes of C3D whose result would have nowhere to go
    cfg = config_for_model(cfg, width)   # downscale: auto -> the Caffe recipe
    crops = video_crops(video, cfg)
    L = cfg.pipeline.clip_len
    if len(crops) < L:
        raise GestureError(f"{video}: {len(crops)} frames, fewer than one {L}-frame clip")
    set_precision(precision)
    try:
        full = build_c3d(width, L, cfg.pipeline.size, with_fc8=True)
    finally:
        set_precision("fp32")
    load_sports1m_weights(full, weights)
    f = predict_fn(fc7_extractor(full))
    n = len(clip_starts(len(crops), L))
    with tqdm(total=n, desc="fc7 features", unit="clip", disable=None) as bar:
        feats = clip_features(crops, f, cfg, batch=batch, progress=bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, feats)
    tmp.replace(out)
    return feats
