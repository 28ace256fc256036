"""TensorFlow's start-up noise is kept off the terminal; everything else on native stderr is kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.quiet import is_noise  # noqa: E402

PREINIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
INFO = "I0000 00:00:1796619289.503848   10156 port.cc:153] oneDNN custom operations are on."
WARN = "W0000 00:00:1796619289.504247   10156 cpu_feature_guard.cc:210] This TensorFlow binary is optimized"
CUINIT = ("E0000 00:00:1796619295.140884   10156 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          "Failed call to cuInit: UNKNOWN ERROR (303)")
OTHER_ERROR = "E0000 00:00:1796619295.140884   10156 kernel.cc:9] a real failure"
FATAL = "F0000 00:00:1796619295.140884   10156 check.cc:3] Check failed: x"


def test_what_counts_as_noise_follows_tf_cpp_min_log_level():
    for line in (PREINIT, INFO, WARN, CUINIT):
        assert is_noise(line, 2), line
        assert not is_noise(line, 0), line
    assert is_noise(INFO, 1) and not is_noise(WARN, 1) and not is_noise(CUINIT, 1)
    for line in (OTHER_ERROR, FATAL, "Segmentation fault", "Traceback (most recent call last):", ""):
        assert not is_noise(line, 3), line


def test_native_stderr_is_filtered_and_the_rest_kept_in_order():
    """A real file descriptor 2 (a child process), written below Python as TensorFlow's C++ does."""
    lines = [PREINIT, INFO, OTHER_ERROR, WARN, CUINIT, "plain text from a library", FATAL]
    payload = ("\n".join(lines) + "\n").encode()
    code = (
        "import os, sys\n"
        "from realtime.quiet import native_stderr_filtered\n"
        "print('before', file=sys.stderr, flush=True)\n"
        "with native_stderr_filtered(min_level=2):\n"
        f"    os.write(2, {payload!r})\n"
        "print('after', file=sys.stderr, flush=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["before", OTHER_ERROR, "plain text from a library", FATAL, "after"]


@pytest.mark.timeout(180)
def test_demo_starts_without_tensorflow_noise():
    env = helpers.subprocess_env()
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    r = subprocess.run(helpers.gesture_cmd() + ["demo", "--headless", "--seconds", "1"],
                       env=env, capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr[-2000:]
    err = r.stderr.splitlines()
    assert err and err[0].startswith("model: "), r.stderr[-2000:]
    assert not [line for line in err if is_noise(line, 2)], r.stderr[-2000:]
