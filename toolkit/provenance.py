"""Build provenance: what each wheel and image was built from, as SLSA provenance v1.

A build records its inputs in its manifest record (:func:`inputs`: the source commit, the matrix cell,
the base images' digests, the toolchain pins, the builder image, the build mode and the builder; the
record's build_started_at and built_at say when). Publish turns the record into an in-toto statement
(in-toto-attestation's models, validated) that cosign signs: attached to the image digest, or published
beside the wheel.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

from . import __version__, tools
from .errors import PublishError
from .matrix import Matrix
from .plan import Artifact, ImageArtifact, artifact_json

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
COSIGN_TYPE = "slsaprovenance1"  # cosign's name for PREDICATE_TYPE
BUILD_TYPE = "https://github.com/gpu-toolkit/gpu-toolkit/provenance/build/v1"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What :func:`builder` reads in GitHub Actions (a workflow's sudo steps must keep them).
RUN_IDENTITY = ("GITHUB_ACTIONS", "GITHUB_SERVER_URL", "GITHUB_WORKFLOW_REF", "GITHUB_REPOSITORY", "GITHUB_RUN_ID",
                "GITHUB_RUN_ATTEMPT")


def source(root: Path) -> dict[str, Any]:
    """The commit checked out at ``root``, and whether tracked files differ from it."""
    if tools.which("git") is None:
        return {"commit": "", "dirty": True}
    # One query: porcelain v2's "# branch.oid" header is the commit ("(initial)" before the first one), and
    # every other line a changed tracked file.
    status = tools.run(["git", "--no-optional-locks", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
                       cwd=root, capture=True, quiet=True, check=False)
    lines = status.stdout.splitlines() if status.returncode == 0 else []
    oid = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
    commit = oid if re.fullmatch(r"[0-9a-f]{40,64}", oid) else ""
    return {"commit": commit, "dirty": not commit or any(not line.startswith("#") for line in lines)}


def builder() -> dict[str, str]:
    """Who ran the build: the workflow (and its run) in GitHub Actions, else the toolkit on this host."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_WORKFLOW_REF"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        run = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        return {"id": f"{server}/{env['GITHUB_WORKFLOW_REF']}",
                "invocation": f"{run}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"}
    return {"id": f"https://github.com/gpu-toolkit/gpu-toolkit/local/{socket.gethostname()}", "invocation": ""}


def inputs(m: Matrix, artifact: Artifact, root: Path, *, mode: str, base_images: dict[str, str],
           builder_image: str = "") -> dict[str, Any]:
    """What a build records about its inputs (``base_images``: reference -> bare sha256, where the registry
    told one)."""
    pins = list(artifact.requirements) if isinstance(artifact, ImageArtifact) else []
    digests = {ref: digest for ref, digest in base_images.items() if _SHA256.fullmatch(digest)}
    return {"source": {"repository": m.project.source, **source(root)}, "cell": artifact_json(artifact),
            "mode": mode, "base_images": digests, "builder_image": builder_image,
            "toolchain": list(artifact.build.toolchain_requirements), "requirements": pins,
            "builder": builder()}


def statement(name: str, sha256: str, record: dict[str, Any]) -> dict[str, Any]:
    """The in-toto statement (SLSA provenance v1 predicate) of the artifact ``name`` whose sha256 is
    ``sha256`` (an image's manifest digest, bare), from its manifest record."""
    if "provenance" not in record or not _SHA256.fullmatch(sha256):
        raise PublishError([f"{name}: no provenance can be stated (no recorded build inputs, or no sha256)"])
    p = record["provenance"]
    repository, commit = p["source"]["repository"], p["source"]["commit"]
    prov = provenance_pb2.Provenance()
    definition = prov.build_definition
    definition.build_type = BUILD_TYPE
    definition.external_parameters.update({
        "source": {"repository": repository, "commit": commit, "dirty": p["source"]["dirty"]},
        "cell": p["cell"], "mode": p["mode"]})
    definition.internal_parameters.update({"builderImage": p["builder_image"], "toolchain": p["toolchain"],
                                           "requirements": p["requirements"]})
    dependencies = [ResourceDescriptor(uri=f"git+{repository}@{commit}", digest={"gitCommit": commit})] if commit \
        else []
    dependencies += [ResourceDescriptor(name=ref, uri=f"oci://{ref}", digest={"sha256": digest})
                     for ref, digest in sorted(p["base_images"].items())]
    dependencies += [ResourceDescriptor(name="wheel", digest={"sha256": digest})
                     for digest in filter(None, record.get("wheels", []))]
    definition.resolved_dependencies.extend(d.pb for d in dependencies)
    run = prov.run_details
    run.builder.id = p["builder"]["id"]
    run.builder.version["gpu-toolkit"] = __version__
    run.metadata.invocation_id = p["builder"]["invocation"]
    run.metadata.started_on.FromJsonString(record["build_started_at"])
    run.metadata.finished_on.FromJsonString(record["built_at"])
    made = Statement([ResourceDescriptor(name=name, digest={"sha256": sha256}).pb], PREDICATE_TYPE,
                     json_format.MessageToDict(prov))
    made.validate()
    return json_format.MessageToDict(made.pb)
