"""Start TensorFlow without its start-up noise on the terminal.

``TF_CPP_MIN_LOG_LEVEL=2`` (set by the CLI) hides TensorFlow's INFO and WARNING logs, but not the
ones its C++ libraries write before their logging is set up, nor one ERROR on every machine without
a GPU. ``gesture demo`` printed seven such lines before its first own line, one of them
``E0000 ... cuda_platform.cc:52] failed call to cuInit: ... CUDA error``, which reads as if something
had broken. :func:`start_tensorflow` imports TensorFlow and lists its devices with the native
stderr (file descriptor 2) sent to a temporary file, then writes back every line except those.
Anything else (a real error, a crash message) is shown as it came, and an exception is raised as usual.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

# What TF_CPP_MIN_LOG_LEVEL=2 means to hide, written by absl before it honours it, and the one
# ERROR a machine without a GPU always gets.
_PREINIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ (\S+):\d+\] (.*)$")


def is_noise(line: str, min_level: int | None = None) -> bool:
    """Whether a native stderr line is start-up noise (``min_level``: TF_CPP_MIN_LOG_LEVEL, read if None)."""
    if min_level is None:
        try:
            min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        except ValueError:
            min_level = 0
    if line.strip() == _PREINIT:
        return min_level >= 1
    m = _ABSL_LINE.match(line)
    if m is None:
        return False
    level, source, text = m.groups()
    if level == "I":
        return min_level >= 1
    if level == "W":
        return min_level >= 2
    return level == "E" and source == "cuda_platform.cc" and text.startswith("failed call to cuInit") and min_level >= 2


@contextmanager
def native_stderr_filtered(min_level: int | None = None):
    """Within the block, file descriptor 2 goes to a temporary file; afterwards its lines that are
    not :func:`is_noise` are written to ``sys.stderr``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):   # no real stderr (an embedding host): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode("utf-8", "replace").splitlines()
                    if not is_noise(line, min_level)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def start_tensorflow() -> None:
    """Import TensorFlow and look for its devices (where the cuInit error comes from), quietly."""
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    with native_stderr_filtered():
        try:
            import tensorflow as tf
        except ImportError:   # the command says what is missing when it needs it
            return
        tf.config.list_physical_devices("GPU")
