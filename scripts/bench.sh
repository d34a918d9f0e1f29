#!/usr/bin/env bash
# One benchmark from a fresh clone: install (with the benchmark's contenders), then run it.
#   bash scripts/bench.sh overhead|vllm_throughput|embedded_batching|memory|analysis_scale|judge_agreement [ARGS...]
# ARGS go to the script (for example --target http://gpu:8000/v1 --model NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
names="overhead vllm_throughput embedded_batching memory analysis_scale judge_agreement"
name=${1:-}
if [[ " $names " != *" $name "* ]]; then
  echo "usage: bash scripts/bench.sh NAME [ARGS...]; NAME is one of: $names" >&2
  exit 2
fi
shift
bash scripts/setup.sh
# inspect_ai and the openai client are contenders in bench/overhead.py; pyinstrument profiles convsim.
.venv/bin/pip install -q -e ".[bench]" 2> >(grep -v "^WARNING: Location" >&2)
if [ "$name" = vllm_throughput ] && [ -z "${CONVSIM_VLLM_PYTHON:-}" ]; then
  CONVSIM_VLLM_PYTHON=$(bash scripts/vllm-env.sh)
  export CONVSIM_VLLM_PYTHON
fi
exec .venv/bin/python "bench/$name.py" "$@"
