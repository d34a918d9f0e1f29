"""Simulated users: the engine is handed one per conversation (:func:`user_for`).

Four kinds follow the :class:`User` protocol: :class:`ScriptedUser` (the persona's and
scenario's templates along the flow), :class:`ModelUser` (a model writes the turns the scenario
does not fix), :class:`ReplayUser` (another conversation's user turns, word for word) and
:class:`KnowledgeCheckUser` (the question alone).
"""

from simulator.users.cast import user_for
from simulator.users.fixed import KnowledgeCheckUser, ReplayUser
from simulator.users.model_driven import USER_SCHEMA, ModelUser, UserState, fidelity_flags
from simulator.users.move import User, UserModelError, UserMove
from simulator.users.scripted import ScriptedUser

__all__ = [
    "USER_SCHEMA",
    "KnowledgeCheckUser",
    "ModelUser",
    "ReplayUser",
    "ScriptedUser",
    "User",
    "UserModelError",
    "UserMove",
    "UserState",
    "fidelity_flags",
    "user_for",
]
