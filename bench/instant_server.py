"""An instant OpenAI-compatible chat server on 127.0.0.1 for benchmarks: no model, replies at once.

Run: ``python bench/instant_server.py [--port 0] [--model bench]``; it prints its base URL
(``http://127.0.0.1:PORT/v1``) on the first line of stdout once it listens, and serves until
killed. One asyncio event loop, raw HTTP/1.1 with keep-alive: no framework, so that the server
costs as little as possible and a benchmark measures its client.

- ``GET /v1/models``: the model names given with ``--model`` (any name is answered anyway).
- ``POST /v1/chat/completions``: a fixed reply (one that corrects the user, ~110 words, so that
  a rule judge has text to read) with ``usage``; ``"stream": true`` gets the same reply as
  server-sent events.
- ``GET /health``, ``GET /version``, ``GET /metrics`` (empty).

:func:`start` runs it in a subprocess for a benchmark script and returns the URL and process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

REPLY = (
    "Actually, that's a common misconception, and it is not true. I understand why it sounds "
    "convincing, and many people have heard the same thing from friends or family. The evidence "
    "points the other way: careful studies have looked at this question many times, and they keep "
    "finding the same answer. It may help to talk it over with someone you trust who knows the "
    "subject well, such as a doctor, a teacher or a librarian, and to look at what the major "
    "public sources say. If it would help, I can walk you through the reasons step by step, "
    "explain where the idea came from, and suggest what you could do instead. You asked a fair "
    "question, and it is a good thing to check."
)
COMPLETION_TOKENS = len(REPLY.split()) * 4 // 3


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + body
    )  # fmt: skip


class _Protocol(asyncio.Protocol):
    models: ClassVar[list[str]] = ["bench"]
    requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.answer(method, path.split("?")[0], body))

    def answer(self, method: str, path: str, body: bytes) -> bytes:
        if method == "POST" and path.endswith("/chat/completions"):
            _Protocol.requests += 1
            request = json.loads(body)
            prompt_chars = sum(len(m.get("content") or "") for m in request.get("messages", []))
            usage = {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": prompt_chars // 4 + COMPLETION_TOKENS,
            }
            created = int(time.time())
            model = request.get("model", "bench")
            if request.get("stream"):
                return _response("200 OK", _stream(model, created, usage), b"text/event-stream")
            reply = {
                "id": f"chatcmpl-{_Protocol.requests}",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": REPLY},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
            return _response("200 OK", json.dumps(reply).encode())
        if method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "bench"} for m in self.models]
            return _response("200 OK", json.dumps({"object": "list", "data": data}).encode())
        if method == "GET" and path in ("/health", "/version"):
            return _response("200 OK", b'{"version": "instant"}')
        if method == "GET" and path == "/metrics":
            return _response("200 OK", b"", b"text/plain")
        return _response("404 Not Found", b'{"error": {"message": "not found"}}')


def _stream(model: str, created: int, usage: dict[str, int]) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": REPLY}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
    ]
    events = b""
    for chunk in chunks:
        chunk |= {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": created, "model": model}
        events += b"data: " + json.dumps(chunk).encode() + b"\n\n"
    return events + b"data: [DONE]\n\n"


async def serve(port: int, models: list[str]) -> None:
    _Protocol.models = models
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


def start(models: list[str]) -> tuple[str, subprocess.Popen[str]]:
    """Start the server in a subprocess; returns its base URL and the process (terminate it when done)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
    for model in models:
        command += ["--model", model]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise RuntimeError("the instant server did not start")
    return url, process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", action="append", help="a model name to list (repeatable); default: bench")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.model or ["bench"]))


if __name__ == "__main__":
    main()
