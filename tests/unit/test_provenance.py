"""Provenance: an in-toto statement with an SLSA provenance v1 predicate from a build's manifest record."""

from __future__ import annotations

import pytest

from toolkit import provenance
from toolkit.errors import PublishError
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

COMMIT = "9db630f" + "0" * 33
BASE = "127.0.0.1:5000/mirror/debian:bookworm-slim"


@pytest.fixture
def image_record(request, monkeypatch):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    image = make_plan(m, Selection(cuda=("13.0",), framework=("none",), arch=("aarch64",))).images[0]
    monkeypatch.setattr(provenance, "source", lambda root: {"commit": COMMIT, "dirty": False})
    for name in ("GITHUB_ACTIONS", "GITHUB_WORKFLOW_REF"):
        monkeypatch.delenv(name, raising=False)
    inputs = provenance.inputs(m, image, request.config.rootpath, mode="emulated", base_images={BASE: "ab" * 32})
    return {"kind": "image", "digest": "sha256:" + "cd" * 32, "wheels": ["ef" * 32, None],
            "build_started_at": "2026-11-30T23:00:00+00:00", "built_at": "2026-11-30T23:04:05+00:00",
            "provenance": inputs}


def test_the_statement_names_the_subject_commit_base_images_cell_and_times(image_record):
    statement = provenance.statement("127.0.0.1:5000/gpu-toolkit/none", "cd" * 32, image_record)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == provenance.PREDICATE_TYPE
    assert statement["subject"] == [{"name": "127.0.0.1:5000/gpu-toolkit/none", "digest": {"sha256": "cd" * 32}}]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source"]["commit"] == COMMIT
    assert definition["externalParameters"]["mode"] == "emulated"
    assert definition["externalParameters"]["cell"]["id"] == "image:none:cu130:aarch64"
    assert definition["internalParameters"]["toolchain"][0] == "nvidia-cuda-nvcc==13.0.*"
    assert definition["resolvedDependencies"] == [
        {"uri": f"git+https://github.com/gpu-toolkit/gpu-toolkit@{COMMIT}", "digest": {"gitCommit": COMMIT}},
        {"name": BASE, "uri": f"oci://{BASE}", "digest": {"sha256": "ab" * 32}},
        {"name": "wheel", "digest": {"sha256": "ef" * 32}},  # an unrecorded wheel (None) is left out
    ]
    run = statement["predicate"]["runDetails"]
    assert run["metadata"] == {"startedOn": "2026-11-30T23:00:00Z", "finishedOn": "2026-11-30T23:04:05Z"}
    assert run["builder"]["id"].startswith("https://github.com/gpu-toolkit/gpu-toolkit/local/")


def test_in_github_actions_the_builder_is_the_workflow_and_its_run(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKFLOW_REF", "acme/kernels/.github/workflows/release.yml@refs/tags/v1.2.0")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/kernels")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    assert provenance.builder() == {
        "id": "https://github.com/acme/kernels/.github/workflows/release.yml@refs/tags/v1.2.0",
        "invocation": "https://github.com/acme/kernels/actions/runs/42/attempts/2"}


def test_no_statement_without_a_digest_or_recorded_inputs(image_record):
    with pytest.raises(PublishError, match="no provenance can be stated"):
        provenance.statement("none", "", image_record)
    with pytest.raises(PublishError, match="no provenance can be stated"):
        provenance.statement("none", "cd" * 32, {k: v for k, v in image_record.items() if k != "provenance"})
