"""The simulator: backends, simulated users, the conversation engine, the batch, the Python API and the CLI.

The API in brief: :func:`run` (or ``await`` :func:`arun`) takes a :class:`RunConfig` and returns a
:class:`RunResult` whose ``frames()`` the analysis reads; :func:`prepare` and :func:`execute` are
its two halves, and :func:`run_conversation` holds one conversation with a :class:`User`.

Imports ``personas`` and ``scenarios``, and from ``scoring`` the judges (rule, learned, LLM,
cascade), the structured-answer chat that the LLM judge and the model-driven user share, the run
totals, and, in the CLI only, the analysis, agreement and judge-training modules. Nothing imports it.
"""

from simulator.api import RunResult, arun, run
from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, ChatResult, Sampling
from simulator.backends.http import HttpBackend
from simulator.config import RunConfig, TargetConfig, load_config
from simulator.engine import run_conversation
from simulator.plan import ConversationSpec, build_plan
from simulator.prepared import PreparedRun, execute, prepare
from simulator.store import TranscriptStore, read_transcripts
from simulator.users import ModelUser, ScriptedUser, User, UserMove, user_for

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ConversationSpec",
    "HttpBackend",
    "ModelUser",
    "PreparedRun",
    "RunConfig",
    "RunResult",
    "Sampling",
    "ScriptedUser",
    "TargetConfig",
    "TranscriptStore",
    "User",
    "UserMove",
    "arun",
    "build_plan",
    "execute",
    "load_config",
    "prepare",
    "read_transcripts",
    "run",
    "run_conversation",
    "user_for",
]
