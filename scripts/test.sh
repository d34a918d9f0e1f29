#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, make the vLLM environment, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian's Chromium for the report viewer's browser test (Playwright drives it; no browser download).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q chromium >/dev/null 2>&1 || echo "warning: could not install chromium; the viewer test will skip" >&2
fi
CONVSIM_VLLM_PYTHON=$(bash scripts/vllm-env.sh)
export CONVSIM_VLLM_PYTHON
export CONVSIM_REQUIRE_VLLM=1  # the suite must drive a real vLLM server, never skip it
exec .venv/bin/python -m pytest "$@"
