"""The simulator: backends, simulated users, the conversation engine, the batch runner and the CLI.

Imports ``personas``, ``scenarios`` and ``scoring``'s judge interface; nothing imports it.
"""

from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, ChatResult, Sampling
from simulator.backends.http import HttpBackend
from simulator.config import RunConfig, TargetConfig, load_config
from simulator.engine import run_conversation
from simulator.plan import ConversationSpec, build_plan
from simulator.store import TranscriptStore, read_transcripts
from simulator.user import ScriptedUser

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ConversationSpec",
    "HttpBackend",
    "RunConfig",
    "Sampling",
    "ScriptedUser",
    "TargetConfig",
    "TranscriptStore",
    "build_plan",
    "load_config",
    "read_transcripts",
    "run_conversation",
]
