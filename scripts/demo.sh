#!/usr/bin/env bash
# The main job on a fresh machine: install, then a small batch on the embedded demo model (no server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/convsim run --sample 4 --turns 3 --out runs/demo "$@"
