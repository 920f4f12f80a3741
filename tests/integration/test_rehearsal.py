"""`toolkit rehearse`: the rendered release workflow run job by job on this machine, as GitHub would run it.

Each test rehearses a clone of this repository whose release version is its own (0.0.<ms>), so it publishes
to the engine's index and registry without touching the demo's release.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit import engine, publish, rehearse
from toolkit.engine import docker
from toolkit.matrix import load_matrix
from toolkit.wheels import sha256

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, matrix_text: str) -> tuple[Path, str]:
    """A committed clone of this repository with ``matrix_text`` and a release version of its own."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(repo)], check=True)
    version = f"0.0.{time.time_ns() // 1_000_000}"
    (repo / "matrix.toml").write_text(matrix_text.replace('version = "0.1.0"', f'version = "{version}"'))
    provider = repo / "examples" / "saxpy" / "build_support" / "local_version.py"
    provider.write_text(provider.read_text().replace('VERSION = "0.1.0"', f'VERSION = "{version}"'))
    subprocess.run([sys.executable, "-m", "toolkit", "render"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet", "-m",
                    f"release {version}"], cwd=repo, check=True)
    return repo, version


def _on_index(repo: Path, version: str) -> dict[str, str]:
    m = load_matrix(repo / "matrix.toml")
    return {f: h for f, h in publish._index_files(m.publish.read_url, "saxpy").items()
            if f.startswith(f"saxpy-{version}-")}  # the default line, without its label


def _results(runs: list[rehearse.JobRun]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in runs:
        out.setdefault(r.job, set()).add(r.result)
    return out


@pytest.fixture
def x86_wheels_only(wheels_only):
    """The repo's wheels-only matrix for x86_64, Pythons 3.10 (no clean image: untested) and 3.11: the cheapest."""
    return wheels_only('"3.10", "3.11"').replace('arch = ["x86_64", "aarch64"]', 'arch = ["x86_64"]')


def test_the_sudo_stand_in_resets_the_environment_and_path_like_the_runners(tmp_path):
    bindir = rehearse.sudo_stand_in(tmp_path / "bin")
    env = {"PATH": f"/venv/bin:{bindir}:/usr/bin:/bin", "KEEP": "kept", "DROP": "dropped"}
    out = subprocess.run(["sudo", "--preserve-env=KEEP", "env"], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert f"PATH={rehearse.SECURE_PATH}" in out and "KEEP=kept" in out
    assert not any(line.startswith("DROP=") for line in out)


def test_a_wheel_whose_smoke_fails_stops_the_pipeline_before_publish(engine_up, x86_wheels_only, tmp_path):
    broken = x86_wheels_only.replace('smoke = ["python", "-m", "saxpy", "--selftest"]',
                                     'smoke = ["python", "-c", "raise SystemExit(\'sabotaged smoke\')"]')
    repo, version = _project(tmp_path, broken)
    runs = rehearse.rehearse(repo, inputs={"cuda": "13.0"}, root=tmp_path / "run")
    results = _results(runs)
    assert results["wheels"] == {rehearse.FAILURE} and results["publish"] == {rehearse.SKIPPED}
    assert results["images"] == {rehearse.SKIPPED}  # no images planned: skipped by its if:, holding nothing back
    wheel_log = Path(next(r.log for r in runs if r.job == "wheels")).read_text()
    assert "sabotaged smoke" in wheel_log
    assert _on_index(repo, version) == {}


def test_a_wheel_changed_after_its_smoke_is_refused_by_the_publish_job(engine_up, x86_wheels_only, tmp_path):
    repo, version = _project(tmp_path, x86_wheels_only)

    def tamper(job: str, artifacts: rehearse.Artifacts) -> None:
        if job == "wheels":  # between the jobs, as a compromised or racing upload would
            for wheel in (artifacts.root / "wheel-saxpy-cu130-x86_64").glob("*.whl"):
                wheel.write_bytes(wheel.read_bytes() + b"\0")

    runs = rehearse.rehearse(repo, inputs={"cuda": "13.0"}, root=tmp_path / "run", between_jobs=tamper)
    results = _results(runs)
    assert results["wheels"] == {rehearse.SUCCESS} and results["publish"] == {rehearse.FAILURE}
    publish_log = Path(next(r.log for r in runs if r.job == "publish")).read_text()
    assert "changed since it was smoke-tested" in publish_log
    assert _on_index(repo, version) == {}


@pytest.mark.slow
def test_the_rehearsed_release_ends_as_the_demo_does_and_a_second_publishes_nothing(engine_up, tmp_path):
    repo, version = _project(tmp_path, (REPO / "matrix.toml").read_text())
    inputs = {"cuda": "13.0", "framework": "none"}
    runs = rehearse.rehearse(repo, inputs=inputs, root=tmp_path / "run")
    assert _results(runs) == {"plan": {"success"}, "wheels": {"success"}, "gpu-smoke": {"skipped"},
                              "images": {"success"}, "publish": {"success"}}
    assert {r.name for r in runs if r.job == "wheels"} == {"wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu130:aarch64"}
    published = _on_index(repo, version)
    assert len(published) == 2

    m = load_matrix(repo / "matrix.toml")
    engine.login(m, engine_up)
    tag = f"{m.publish.image_repository}/none:{version}-cu130"
    assert sorted(docker.platforms_of(tag)) == ["linux/amd64", "linux/arm64"]
    metadata = publish.published_metadata(m)
    sums = dict(reversed(line.split("  ", 1)) for line in metadata["SHA256SUMS"].decode().splitlines())
    assert len(sums) == 6 and {f: h for f, h in sums.items() if f in published} == published  # + channels, variants
    # the cu130 channel's files are the wheels a local build of the same commit gives
    subprocess.run([sys.executable, "-m", "toolkit", "wheels", "--cuda", "13.0", "--framework", "none"], cwd=repo,
                   check=True, capture_output=True)
    assert {p.name: sha256(p) for p in (repo / "dist").glob("*.whl")} == {
        f: h for f, h in sums.items() if f"{version}+cu130-" in f}
    components = json.loads(metadata["sbom.cdx.json"])["components"]
    assert {(c["name"], c["version"]) for c in components} >= {("saxpy", f"{version}+cu130"),
                                                                  (tag.rsplit(":", 1)[0], f"{version}-cu130")}

    # signed and attested (keyless stands in as the engine's key), the wheels' builder is the release workflow
    log = Path(next(r.log for r in runs if r.job == "publish")).read_text()
    assert "stand-in: TOOLKIT_SIGNING=keyless signs with the engine's key here" in log
    assert publish.verify(m, out=tmp_path / "verified") == []
    statements = json.loads((tmp_path / "verified" / "statements.json").read_text())
    builder = statements["wheel:saxpy:cu130:aarch64@cu130 slsa"]["predicate"]["runDetails"]["builder"]["id"]
    assert builder.startswith("https://github.com/") and "/.github/workflows/release.yml@refs/" in builder

    again = rehearse.rehearse(repo, inputs=inputs, root=tmp_path / "run")
    assert {r.result for r in again if r.job == "publish"} == {"success"}
    log = Path(next(r.log for r in again if r.job == "publish")).read_text()
    assert "nothing new was published" in log and "  upload  " not in log
    assert _on_index(repo, version) == published
