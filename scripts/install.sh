#!/usr/bin/env bash
# Install everything robosteer needs on a fresh Debian/Python 3.11 machine:
# uv, the locked .venv (uv.lock), Chromium for the UI browser test, and a
# separate venv with the stock openpi-client (it pins numpy<2) for the
# server interop test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet "uv==0.13.8"
fi
uv sync --frozen --extra test

# Chromium (headless screenshots of the Dagster UI in tests/defs/test_ui_browser.py).
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: chromium could not be installed; the browser test will be skipped" >&2
  fi
fi

# openpi-client 0.1.2 from PyPI in its own venv (numpy<2), driven against our server in tests.
if [ ! -x .venv-openpi-client/bin/python ]; then
  uv venv --quiet --python 3.11 .venv-openpi-client
  uv pip install --quiet --python .venv-openpi-client/bin/python "openpi-client==0.1.2" "typing-extensions>=4.12" \
    || { echo "install.sh: openpi-client venv failed; interop test will be skipped" >&2; rm -rf .venv-openpi-client; }
fi
echo "install.sh: done"
