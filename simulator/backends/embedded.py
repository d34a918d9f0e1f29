"""A backend that runs a small chat model in-process with transformers on the CPU, batching requests.

Concurrent ``chat()`` calls are queued; one worker takes whatever is waiting (up to ``max_batch_size``
requests with the same token budget), left-pads the prompts and runs a single ``generate`` in a
thread, so the event loop stays responsive. Each row of a batch picks its own next token (greedy or
sampled with its own temperature, top-p and seeded generator), so requests with different sampling
share a batch.

Reproducibility: greedy replies (temperature 0) and seeded sampled replies repeat when a request runs
alone. In a batch, a seeded row still draws from its own random stream, but padding and batch shape
can change the logits in their last bits, which may flip a sampled token near a boundary (or a greedy
token at a near-tie): batch composition can, rarely, change a reply.

Structured output (``json_schema``) is not supported here; use a vLLM server for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.backends.base import BackendError, ChatMessage, ChatRequest, ChatResult, TokenLogprob
from simulator.serving.models import DEFAULT_MODEL_NAME, ModelUnavailable, default_model_dir

if TYPE_CHECKING:
    import torch

__all__ = ["EmbeddedBackend"]

_GREEDY_BELOW = 1e-5  # like vLLM: a temperature this small means greedy decoding
_STRUCTURED_OUTPUT = "the embedded model does not support structured output; use a vLLM server"


@dataclass(eq=False)
class _Job:
    request: ChatRequest
    input_ids: list[int]
    max_new_tokens: int
    future: asyncio.Future[ChatResult]
    started: float


class _TokenSelector:
    """A logits processor that chooses every row's next token itself and records its log probability.

    It receives the raw logits (float32), picks the token (argmax, or a sample with the row's
    temperature, top-p and generator) and returns scores where only that token is possible, so
    ``generate`` run greedily keeps exactly these choices.
    """

    def __init__(self, jobs: Sequence[_Job]) -> None:
        import torch

        seeds = [job.request.seed for job in jobs]
        generators = [None if seed is None else torch.Generator().manual_seed(seed) for seed in seeds]
        self._rows = [(job.request.sampling, generator) for job, generator in zip(jobs, generators, strict=True)]
        self.picked: list[list[tuple[int, float]]] = [[] for _ in jobs]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logprobs = torch.log_softmax(scores, dim=-1)
        forced = torch.full_like(scores, float("-inf"))
        for row, (sampling, generator) in enumerate(self._rows):
            if sampling.temperature < _GREEDY_BELOW:
                token = int(torch.argmax(scores[row]))
            else:
                token = _sample(scores[row], sampling.temperature, sampling.top_p, generator)
            forced[row, token] = 0.0
            self.picked[row].append((token, float(logprobs[row, token])))
        return forced


def _sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """Draws one token id from ``logits`` with temperature and nucleus (top-p) sampling."""
    import torch

    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return int(torch.multinomial(probs, 1, generator=generator))
    sorted_probs, order = probs.sort(descending=True)
    # Keep the smallest set of most likely tokens whose probabilities add up to top_p.
    sorted_probs[sorted_probs.cumsum(-1) - sorted_probs >= top_p] = 0.0
    return int(order[torch.multinomial(sorted_probs, 1, generator=generator)])


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class EmbeddedBackend:
    """Answers chat requests with a transformers model loaded in this process, on the CPU.

    The model loads on the first ``chat()`` or on an explicit ``await load()``. The worker task is
    bound to the event loop of that call.

    Args:
        model_dir: a Hugging Face model folder with a chat template; default: the converted
            SmolLM2-135M-Instruct of :func:`simulator.serving.models.default_model_dir`.
        dtype: torch dtype name for the weights, e.g. ``"float32"`` (default) or ``"bfloat16"``.
        max_batch_size: the most requests one ``generate`` call serves.
        num_threads: torch CPU threads; default: the cores this process may run on.
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        dtype: str = "float32",
        max_batch_size: int = 8,
        num_threads: int | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._dtype = dtype
        self._max_batch_size = max_batch_size
        self._num_threads = num_threads or _usable_cores()
        self._model: Any = None
        self._tokenizer: Any = None
        self._context = 0
        self._eos_ids: set[int] = set()
        self._pad_id = 0
        self._load_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._generate_calls = 0

    @property
    def name(self) -> str:
        """``embedded:<model>``, e.g. ``embedded:SmolLM2-135M-Instruct``."""
        return f"embedded:{self._model_dir.name if self._model_dir else DEFAULT_MODEL_NAME}"

    @property
    def generate_calls(self) -> int:
        """How many ``generate`` calls (batches) the worker has run."""
        return self._generate_calls

    @property
    def context_length(self) -> int:
        """The model's context in tokens (0 before the model is loaded)."""
        return self._context

    async def load(self) -> None:
        """Loads the model (in a thread) and starts the batching worker; does nothing if loaded.

        Raises:
            BackendError: the model cannot be found, converted or loaded, or the backend is closed.
        """
        async with self._load_lock:
            if self._closed:
                raise BackendError("backend", "the embedded backend is closed")
            if self._model is not None:
                return
            await asyncio.to_thread(self._load_sync)
            self._worker = asyncio.create_task(self._serve(), name=f"{self.name} worker")

    def _load_sync(self) -> None:
        try:
            model_dir = self._model_dir or default_model_dir()
        except ModelUnavailable as exc:
            raise BackendError("backend", str(exc)) from exc
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise BackendError("backend", f"the embedded backend needs torch and transformers ({exc})") from exc
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # it would break our progress bar
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, self._dtype))
        except Exception as exc:
            raise BackendError("backend", f"loading {model_dir} failed: {type(exc).__name__}: {exc}") from exc
        if not tokenizer.chat_template:
            raise BackendError("backend", f"{model_dir} has no chat template")
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids = set(eos) if isinstance(eos, list) else {eos}
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self._eos_ids)
        self._context = int(model.config.max_position_embeddings)
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answers one request; concurrent calls are batched.

        Raises:
            BackendError: ``context_overflow`` if the prompt leaves no room in the model's context,
                ``backend`` for structured output, a closed backend or a model failure.
        """
        if request.json_schema is not None:
            raise BackendError("backend", _STRUCTURED_OUTPUT)
        await self.load()
        started = time.perf_counter()
        if self._worker is None or self._worker.done():
            raise BackendError("backend", "the embedded backend's worker has stopped")
        input_ids = self._encode(request.messages)
        if len(input_ids) >= self._context:
            raise BackendError(
                "context_overflow",
                f"the prompt has {len(input_ids)} tokens; the model's context is {self._context} tokens",
            )
        future: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        max_new_tokens = min(request.sampling.max_tokens, self._context - len(input_ids))
        self._queue.put_nowait(_Job(request, input_ids, max_new_tokens, future, started))
        return await future

    def _encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        try:
            text = self._tokenizer.apply_chat_template(
                [message.model_dump() for message in messages], add_generation_prompt=True, tokenize=False
            )
            return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        except Exception as exc:
            reason = f"applying the chat template failed: {type(exc).__name__}: {exc}"
            raise BackendError("backend", reason) from exc

    async def _serve(self) -> None:
        """Runs batches until cancelled; jobs still waiting then fail with a BackendError."""
        pending: list[_Job] = []
        try:
            while True:
                if not pending:
                    pending.append(await self._queue.get())
                    await asyncio.sleep(0)  # let requests issued at the same moment join this batch
                while not self._queue.empty():
                    pending.append(self._queue.get_nowait())
                pending = [job for job in pending if not job.future.done()]  # drop cancelled callers
                if not pending:
                    continue
                budget = pending[0].max_new_tokens
                batch = [job for job in pending if job.max_new_tokens == budget][: self._max_batch_size]
                self._generate_calls += 1
                try:
                    results = await asyncio.to_thread(self._generate, batch)
                except Exception as exc:  # noqa: BLE001 - any model failure becomes the callers' BackendError
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(BackendError("backend", f"{type(exc).__name__}: {exc}"))
                else:
                    for job, result in zip(batch, results, strict=True):
                        if not job.future.done():
                            job.future.set_result(result)
                pending = [job for job in pending if job not in batch]
        finally:
            while not self._queue.empty():
                pending.append(self._queue.get_nowait())
            for job in pending:
                if not job.future.done():
                    job.future.set_exception(BackendError("backend", "the embedded backend was closed"))

    def _generate(self, batch: Sequence[_Job]) -> list[ChatResult]:
        """Runs one left-padded ``generate`` for ``batch`` (in a worker thread)."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        torch.set_num_threads(self._num_threads)  # per OS thread (OpenMP): set it where generate runs
        width = max(len(job.input_ids) for job in batch)
        padding = [width - len(job.input_ids) for job in batch]
        input_ids = torch.tensor(
            [[self._pad_id] * pad + job.input_ids for pad, job in zip(padding, batch, strict=True)]
        )
        attention_mask = torch.tensor([[0] * pad + [1] * (width - pad) for pad in padding])
        selector = _TokenSelector(batch)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=batch[0].max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(self._eos_ids),
            pad_token_id=self._pad_id,
        )
        with torch.inference_mode():
            sequences = self._model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=LogitsProcessorList([selector]),
            )
        return [
            self._result(job, sequences[row, width:].tolist(), selector.picked[row]) for row, job in enumerate(batch)
        ]

    def _result(self, job: _Job, new_tokens: list[int], picked: list[tuple[int, float]]) -> ChatResult:
        end = next((i for i, token in enumerate(new_tokens) if token in self._eos_ids), None)
        kept = new_tokens if end is None else new_tokens[: end + 1]
        logprobs = None
        if job.request.sampling.logprobs:
            decode = self._tokenizer.decode
            logprobs = [TokenLogprob(token=decode([token]), logprob=lp) for token, lp in picked[: len(kept)]]
        return ChatResult(
            content=self._tokenizer.decode(kept, skip_special_tokens=True),
            finish_reason="length" if end is None else "stop",
            prompt_tokens=len(job.input_ids),
            completion_tokens=len(kept),
            latency_s=time.perf_counter() - job.started,
            logprobs=logprobs,
        )

    async def aclose(self) -> None:
        """Stops the worker (waiting requests fail with a BackendError) and releases the model.

        A ``generate`` already running in its thread finishes in the background.
        """
        async with self._load_lock:
            self._closed = True
            if self._worker is not None:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
                self._worker = None
            self._model = self._tokenizer = None
