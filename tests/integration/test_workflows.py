"""Rendered GitHub workflows checked by the tools GitHub users rely on, offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import cli

pytestmark = pytest.mark.integration


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def test_workflows_match_the_github_schema_and_zizmor_finds_nothing(request):
    workflows = sorted((request.config.rootpath / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} == {"ci.yml", "release.yml"}
    schema = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                             *map(str, workflows)], capture_output=True, text=True)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    audit = subprocess.run([_tool("zizmor"), "--offline", "--format", "json", *map(str, workflows)],
                           capture_output=True, text=True)
    assert audit.returncode == 0 and json.loads(audit.stdout) == [], audit.stdout + audit.stderr


def test_release_workflow_is_gated_and_least_privileged(request):
    text = (request.config.rootpath / ".github" / "workflows" / "release.yml").read_text()
    assert "permissions: {}" in text
    assert text.count("id-token: write") == 1
    publish = text[text.index("  publish:"):]
    assert "id-token: write" in publish and "needs: [wheels, gpu-smoke, images]" in publish
    # keyless signing with that id-token, in the publish step alone
    assert text.count("TOOLKIT_SIGNING: keyless") == 1
    signed = publish[publish.index("TOOLKIT_SIGNING: keyless"):]
    assert 'toolkit" publish --yes' in signed[:signed.index("\n      - ")]  # the env of the publish step
    # runners come from the plan's job matrix, not from YAML edited per architecture
    assert "runs-on: ${{ matrix.runner }}" in text and "runs-on: ubuntu-24.04-arm" not in text
    assert all("@" in line and "# v" in line for line in text.splitlines() if "uses:" in line)


def test_github_output_slices_the_plan(capsys):
    assert cli.main(["plan", "--github", "--cuda", "13.0", "--framework", "none"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    wheels = json.loads(lines["wheels"])
    assert {(w["arch"], w["runner"]) for w in wheels} == {("x86_64", "ubuntu-24.04"), ("aarch64", "ubuntu-24.04-arm")}
    assert {i["id"] for i in json.loads(lines["images"])} == {"image:none:cu130:x86_64", "image:none:cu130:aarch64"}
