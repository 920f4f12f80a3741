"""Signatures with cosign: every published image tag's digest and each release's SHA256SUMS.

The key pair is made once in the state directory; its private half is encrypted with a password taken
from $TOOLKIT_SIGNING_PASSWORD, else generated into the 0600 credentials file. The password reaches
cosign through its environment (COSIGN_PASSWORD), never through argv or a log. Nothing is uploaded to a
transparency log (none is reachable here): verification is against the public key, which is published
with the release metadata and kept in ``<state>/signing/cosign.pub``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from . import settings, tools
from .engine import credentials, daemon
from .errors import CommandError

_NO_TLOG = ["--tlog-upload=false"]
_IGNORE_TLOG = ["--insecure-ignore-tlog=true"]


def _password(state: Path) -> str:
    password = os.environ.get(settings.SIGNING_PASSWORD_ENV) or credentials.stored_secret(
        state, "signing", lambda: secrets.token_urlsafe(24))
    tools.register_secret(password)
    return password


def public_key(state: Path) -> Path:
    """The public key (the pair is generated at first use)."""
    folder = state / "signing"
    if not (folder / "cosign.key").exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tools.run([daemon.cosign(state), "generate-key-pair", "--output-key-prefix", folder / "cosign"],
                  env={"COSIGN_PASSWORD": _password(state)}, capture=True)
    return folder / "cosign.pub"


def sign_image(state: Path, ref: str) -> None:
    """Sign the digest that ``ref`` names now; the signature is pushed beside it in the registry."""
    public_key(state)
    tools.run([daemon.cosign(state), "sign", "--key", state / "signing" / "cosign.key", *_NO_TLOG, "--yes", ref],
              env={"COSIGN_PASSWORD": _password(state)}, capture=True)


def sign_blob(state: Path, path: Path) -> Path:
    """``path``.sig beside ``path``."""
    public_key(state)
    signature = path.with_name(path.name + ".sig")
    tools.run([daemon.cosign(state), "sign-blob", "--key", state / "signing" / "cosign.key", *_NO_TLOG, "--yes",
               "--output-signature", signature, path], env={"COSIGN_PASSWORD": _password(state)}, capture=True)
    return signature


def verify_image(state: Path, ref: str, key: Path) -> str:
    """Why the image ``ref`` names now is not signed by ``key`` ("" when it is)."""
    try:
        tools.run([daemon.cosign(state), "verify", "--key", key, *_IGNORE_TLOG, ref], capture=True, quiet=True)
    except CommandError as exc:
        return f"{ref}: no valid signature for its digest ({str(exc).splitlines()[-1][-160:]})"
    return ""


def verify_blob(state: Path, path: Path, signature: Path, key: Path) -> str:
    """Why ``signature`` is not ``key``'s signature of ``path`` ("" when it is)."""
    try:
        tools.run([daemon.cosign(state), "verify-blob", "--key", key, "--signature", signature, *_IGNORE_TLOG, path],
                  capture=True, quiet=True)
    except CommandError as exc:
        return f"{path.name}: its signature does not verify ({str(exc).splitlines()[-1][-160:]})"
    return ""
