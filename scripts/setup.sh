#!/usr/bin/env bash
# Installs the project (and, with --test, its test extras and the X server the window tests use).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[test]"
  if ! command -v Xvfb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    # Xvfb: a real X server without a screen, for the overlay window and keystroke tests.
    (apt-get update -qq && apt-get install -y -qq xvfb xdotool x11-utils) >/dev/null 2>&1 \
      || echo "warning: could not install xvfb; window tests will be skipped" >&2
  fi
fi
python -m pip install -q -e ".${extras}"
