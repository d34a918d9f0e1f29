#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, make the vLLM environment, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CONVSIM_VLLM_PYTHON=$(bash scripts/vllm-env.sh)
export CONVSIM_VLLM_PYTHON
export CONVSIM_REQUIRE_VLLM=1  # the suite must drive a real vLLM server, never skip it
exec .venv/bin/python -m pytest "$@"
