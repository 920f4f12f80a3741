"""Every environment variable the toolkit reads, in one place.

Order of precedence everywhere: built-in defaults < matrix.toml < environment < flags.
"""

from __future__ import annotations

import os
from pathlib import Path

MATRIX_ENV = "TOOLKIT_MATRIX"
STATE_ENV = "TOOLKIT_STATE_DIR"
# Credentials for the engine's registry and index; generated into the state
# directory at first start unless these are set.
REGISTRY_USER_ENV, REGISTRY_PASSWORD_ENV = "TOOLKIT_REGISTRY_USERNAME", "TOOLKIT_REGISTRY_PASSWORD"
INDEX_USER_ENV, INDEX_PASSWORD_ENV = "TWINE_USERNAME", "TWINE_PASSWORD"
# The password of the release signing key (generated into the state directory unless set).
SIGNING_PASSWORD_ENV = "TOOLKIT_SIGNING_PASSWORD"
# How releases are signed: "key" (that key pair, the default) or "keyless" (a CI job's OIDC identity).
SIGNING_ENV = "TOOLKIT_SIGNING"
# Where the compiler cache keeps its directories (default: sccache/ in the state directory); a CI job can
# restore and save it between runs.
COMPILER_CACHE_ENV = "TOOLKIT_COMPILER_CACHE"
# Where a CA bundle for an intercepting proxy is found, in the order pip and requests look.
CA_ENVS = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def matrix_path(flag: str | None) -> Path:
    """--matrix, else $TOOLKIT_MATRIX, else ./matrix.toml."""
    return Path(flag or os.environ.get(MATRIX_ENV) or "matrix.toml")


def state_dir() -> Path:
    """Where the engine keeps pids, logs, configs, credentials and caches."""
    default = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "gpu-toolkit"
    return Path(os.environ.get(STATE_ENV) or default).absolute()  # services run elsewhere than the caller


def compiler_cache_dir() -> Path:
    """$TOOLKIT_COMPILER_CACHE, else the state directory's sccache/."""
    return Path(os.environ.get(COMPILER_CACHE_ENV) or state_dir() / "sccache").absolute()


def ca_bundle() -> Path | None:
    """The host CA bundle to hand to builds (never baked into a layer), if any."""
    for name in CA_ENVS:
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return Path(os.environ[name])
    return SYSTEM_CA if SYSTEM_CA.is_file() else None


def ca_mount() -> Path:
    """The CA bundle mounted into build containers (the host's, else certifi's)."""
    found = ca_bundle()
    if found:
        return found
    import certifi  # a dependency of requests, which the docker SDK uses

    return Path(certifi.where())


def env_credentials(user_env: str, password_env: str) -> tuple[str, str] | None:
    """(user, password) from the environment when both are set."""
    user, password = os.environ.get(user_env), os.environ.get(password_env)
    return (user, password) if user and password else None


def docker_host() -> str | None:
    """A user-configured Docker endpoint; the toolkit then starts no daemon of its own."""
    return os.environ.get("DOCKER_HOST")
