"""Before a run: every server is asked which models it serves, so that a run that cannot start writes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from simulator.backends.base import BackendError, redact
from simulator.backends.http import HttpBackend, served_models
from simulator.backends.pool import ReplicaPool
from simulator.roles import Roles

__all__ = ["RunError", "check_servers"]


class RunError(Exception):
    """The run cannot start: an unreachable server, or a model it does not serve."""


async def _listing(role: str, backend: HttpBackend) -> dict[str, Any] | BackendError:
    """What a server serves, or why it cannot be reached.

    Raises:
        RunError: the server does not serve the role's model.
    """
    where = redact(backend.base_url)
    try:
        models = await backend.get_json("/models")
    except BackendError as exc:
        return exc
    served = served_models(models)
    if backend.model not in served:
        raise RunError(f"{where} does not serve model {backend.model!r} ({role}); it serves: {', '.join(served)}")
    return {"base_url": where, "model": backend.model, "models": models}


async def check_servers(roles: Roles) -> dict[str, Any]:
    """Ask every HTTP endpoint (each replica) which models it serves; each role's model must be one of them.

    A replica that cannot be reached is ejected from its pool (and probed until it answers),
    unless none of the pool can be reached.

    Raises:
        RunError: a server (every replica of a pool) is unreachable, or does not serve the role's model.
    """
    servers: dict[str, Any] = {}
    for role, backend in roles.endpoints().items():
        replicas: tuple[HttpBackend, ...]
        if isinstance(backend, ReplicaPool):
            replicas = backend.backends
        elif isinstance(backend, HttpBackend):
            replicas = (backend,)
        else:
            servers[role] = {"backend": backend.name}
            continue
        found = await asyncio.gather(*(_listing(role, replica) for replica in replicas))
        down = [
            (replica, error) for replica, error in zip(replicas, found, strict=True) if isinstance(error, BackendError)
        ]
        if len(down) == len(replicas):
            where = ", ".join(f"{redact(replica.base_url)} ({error.reason})" for replica, error in down)
            raise RunError(
                f"cannot reach {role} at {'any replica: ' if len(down) > 1 else ''}{where}; "
                "is the server running? `convsim serve MODEL` starts one"
            )
        if isinstance(backend, ReplicaPool):
            for replica, error in down:
                backend.eject(replica, error)
        listings = [
            {"base_url": redact(replica.base_url), "unreachable": listing.reason}
            if isinstance(listing, BackendError)
            else listing
            for replica, listing in zip(replicas, found, strict=True)
        ]
        servers[role] = listings[0] if len(listings) == 1 else {"model": backend.model, "replicas": listings}
    return servers
