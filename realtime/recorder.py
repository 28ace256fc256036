"""Recording training clips: corrections from the live window, and ``gesture record``.

Dataset layout (the seed's, plus provenance columns)::

    <dataset>/meta.csv                    file_path,action,frame_count,predicted,confidence,recorded_at
    <dataset>/Train_Data/<label>/<timestamp>.mp4

``file_path`` is relative to the CSV. Clips are stored as the ``(112, 112, 3)``
BGR crops the model sees (a row with ``recorded_at`` means model-ready crops).

Each clip is written atomically: encoded under a hidden temp name in its final
folder, read back with OpenCV (the frame count must match), then linked to its
final name (``os.link`` refuses to overwrite, so two writers never clobber each
other; ``os.replace`` after an existence check where links are unsupported).
Only then is the ``meta.csv`` row appended (under a file lock, flushed and
fsynced). A clip interrupted by Ctrl-C leaves at most a hidden ``.*.tmp.mp4``,
never a file under a final name and never a row.

:class:`ClipRecorder` is the live-window sink: a writer thread behind a bounded
queue. Drop policy ``DROP_NEWEST``: when the queue is full a new save waits at
most ``put_timeout`` seconds and is then dropped and counted, so the live loop
never stalls.
"""

from __future__ import annotations

import csv
import enum
import io
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from .config import DEFAULT_LABELS, NO_GESTURE, Config
from .errors import GestureError

META_COLUMNS = ("file_path", "action", "frame_count", "predicted", "confidence", "recorded_at")
CLIPS_DIR = "Train_Data"

try:  # a lock shared with other processes writing the same meta.csv (gesture live + gesture record)
    import fcntl
except ImportError:  # Windows: rows are still appended whole by one writer thread per process
    fcntl = None


class RecorderError(GestureError):
    """A clip could not be written; the message names the file."""


class QueuePolicy(enum.Enum):
    DROP_NEWEST = "drop_newest"   # a save that finds the queue full is dropped and counted


# ---------------------------------------------------------------------------------------------
# writing one clip (used by the writer thread and by ``gesture record``)
# ---------------------------------------------------------------------------------------------

def check_label(label: str, labels) -> str:
    """``label`` if it is one of ``labels``; anything else (``../x``, ``a/b``) is refused."""
    if not isinstance(label, str) or label not in tuple(labels):
        raise RecorderError(f"label {label!r} is not one of the configured labels {list(labels)}")
    if label in ("", ".", "..") or any(c in label for c in "/\\:\0") or Path(label).name != label:
        raise RecorderError(f"label {label!r} cannot be used as a folder name")
    return label


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S_%f")


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def count_frames(path: str | Path) -> int:
    """Frames OpenCV actually decodes from ``path`` (not the container's estimate)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def _encode(path: Path, frames: np.ndarray, fps: float) -> None:
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not vw.isOpened():
        raise RecorderError(f"{path}: OpenCV cannot open an mp4 writer here")
    try:
        for f in frames:
            vw.write(np.ascontiguousarray(f))
    finally:
        vw.release()


def _publish(tmp: Path, folder: Path, stem: str) -> Path:
    """Give ``tmp`` a final name ``stem.mp4`` (``stem_1.mp4``... if taken) without overwriting anything."""
    for i in range(1000):
        final = folder / (f"{stem}.mp4" if i == 0 else f"{stem}_{i}.mp4")
        if final.exists():
            continue
        try:
            os.link(tmp, final)  # atomic and refuses to overwrite
        except FileExistsError:
            continue  # another writer got there first
        except OSError:  # no hard links here (some filesystems): replace after the check
            if final.exists():
                continue
            os.replace(tmp, final)
            return final
        tmp.unlink()
        return final
    raise RecorderError(f"{folder}: could not find a free name for {stem}.mp4")


def _check_header(csv_path: Path, first_line: str) -> None:
    """``first_line`` of an existing ``csv_path`` must be the recorder's header."""
    header = first_line.strip().split(",")
    if tuple(header) != META_COLUMNS:
        raise RecorderError(f"{csv_path}: existing header {header} is not {list(META_COLUMNS)}; "
                            f"record into a new folder (--record-dir / --out)")


def check_meta(csv_path: str | Path) -> None:
    """Raise :class:`RecorderError` now if clips could not be added to ``csv_path`` (another dataset's CSV),
    rather than after a clip has been recorded."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, encoding="utf-8", newline="") as f:
            first = f.readline()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as e:
        raise RecorderError(f"{csv_path}: cannot read it ({type(e).__name__})") from None
    if first:
        _check_header(csv_path, first)


def append_meta(csv_path: Path, row: dict) -> None:
    """Append one row (header first if the file is new) under a lock; flush + fsync."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[c] for c in META_COLUMNS])
    line = buf.getvalue()
    with open(csv_path, "a+", encoding="utf-8", newline="") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                f.write(",".join(META_COLUMNS) + "\n")
            else:
                f.seek(0)
                _check_header(csv_path, f.readline())
                f.seek(0, os.SEEK_END)
                f.seek(f.tell() - 1)
                if f.read(1) not in ("\n", ""):
                    f.write("\n")  # a row cut short by a crash must not swallow ours
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_clip(dataset_dir: str | Path, frames: np.ndarray, label: str, fps: float = 30.0,
               predicted: str = "", confidence: float | str = "", labels=DEFAULT_LABELS,
               now: datetime | None = None) -> Path:
    """Write ``frames (N, H, W, 3) uint8 BGR`` as ``Train_Data/<label>/<timestamp>.mp4`` + a meta row.

    Returns the final path. Raises :class:`RecorderError` (and leaves no final
    file and no row) if the clip does not read back with ``N`` frames.
    """
    label = check_label(label, labels)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise RecorderError(f"frames must be (N, H, W, 3) uint8 with N >= 1, got {frames.shape} {frames.dtype}")
    root = Path(dataset_dir).resolve()
    folder = root / CLIPS_DIR / label
    if folder.resolve().parent.parent != root:  # belt and braces: never outside the dataset
        raise RecorderError(f"label {label!r} would write outside {root}")
    check_meta(root / "meta.csv")   # before the clip is written: no clip without its row
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where the folder should be, a read-only or full disk
        raise RecorderError(f"{folder}: cannot make the clip's folder ({e.strerror or e})") from None
    now = now or datetime.now().astimezone()
    stem = _timestamp(now)
    tmp = folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp.mp4"
    try:
        _encode(tmp, frames, fps)
        got = count_frames(tmp)
        if got != len(frames):
            raise RecorderError(f"{tmp}: wrote {len(frames)} frames but {got} read back")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        final = _publish(tmp, folder, stem)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(folder)
    conf = "" if confidence == "" or confidence is None else f"{float(confidence):.4f}"
    append_meta(root / "meta.csv", {
        "file_path": final.relative_to(root).as_posix(),
        "action": label,
        "frame_count": len(frames),
        "predicted": predicted or "",
        "confidence": conf,
        "recorded_at": now.isoformat(timespec="milliseconds"),
    })
    return final


# ---------------------------------------------------------------------------------------------
# the live-window sink
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    frames: np.ndarray
    label: str
    predicted: str
    confidence: float | str


class ClipRecorder:
    """Saves corrected clips on its own thread. ``save()`` never blocks longer than ``put_timeout``.

    ``with ClipRecorder("recordings", fps=30) as r: r.save(frames, "Shake_Hand", "no_gesture", 0.71)``.
    Counters (``saved``, ``dropped``, ``failed``, ``pending``) and ``last_path``/``last_error`` feed
    the overlay. ``close()`` drains the queue for up to ``drain_timeout`` s, then stops the thread.
    """

    _STOP = object()

    def __init__(self, dataset_dir: str | Path, fps: float = 30.0, labels=DEFAULT_LABELS,
                 max_queue: int = 4, put_timeout: float = 0.05, drain_timeout: float = 10.0):
        self.dataset_dir = Path(dataset_dir)
        self.fps = float(fps)
        self.labels = tuple(labels)
        self.policy = QueuePolicy.DROP_NEWEST
        self.put_timeout, self.drain_timeout = put_timeout, drain_timeout
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.saved = 0
        self.dropped = 0
        self.failed = 0
        self.last_path: Path | None = None
        self.last_error: str | None = None
        self.error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="clip-recorder", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def save(self, frames: np.ndarray, true_label: str, predicted: str = "",
             confidence: float | str = "") -> bool:
        """Queue a clip ``(N, 112, 112, 3) uint8``; False if refused (bad label) or dropped (queue full)."""
        if self._closed:
            return False
        try:
            check_label(true_label, self.labels)
        except RecorderError as e:
            with self._lock:
                self.failed += 1
                self.last_error = str(e)
            return False
        job = _Job(np.array(frames, dtype=np.uint8, copy=True), true_label, predicted or "", confidence)
        try:
            self._q.put(job, timeout=self.put_timeout)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self.last_error = f"recorder busy: dropped a {true_label} clip ({self.policy.value})"
            return False
        return True

    def _run(self) -> None:
        try:
            while True:
                try:
                    job = self._q.get(timeout=0.1)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                if job is self._STOP:
                    return
                try:
                    path = write_clip(self.dataset_dir, job.frames, job.label, self.fps, job.predicted,
                                      job.confidence, self.labels)
                except Exception as e:  # one bad clip must not end recording
                    with self._lock:
                        self.failed += 1
                        self.last_error = str(e)
                    print(f"warning: recorder: {e}", file=sys.stderr, flush=True)
                else:
                    with self._lock:
                        self.saved += 1
                        self.last_path = path
        except BaseException as e:  # kept for the owner to see; the thread ends
            self.error = e

    def status(self) -> str:
        """One short line for the overlay: ``rec: 3 saved, 1 pending, 0 dropped``."""
        with self._lock:
            s = f"{self.saved} saved"
            if self.pending:
                s += f", {self.pending} pending"
            if self.dropped:
                s += f", {self.dropped} dropped"
            if self.failed:
                s += f", {self.failed} failed"
        return s

    def close(self) -> None:
        """Finish queued clips (up to ``drain_timeout`` s), then stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.drain_timeout
        try:
            self._q.put(self._STOP, timeout=max(0.0, self.drain_timeout))
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
            left = self._q.qsize()
            print(f"warning: recorder: gave up waiting; {left} queued clip(s) not written",
                  file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# gesture record: guided recording
# ---------------------------------------------------------------------------------------------

WINDOW = "gesture record"


def _draw_record(image: np.ndarray, clip: int, count: int, label: str, text: str, progress: float | None,
                 mirror: bool = True, cfg: Config | None = None) -> np.ndarray:
    """The record window: camera image (mirrored for display), a big countdown or a progress bar.

    With ``cfg``, the part of the image that is not saved (outside the model's crop) is dimmed.
    """
    from .overlay import dim_outside_model_view

    img = cv2.flip(image, 1) if mirror else image.copy()
    h, w = img.shape[:2]
    scale = 480.0 / h
    img = cv2.resize(img, (max(1, int(round(w * scale))), 480), interpolation=cv2.INTER_LINEAR)
    if cfg is not None:
        dim_outside_model_view(img, w, h, cfg, mirror)
    h, w = img.shape[:2]
    band = img[:56]
    cv2.addWeighted(band, 0.35, np.zeros_like(band), 0.65, 0, dst=band)
    cv2.putText(img, f"{label}  clip {clip}/{count}", (14, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                (255, 255, 255), 2, cv2.LINE_AA)
    if progress is None:
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 4.0, 8)
        cv2.putText(img, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, 4.0,
                    (0, 0, 0), 14, cv2.LINE_AA)
        cv2.putText(img, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, 4.0,
                    (255, 255, 255), 8, cv2.LINE_AA)
        msg = f"get ready: {label.replace('_', ' ')}"
        (mw, _), _ = cv2.getTextSize(msg, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
        cv2.putText(img, msg, ((w - mw) // 2, (h + th) // 2 + 50), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                    (0, 0, 0), 5, cv2.LINE_AA)
        cv2.putText(img, msg, ((w - mw) // 2, (h + th) // 2 + 50), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                    (255, 255, 255), 2, cv2.LINE_AA)
    else:
        x0, x1, y0, y1 = 20, w - 20, h - 44, h - 20
        cv2.rectangle(img, (x0, y0), (x1, y1), (40, 40, 40), -1)
        cv2.rectangle(img, (x0, y0), (x0 + int((x1 - x0) * progress), y1), (60, 60, 230), -1)
        cv2.rectangle(img, (x0, y0), (x1, y1), (230, 230, 230), 1)
        cv2.circle(img, (w - 30, 28), 9, (40, 40, 230), -1)
        cv2.putText(img, text, (x0, y0 - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def record_clips(source, cfg: Config, dataset_dir: str | Path, label: str, count: int, frames: int,
                 show: bool = False, countdown_s: float = 3.0, mirror: bool = True, stream=None) -> list[Path]:
    """Record ``count`` clips of ``frames`` frames from an opened ``source`` into ``dataset_dir``.

    Before each clip: a ``countdown_s`` countdown (3-2-1) on screen (``show``) or printed.
    Frames are cropped with :func:`realtime.preprocess.crop_frame` (rid of rolling light bands,
    ``capture.deflicker``, and held still if the camera shakes, ``capture.stabilize``, as the live path does) and
    stored as ``(frames, size, size, 3)`` crops.
    ``q``/Esc in the window, or closing it, stops early.
    """
    from .deflicker import Deflicker
    from .preprocess import crop_frame
    from .stabilize import Stabilizer

    stream = stream or sys.stdout
    label = check_label(label, cfg.labels)
    size, pre = cfg.pipeline.size, cfg.preprocess
    written: list[Path] = []

    def next_frame(what: str):
        f = source.read()
        if f is None:
            raise GestureError(f"{source.name}: the source ended {what} (after {len(written)} of {count} clips)")
        return f

    guard = None
    # as the live path cuts them (capture.deflicker): one running average over the session, kept warm in countdowns
    deflicker = Deflicker() if cfg.capture.deflicker else None
    stabilizer = Stabilizer(source.fps) if cfg.capture.stabilize else None   # (capture.stabilize) so is this

    def show_frame(img) -> bool:
        cv2.imshow(WINDOW, img)
        k = cv2.waitKey(1) & 0xFF
        if guard is not None and guard.active:
            guard.check(img)
        return k not in (ord("q"), 27) and not window_closed(WINDOW)

    if show:
        from .overlay import SETTLE_S, open_window, window_closed

        # on screen before the first frame is read, and watched (a window mapped under load can stay black)
        _, guard = open_window(WINDOW, np.full((480, 640, 3), 20, np.uint8), SETTLE_S)
    try:
        for n in range(1, count + 1):
            if countdown_s > 0:
                t_end = time.monotonic() + countdown_s
                last = None
                while (left := t_end - time.monotonic()) > 0:
                    sec = int(np.ceil(left))
                    if sec != last:
                        print(f"clip {n}/{count} ({label}): {sec}...", file=stream, flush=True)
                        last = sec
                    # Keep reading so a camera's buffer holds no stale frames when recording starts.
                    image = next_frame("during the countdown")
                    if deflicker is not None or stabilizer is not None:
                        crop = crop_frame(image, pre, size, source=source.name, flip=cfg.capture.mirrored,
                                          stabilizer=stabilizer)
                        if deflicker is not None:
                            deflicker.row_gains(crop)
                    if show and not show_frame(_draw_record(image, n, count, label, str(sec), None, mirror, cfg)):
                        return written
                    if not source.paced:
                        time.sleep(min(left, 1.0 / max(1.0, source.fps)))
            print(f"clip {n}/{count} ({label}): recording {frames} frames", file=stream, flush=True)
            clip = np.empty((frames, size, size, 3), np.uint8)
            for i in range(frames):
                image = next_frame("while recording")
                crop_frame(image, pre, size, out=clip[i], source=f"{source.name}", flip=cfg.capture.mirrored,
                           stabilizer=stabilizer)
                if deflicker is not None:
                    deflicker.apply(clip[i])
                if show and (i % 2 == 0 or i == frames - 1):
                    img = _draw_record(image, n, count, label, "recording", (i + 1) / frames, mirror, cfg)
                    if not show_frame(img):
                        return written
            path = write_clip(dataset_dir, clip, label, source.fps, labels=cfg.labels)
            written.append(path)
            print(f"clip {n}/{count} ({label}): saved {path}", file=stream, flush=True)
    finally:
        if guard is not None:
            guard.close()
        if show:
            try:
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            except cv2.error:  # closed by the user already
                pass
    return written


def _for_retraining(cfg: Config) -> Config:
    """The clips are kept as crops, cut as the model they will retrain cuts frames: ``model.path``'s (the bundled
    one by default; ``preprocess.downscale: auto`` made its own), or a small backbone's where there is none."""
    from .modelio import BUNDLED_MODEL_DIR, read_spec
    from .preprocess import config_for_model

    try:
        spec = read_spec(Path(cfg.model.path) if cfg.model.path else BUNDLED_MODEL_DIR)
    except GestureError:   # no model, or a broken one (for `gesture live` to name): a small backbone's way
        return config_for_model(cfg, 0.125)
    return config_for_model(cfg, spec.width, spec.preprocess)


def record_session(args, cfg: Config) -> int:
    """``gesture record --label L --count N [--seconds S] [--source SRC] [--out DIR] [--headless]``."""
    from .app import window_possible
    from .preprocess import shape_note
    from .sources import open_source

    if args.label not in cfg.labels:
        raise GestureError(f"--label {args.label!r} is not a label (labels: {list(cfg.labels)}); "
                           f"add new gestures to 'labels' in config.yaml first")
    if args.count < 1:
        raise GestureError(f"--count must be >= 1, got {args.count}")
    cfg = _for_retraining(cfg)
    fps = cfg.capture.fps
    source = open_source(args.source, realtime=False, fps=fps)
    try:
        fps = source.fps or fps
        if args.seconds is not None:
            if not 0 < args.seconds <= 600:
                raise GestureError(f"--seconds must be in (0, 600], got {args.seconds}")
            n_frames = max(cfg.pipeline.clip_len, int(round(args.seconds * fps)))
        else:
            n_frames = cfg.recorder_frames
        out = args.out or cfg.recorder.dir
        check_meta(Path(out) / "meta.csv")   # before the user performs anything
        note = shape_note(source.frame_size, cfg.preprocess)
        if note:   # the clips keep the model's crop of each frame: say which part that is
            print(f"note: {note}", file=sys.stderr, flush=True)
        show = window_possible(args.headless, "recording without a preview")
        # A person needs time to get ready; a video file does not.
        countdown = 3.0 if source.paced else 0.0
        if args.label == NO_GESTURE:
            print("recording no_gesture clips: move naturally without doing any gesture", flush=True)
        paths = record_clips(source, cfg, out, args.label, args.count, n_frames, show=show,
                             countdown_s=countdown, mirror=cfg.overlay.mirror != cfg.capture.mirrored)
    finally:
        source.close()
    print(f"recorded {len(paths)} clip(s) of {args.label} into {Path(out) / 'meta.csv'}", flush=True)
    return 0 if len(paths) == args.count else 1
