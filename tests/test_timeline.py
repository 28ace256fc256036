"""The timeline picture of a stream evaluation (``gesture eval --stream S.mp4 --plot T.png``).

Real matplotlib PNGs read back with OpenCV; the end-to-end case runs the real engine with a tiny Keras model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.config import DEFAULT_LABELS  # noqa: E402
from realtime.errors import GestureError  # noqa: E402
from realtime.timeline import COLOURS, check_plot_path, plot_timeline, row_seconds  # noqa: E402

FPS = 30.0
RED_BGR = (40, 39, 214)          # the false event's cross, #d62728


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)


def _count(img: np.ndarray, bgr, tol: int = 12) -> int:
    """Pixels of about this colour in the rows of the picture, below its title and legend (0.8 in at 90 dpi)."""
    body = img[72:]
    return int((np.abs(body.astype(int) - np.array(bgr)).max(axis=2) <= tol).sum())


def _draw(tmp_path, name, events, gestures, minutes=2.0):
    n = int(minutes * 60 * FPS)
    frames = np.arange(127, n, 4)
    smoothed = np.full((len(frames), len(DEFAULT_LABELS)), 0.02, np.float32)
    smoothed[:, -1] = 0.92
    from realtime.evaluate import pair_events

    pairs = pair_events(events, gestures, FPS) if gestures is not None else None
    path = plot_timeline(tmp_path / f"{name}.png", labels=DEFAULT_LABELS, fps=FPS, n_frames=n, frames=frames,
                         smoothed=smoothed, threshold=0.97, events=events, gestures=gestures, pairs=pairs,
                         title=name)
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable PNG"
    return img


def test_false_events_are_red_crosses_and_missed_gestures_are_not_filled(tmp_path):
    click, left = DEFAULT_LABELS[0], DEFAULT_LABELS[1]
    gestures = [(click, 300, 340), (left, 2000, 2040)]
    hit = [{"label": click, "frame_id": 350}, {"label": left, "frame_id": 2050}]
    clean = _draw(tmp_path, "clean", hit, gestures)
    with_false = _draw(tmp_path, "false", hit + [{"label": DEFAULT_LABELS[2], "frame_id": 3000}], gestures)
    missed = _draw(tmp_path, "missed", hit[:1], gestures)
    assert _count(clean, RED_BGR) == 0
    assert _count(with_false, RED_BGR) > 30
    # the missed swipe's bar is hatched in its colour, not filled with it
    orange = _bgr(COLOURS[1])
    assert _count(missed, orange, tol=40) < 0.6 * _count(clean, orange, tol=40)


def test_one_row_a_minute_and_at_most_fifteen_rows(tmp_path):
    heights = {m: _draw(tmp_path, f"m{m}", [], [], minutes=m).shape[0] for m in (2.0, 4.0)}
    assert heights[4.0] > heights[2.0] + 200          # two more rows of about 130 px
    assert row_seconds(10 * 60) == 60 and row_seconds(15 * 60) == 60
    assert row_seconds(16 * 60) == 120 and row_seconds(60 * 60) == 240    # an hour: 15 rows of 4 minutes


def test_unannotated_footage_gets_events_without_verdicts(tmp_path):
    img = _draw(tmp_path, "own", [{"label": DEFAULT_LABELS[2], "frame_id": 900}], None)
    assert _count(img, RED_BGR) == 0                   # nothing to call false without annotations
    assert _count(img, _bgr(COLOURS[2])) > 0


def test_plot_wants_a_png_name(tmp_path):
    with pytest.raises(GestureError, match=r"t\.jpg: --plot writes a PNG"):
        plot_timeline(tmp_path / "t.jpg", labels=DEFAULT_LABELS, fps=FPS, n_frames=100, frames=np.zeros(0, int),
                      smoothed=np.zeros((0, 5)), threshold=0.9, events=[])
    (tmp_path / "d.png").mkdir()
    with pytest.raises(GestureError, match=r"d\.png: --plot names a folder"):
        check_plot_path(tmp_path / "d.png")
    if Path("/proc/self").is_dir():   # Linux: a folder that exists and takes no file, even for root
        with pytest.raises(GestureError, match=r"t\.png: --plot cannot write there"):
            check_plot_path(Path("/proc/t.png"))
    assert check_plot_path(tmp_path / "new" / "t.png") == tmp_path / "new" / "t.png"
    assert sorted(f.name for f in tmp_path.rglob("*")) == ["d.png"]   # nothing made, the probe file gone


@pytest.mark.timeout(120)
def test_eval_stream_draws_what_the_engine_decided(tmp_path):
    """The real engine (tiny model, low threshold) on a video: the picture is written, and the decisions it
    drew from are every decision the engine made."""
    from realtime.evaluate import eval_stream
    from realtime.timeline import PredictionLog

    cfg = helpers.tiny_config(**{"pipeline.size": 32, "debounce.threshold": 0.05, "debounce.rearm": 0.01,
                                 "debounce.cooldown_s": 0.0})
    model = helpers.tiny_loaded(cfg, seed=2)
    path, _ = helpers.write_video(tmp_path / "s.mp4", n=300, width=64, height=48)
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,150,200\n")
    res = eval_stream(model, cfg, path, None, plot=tmp_path / "out" / "t.png")
    assert res["plot"] == str(tmp_path / "out" / "t.png")
    img = cv2.imread(res["plot"])
    assert img is not None and img.shape[1] == 16 * 90
    assert not list((tmp_path / "out").glob("*.tmp.*"))
    assert res["events"], "a threshold of 0.05 should fire on this video"
    # the picture cannot be written after all (here: its name is taken by a folder): the scores still come back
    (tmp_path / "taken.png").mkdir()
    again = eval_stream(model, cfg, path, None, plot=tmp_path / "taken.png")
    assert again["plot"] is None and again["events"] == res["events"]
    assert again["levenshtein_accuracy"] == res["levenshtein_accuracy"]

    log = PredictionLog()
    from realtime.pipeline import Pipeline
    from realtime.sources import VideoFileSource

    pipe = Pipeline(VideoFileSource(path, realtime=False).open(), model, cfg, sinks=[log])
    pipe.run()
    frames, smoothed = log.arrays(len(model.labels))
    assert len(frames) == pipe.stats.decisions and (np.diff(frames) > 0).all()
    assert smoothed.shape == (len(frames), len(model.labels))
    assert np.allclose(smoothed.sum(axis=1), 1, atol=1e-3)
    probs = np.stack(log.probs)                       # the head's own outputs, which tune_debounce replays
    assert probs.shape == smoothed.shape and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    assert np.allclose(probs[:3].mean(axis=0), smoothed[2], atol=1e-5)   # smoothing 3: the mean of the last 3
