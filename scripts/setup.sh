#!/usr/bin/env bash
# Installs the project (and, with --test, its test extras and the programs the tests drive: Xvfb, xdotool, ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[test]"
  # Xvfb: a real X server without a screen, for the overlay window and keystroke tests; xdotool: real
  # key presses; ffmpeg: writes the variable-frame-rate video (as phones record) a capture test reads.
  need=""
  command -v Xvfb >/dev/null 2>&1 || need="$need xvfb x11-utils"
  command -v xdotool >/dev/null 2>&1 || need="$need xdotool"
  command -v ffmpeg >/dev/null 2>&1 || need="$need ffmpeg"
  if [ -n "$need" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq $need) >/dev/null 2>&1 \
      || echo "warning: could not install$need; the tests that need them will be skipped" >&2
  fi
fi
python -m pip install -q -e ".${extras}"
