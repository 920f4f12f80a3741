"""Credentials for the engine's registry and index.

Taken from the environment when set, otherwise generated once into a 0600 file
in the state directory. Every value is registered with :mod:`toolkit.tools` so
that it is masked in anything the toolkit prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import console, settings


@dataclasses.dataclass(frozen=True)
class Credential:
    """A user name and password for one service."""

    username: str
    password: str = dataclasses.field(repr=False)


def _file(state: Path) -> Path:
    return state / "credentials.json"


def load(state: Path, service: str) -> Credential:
    """The credential for ``service`` ("registry" or "index"), creating it at first use."""
    envs = {"registry": (settings.REGISTRY_USER_ENV, settings.REGISTRY_PASSWORD_ENV),
            "index": (settings.INDEX_USER_ENV, settings.INDEX_PASSWORD_ENV)}[service]
    from_env = settings.env_credentials(*envs)
    if from_env:
        cred = Credential(*from_env)
    else:
        stored = stored_secret(state, service, lambda: {"username": "toolkit", "password": secrets.token_urlsafe(24)})
        cred = Credential(stored["username"], stored["password"])
    console.register_secret(cred.password)
    return cred


def stored_secret(state: Path, name: str, make: Callable[[], Any]) -> Any:
    """The secret kept under ``name`` in the state's 0600 credentials file, made by ``make`` at first use."""
    stored = _read(state)
    if name not in stored:
        stored[name] = make()
        _write(state, stored)
    return stored[name]


def _read(state: Path) -> dict:
    try:
        return json.loads(_file(state).read_text())
    except FileNotFoundError:
        return {}


def _write(state: Path, data: dict) -> None:
    state.mkdir(parents=True, exist_ok=True)
    write_private(_file(state), json.dumps(data).encode())


def write_private(path: Path, data: bytes) -> None:
    """Write a file that holds a secret: 0600 from its creation, never a moment where others can read it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT
