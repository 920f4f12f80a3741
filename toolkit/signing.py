"""Signatures and attestations with cosign: image digests, release files and wheels.

Two ways to sign ($TOOLKIT_SIGNING). ``key`` (the default): a key pair made once in the state directory,
its private half encrypted with a password taken from $TOOLKIT_SIGNING_PASSWORD, else generated into the
0600 credentials file; the password reaches cosign through its environment (COSIGN_PASSWORD), never argv
or a log. Nothing goes to a transparency log (none is reachable here): verification is against the public
key, published with the release metadata. ``keyless`` (the rendered release workflow's publish job): the
workflow's OIDC identity gets a short-lived Fulcio certificate and every signature is logged in Rekor;
verification checks that the certificate names the repository's release workflow.

Blob signatures are files beside the blob (``.sig``, attestations as DSSE envelopes), and in keyless mode
their certificate (``.pem``); image signatures and attestations are stored in the registry by cosign.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import console, settings, tools
from .engine import credentials, daemon
from .errors import CommandError, ConfigError, PublishError

KEY, KEYLESS = "key", "keyless"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@dataclasses.dataclass(frozen=True)
class Trust:
    """What a verification accepts: the public ``key``, else certificates of ``identity`` (a regexp) from
    GitHub Actions' OIDC issuer, logged in Rekor."""

    key: Path | None = None
    identity: str = ""

    def options(self) -> list[str]:
        """cosign's verification options."""
        if self.key:
            return ["--key", str(self.key), "--insecure-ignore-tlog=true"]
        return ["--certificate-identity-regexp", self.identity, "--certificate-oidc-issuer", GITHUB_ISSUER]


def mode() -> str:
    """``key`` or ``keyless``, from $TOOLKIT_SIGNING."""
    chosen = os.environ.get(settings.SIGNING_ENV) or KEY
    if chosen not in (KEY, KEYLESS):
        raise ConfigError([f"${settings.SIGNING_ENV}={chosen!r}: allowed values: {KEY}, {KEYLESS}"])
    if chosen == KEYLESS and not os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        raise ConfigError([f"${settings.SIGNING_ENV}=keyless needs the OIDC token of a GitHub Actions job "
                           "with `permissions: id-token: write` (none here); sign with the key instead"])
    return chosen


def workflow_identity(source: str) -> str:
    """The certificate identity of the release workflow of the repository ``source`` (a GitHub URL)."""
    return f"^{re.escape(source.rstrip('/'))}/\\.github/workflows/release\\.yml@"


def _password(state: Path) -> str:
    password = os.environ.get(settings.SIGNING_PASSWORD_ENV) or credentials.stored_secret(
        state, "signing", lambda: secrets.token_urlsafe(24))
    console.register_secret(password)
    return password


def public_key(state: Path) -> Path:
    """The public key (the pair is generated at first use)."""
    folder = state / "signing"
    if not (folder / "cosign.key").exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tools.run([daemon.cosign(state), "generate-key-pair", "--output-key-prefix", folder / "cosign"],
                  env={"COSIGN_PASSWORD": _password(state)}, capture=True)
    return folder / "cosign.pub"


def _cosign_sign(state: Path, args: list[str], *, certificate: Path | None = None) -> None:
    """``cosign ARGS`` with the signing options of the mode (the key's password in the environment only)."""
    if mode() == KEYLESS:
        options, env = ["--yes", *(["--output-certificate", str(certificate)] if certificate else [])], {}
    else:
        public_key(state)
        options, env = ["--key", str(state / "signing" / "cosign.key"), "--tlog-upload=false", "--yes"], {
            "COSIGN_PASSWORD": _password(state)}
    tools.run([daemon.cosign(state), *args[:1], *options, *args[1:]], env=env, capture=True)


def certificate(path: Path) -> Path:
    """Where the keyless certificate of a blob signature ``path`` is kept."""
    return path.with_name(path.name + ".pem")


def sign_image(state: Path, ref: str) -> None:
    """Sign the digest that ``ref`` names now; the signature is pushed beside it in the registry."""
    _cosign_sign(state, ["sign", ref])


def sign_blob(state: Path, path: Path) -> Path:
    """``path``.sig beside ``path`` (and its certificate, keyless)."""
    signature = path.with_name(path.name + ".sig")
    _cosign_sign(state, ["sign-blob", "--output-signature", str(signature), str(path)],
                 certificate=certificate(signature))
    return signature


@contextlib.contextmanager
def _predicate_file(predicate: dict) -> Iterator[Path]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="predicate-") as file:
        json.dump(predicate, file)
        file.flush()
        yield Path(file.name)


def attest_image(state: Path, ref: str, predicate_type: str, predicate: dict) -> None:
    """Attach a signed in-toto attestation of ``predicate`` to the digest ``ref`` names (replacing an earlier
    one of the same type)."""
    with _predicate_file(predicate) as file:
        _cosign_sign(state, ["attest", "--type", predicate_type, "--predicate", str(file), "--replace", ref])


def attest_blob(state: Path, path: Path, predicate_type: str, predicate: dict, out: Path) -> Path:
    """``out``: a signed in-toto attestation (DSSE envelope) of ``predicate`` about the file ``path``."""
    with _predicate_file(predicate) as file:
        _cosign_sign(state, ["attest-blob", "--type", predicate_type, "--predicate", str(file),
                             "--output-signature", str(out), str(path)], certificate=certificate(out))
    return out


def _failure(exc: CommandError) -> str:
    return str(exc).splitlines()[-1][-160:]


def _certificate_option(trust: Trust, path: Path) -> list[str]:
    return [] if trust.key else ["--certificate", str(certificate(path))]


def verify_image(state: Path, ref: str, trust: Trust) -> str:
    """Why the image ``ref`` names now is not signed as ``trust`` accepts ("" when it is)."""
    try:
        tools.run([daemon.cosign(state), "verify", *trust.options(), ref], capture=True, quiet=True)
    except CommandError as exc:
        return f"{ref}: no valid signature for its digest ({_failure(exc)})"
    return ""


def verify_blob(state: Path, path: Path, signature: Path, trust: Trust) -> str:
    """Why ``signature`` is not a signature of ``path`` that ``trust`` accepts ("" when it is)."""
    try:
        tools.run([daemon.cosign(state), "verify-blob", *trust.options(), *_certificate_option(trust, signature),
                   "--signature", signature, path], capture=True, quiet=True)
    except CommandError as exc:
        return f"{path.name}: its signature does not verify ({_failure(exc)})"
    return ""


def _statements(envelopes: str) -> list[dict]:
    """The in-toto statements inside verified DSSE envelopes (one JSON object per line)."""
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in envelopes.splitlines()
            if line.strip().startswith("{")]


def verify_image_attestation(state: Path, ref: str, predicate_type: str, trust: Trust) -> dict:
    """The statement of the ``predicate_type`` attestation that ``trust`` accepts for the digest ``ref``
    names; PublishError when there is none."""
    try:
        proc = tools.run([daemon.cosign(state), "verify-attestation", *trust.options(), "--type", predicate_type,
                          ref], capture=True, quiet=True)
    except CommandError as exc:
        raise PublishError([f"{ref}: no valid {predicate_type} attestation ({_failure(exc)})"]) from None
    statements = _statements(proc.stdout)
    if not statements:
        raise PublishError([f"{ref}: cosign verified no {predicate_type} attestation"])
    return statements[-1]


def verify_blob_attestation(state: Path, path: Path, envelope: Path, predicate_type: str, trust: Trust) -> dict:
    """The statement in ``envelope`` when it is a valid ``predicate_type`` attestation of ``path`` that
    ``trust`` accepts; PublishError otherwise."""
    try:
        tools.run([daemon.cosign(state), "verify-blob-attestation", *trust.options(),
                   *_certificate_option(trust, envelope), "--type", predicate_type, "--signature", envelope, path],
                  capture=True, quiet=True)
    except CommandError as exc:
        raise PublishError([f"{path.name}: {envelope.name} is no valid {predicate_type} attestation of it "
                            f"({_failure(exc)})"]) from None
    return _statements(envelope.read_text())[0]
