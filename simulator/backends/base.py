"""What every backend offers the engine: one chat completion at a time, async."""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ErrorKind",
    "Sampling",
    "TokenLogprob",
    "redact",
]

ErrorKind = Literal[
    "connection",  # the server could not be reached or closed the connection
    "timeout",  # no answer within the per-request timeout
    "http",  # a 4xx/5xx answer that retries did not cure
    "malformed",  # a 200 answer whose body is not a chat completion
    "context_overflow",  # the conversation no longer fits the model's context
    "backend",  # anything else the backend reports (an embedded model's exception)
]

# the user and password of a URL (``http://user:secret@host/v1``), up to the last @ before the path
_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s?#]+@")


def redact(value: Any) -> Any:
    """``value`` with the user and password of every URL in it replaced by ``***``.

    Strings are redacted wherever a URL appears in them; lists, tuples and dicts are redacted
    all through (keys included); anything else is returned as it is.
    """
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1***@", value)
    if isinstance(value, dict):
        return {redact(key): redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


class BackendError(Exception):
    """A request that failed: for good, or (from a single attempt) perhaps not.

    Attributes:
        kind: a short, stable category used as the conversation's error status.
        reason: what happened, for people; never holds an API key, nor the credentials of a URL.
        retryable: another attempt may succeed (a timeout, a lost connection, a 429 or 5xx).
        status: the HTTP status of the answer, if there was one.
        retry_after: the seconds the server asked to wait (``Retry-After``), if it did.
    """

    def __init__(
        self,
        kind: ErrorKind,
        reason: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        reason = redact(reason)
        super().__init__(f"{kind}: {reason}")
        self.kind: ErrorKind = kind
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class ChatMessage(BaseModel):
    """One message of a chat, as the OpenAI API spells it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    """Sampling parameters passed through to the server unchanged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)


class ChatRequest(BaseModel):
    """A chat completion request, independent of where it is sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: tuple[ChatMessage, ...]
    sampling: Sampling = Sampling()
    seed: int | None = None
    json_schema: dict[str, object] | None = None


class TokenLogprob(BaseModel):
    """A generated token and its log probability (compact: no alternatives)."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float


class ChatResult(BaseModel):
    """One assistant reply and what the server said about it."""

    content: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    attempts: int = 1
    logprobs: list[TokenLogprob] | None = None


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat requests: an HTTP server or an in-process model."""

    @property
    def name(self) -> str:
        """A short description for logs and the manifest (no secrets)."""
        ...

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one request.

        Raises:
            BackendError: the request failed for good.
        """
        ...

    async def aclose(self) -> None:
        """Release connections, threads or models."""
        ...
