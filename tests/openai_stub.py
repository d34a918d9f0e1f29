"""A small OpenAI-compatible chat server on 127.0.0.1 for tests: scripted replies, injected faults.

The reply depends on the requested model name, so one server plays several targets:

- ``corrector``: always corrects the user's belief.
- ``caver``: corrects in its first reply, then agrees with the user.
- ``evader``: comforts and never addresses the belief.
- ``hedger``: says it depends.
- ``affirmer``: agrees at once.
- ``padder``: corrects, with whitespace around its reply.
- ``gullible-judge``: a judge that obeys any "output corrects" it reads anywhere in its prompt,
  and otherwise answers ``affirms``, as JSON.
- ``garbage-judge``: answers text that is not JSON.
- ``actor`` and ``leaky-actor``: user models; the leaky one breaks character and drops its belief.

Faults are set on the :class:`Faults` object of a running server, and apply to chat requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLIES = {
    "corrects": "Actually, that's a common misconception, and it is not true. The evidence says otherwise.",
    "affirms": "You're right, that's correct. It is a good idea to go with what you said.",
    "evades": "I'm so sorry you're going through this. Please take care of yourself today.",
    "hedges": "It depends. Some people find that, and the evidence is mixed.",
    "padded": "\n  Actually, that is a common misconception: it is not true.  \n\n",
}
SCRIPTS = {
    "corrector": lambda turn: "corrects",
    "caver": lambda turn: "corrects" if turn == 0 else "affirms",
    "evader": lambda turn: "evades",
    "hedger": lambda turn: "hedges",
    "affirmer": lambda turn: "affirms",
    "padder": lambda turn: "padded",
}


def _gullible(messages: list[dict[str, str]]) -> str:
    obeys = any("output corrects" in m["content"].lower() for m in messages)
    label = "corrects" if obeys else "affirms"
    return json.dumps({"label": label, "evidence": "", "confidence": 0.9})


def _actor(message: str, holds: bool) -> Callable[[list[dict[str, str]]], str]:
    answer = json.dumps({"message": message, "holds_belief": holds, "affect": "sad", "wants_to_stop": False})
    return lambda messages: answer


JUDGES = {
    "gullible-judge": _gullible,
    "garbage-judge": lambda messages: "I think it corrects.",
    "actor": _actor("I still think you're wrong. My cousin swears by it.", True),
    "leaky-actor": _actor("As an AI language model, I see that you are right.", False),
}


@dataclass
class Faults:
    """Faults to inject, each at a rate in [0, 1]; a request meets at most one.

    Which fault a request meets is decided from the request alone: its body, how many times the
    same body came before, and ``seed``. The same requests meet the same faults whatever their
    order or timing, and a retry (the same body again) draws anew.
    """

    error_rate: float = 0.0  # answer 500
    rate_limit_rate: float = 0.0  # answer 429 with Retry-After
    retry_after: str = "0"
    malformed_rate: float = 0.0  # answer 200 with a body that is not a chat completion
    close_rate: float = 0.0  # close the connection without answering
    delay_s: float = 0.0  # wait before answering
    stall_rate: float = 0.0  # answer only after ``stall_s``, or once ``release`` is set or the server stops
    stall_s: float = 5.0
    max_prompt_chars: int | None = None  # answer 400 "maximum context length" past this
    down_after: int | None = None  # after this many chat requests, close every connection unanswered, as if dead
    seed: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def decide(self, key: str) -> str | None:
        """The fault (``close``, ``error``, ``rate_limit``, ``malformed``, ``stall``) of the request ``key`` names."""
        draw = random.Random(f"{self.seed}:{key}").random()
        rates = {"close": self.close_rate, "error": self.error_rate, "rate_limit": self.rate_limit_rate,
                 "malformed": self.malformed_rate, "stall": self.stall_rate}  # fmt: skip
        for fault, rate in rates.items():
            if draw < rate:
                return fault
            draw -= rate
        return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients killed mid-request (the kill tests) are expected


class StubServer:
    """Runs the stub in a background thread; ``base_url`` ends in ``/v1``.

    ``port`` 0 picks a free port; give the port of a stopped stub to restart it at the same
    address. Leaving the ``with`` block closes every open connection too, as a server process
    that dies would.
    """

    def __init__(self, faults: Faults | None = None, port: int = 0) -> None:
        self.faults = faults or Faults()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0  # chat requests being answered now, and the most there ever were
        self.peak_in_flight = 0
        self.outcomes: list[tuple[str, str | None]] = []  # each chat request's body hash and fault, in order
        self._seen: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server = _QuietServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def down(self) -> bool:
        """Whether the stub acts as a dead server (``Faults.down_after`` chat requests were answered)."""
        return self.faults.down_after is not None and len(self.requests) >= self.faults.down_after

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with stub._lock:
                    stub._connections.add(self.connection)

            def finish(self) -> None:
                with stub._lock:
                    stub._connections.discard(self.connection)
                with contextlib.suppress(OSError):  # the stub was stopped under this connection
                    super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _hang_up(self) -> None:
                self.close_connection = True
                self.connection.close()

            def do_GET(self) -> None:
                if stub.down:
                    return self._hang_up()
                if self.path == "/v1/models":
                    models = [*SCRIPTS, *JUDGES]
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
                elif self.path in ("/health", "/version"):
                    self._send(200, {"version": "stub"})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                with stub._lock:
                    stub.in_flight += 1
                    stub.peak_in_flight = max(stub.peak_in_flight, stub.in_flight)
                try:
                    self._answer_chat()
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            def _answer_chat(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                digest = hashlib.sha256(raw).hexdigest()[:16]
                with stub._lock:
                    if stub.down:
                        return self._hang_up()
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    faults = stub.faults
                    fault = faults.decide(f"{digest}:{stub._seen[digest]}")
                    stub._seen[digest] += 1
                    stub.outcomes.append((digest, fault))
                if faults.delay_s:
                    time.sleep(faults.delay_s)
                if fault == "stall":
                    deadline = time.monotonic() + faults.stall_s
                    while time.monotonic() < deadline and not faults.release.wait(0.02) and not stub._stopping.is_set():
                        pass
                if fault == "close":
                    return self._hang_up()
                if fault == "error":
                    return self._send(500, {"error": {"message": "injected failure"}})
                if fault == "rate_limit":
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": faults.retry_after})
                if fault == "malformed":
                    return self._send(200, b'{"choices": [')
                messages = body["messages"]
                chars = sum(len(m["content"]) for m in messages)
                if faults.max_prompt_chars is not None and chars > faults.max_prompt_chars:
                    message = f"This model's maximum context length is 64 tokens. However, you requested {chars}."
                    return self._send(400, {"error": {"message": message, "type": "BadRequestError"}})
                if body["model"] in JUDGES:
                    content = JUDGES[body["model"]](messages)
                    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    usage = {"prompt_tokens": chars // 4, "completion_tokens": len(content.split())}
                    return self._send(200, {"choices": [choice], "usage": usage})
                script = SCRIPTS.get(body["model"])
                if script is None:
                    return self._send(404, {"error": {"message": f"model {body['model']} does not exist"}})
                turn = sum(1 for m in messages if m["role"] == "assistant")
                content = REPLIES[script(turn)]
                tokens = content.split()
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
                if body.get("logprobs"):
                    choice["logprobs"] = {"content": [{"token": t, "logprob": -0.5} for t in tokens]}
                usage = {"prompt_tokens": chars // 4, "completion_tokens": len(tokens)}
                self._send(200, {"id": "stub", "object": "chat.completion", "choices": [choice], "usage": usage})

        return Handler
