"""Signing modes: the local key (password only in the environment) or keyless in a GitHub Actions job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit import settings, signing, tools
from toolkit.engine import daemon
from toolkit.errors import ConfigError


@pytest.fixture
def cosign_calls(monkeypatch, tmp_path):
    """The cosign command lines and environments signing asks for (nothing runs)."""
    calls = []
    monkeypatch.setattr(daemon, "cosign", lambda state: Path("/cosign"))
    monkeypatch.setattr(tools, "run", lambda argv, **kw: calls.append(([str(a) for a in argv], kw.get("env"))))
    (tmp_path / "signing").mkdir()
    (tmp_path / "signing" / "cosign.key").write_text("encrypted")
    monkeypatch.setenv(settings.SIGNING_PASSWORD_ENV, "pw-s3cret")
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    return calls


def test_key_signing_passes_the_password_through_the_environment_only(cosign_calls, tmp_path, monkeypatch):
    monkeypatch.delenv(settings.SIGNING_ENV, raising=False)
    signing.sign_blob(tmp_path, tmp_path / "SHA256SUMS")
    signing.attest_image(tmp_path, "r/none@sha256:" + "a" * 64, "slsaprovenance1", {"x": 1})
    (blob, blob_env), (attest, attest_env) = cosign_calls
    assert blob[:4] == ["/cosign", "sign-blob", "--key", str(tmp_path / "signing" / "cosign.key")]
    assert "--tlog-upload=false" in blob and "--output-certificate" not in blob
    assert attest[1] == "attest" and "--replace" in attest and attest[-1].startswith("r/none@sha256:")
    assert blob_env == attest_env == {"COSIGN_PASSWORD": "pw-s3cret"}
    assert not any("pw-s3cret" in a for a in blob + attest)


def test_keyless_signing_needs_the_jobs_oidc_token_and_uses_no_key(cosign_calls, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.SIGNING_ENV, "keyless")
    with pytest.raises(ConfigError, match="id-token: write"):
        signing.sign_image(tmp_path, "r/none:1.0-cu130")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token.example/")
    signing.sign_blob(tmp_path, tmp_path / "SHA256SUMS")
    ((argv, env),) = cosign_calls
    assert "--key" not in argv and "--tlog-upload=false" not in argv and env == {}
    assert argv[argv.index("--output-certificate") + 1] == str(tmp_path / "SHA256SUMS.sig.pem")


def test_an_unknown_signing_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(settings.SIGNING_ENV, "gpg")
    with pytest.raises(ConfigError, match=r"\$TOOLKIT_SIGNING='gpg': allowed values: key, keyless"):
        signing.mode()


def test_keyless_verification_accepts_only_the_release_workflow_of_the_repository():
    trust = signing.Trust(identity=signing.workflow_identity("https://github.com/acme/kernels"))
    options = trust.options()
    assert options[options.index("--certificate-oidc-issuer") + 1] == signing.GITHUB_ISSUER
    identity = re.compile(options[options.index("--certificate-identity-regexp") + 1])
    assert identity.match("https://github.com/acme/kernels/.github/workflows/release.yml@refs/tags/v1.0")
    assert not identity.match("https://github.com/acme/kernels/.github/workflows/ci.yml@refs/heads/main")
    assert not identity.match("https://github.com/acme/kernels-fork/.github/workflows/release.yml@refs/tags/v1")
    assert signing.Trust(key=Path("k.pub")).options() == ["--key", "k.pub", "--insecure-ignore-tlog=true"]
