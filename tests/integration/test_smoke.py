"""Smoke tests of built wheels: containers per arch and Python, the host, and broken artifacts."""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile

import pytest

from toolkit import cli, hostinfo, smoke
from toolkit.manifest import Manifest
from toolkit.plan import Selection, make_plan
from toolkit.wheels import sha256

pytestmark = pytest.mark.integration


def _smoke(repo_matrix, dist, *, host=False, arch=None):
    selection = Selection(cuda=("13.0",), framework=("none",), arch=(arch,) if arch else ())
    return smoke.smoke(repo_matrix, make_plan(repo_matrix, selection), dist, host=host)


@pytest.mark.usefixtures("built_images")  # the plan smoked includes the none images
def test_wheels_pass_in_containers_per_arch_and_python(built_wheels, repo_matrix, capsys):
    dist, _ = built_wheels
    assert cli.main(["smoke", "--cuda", "13.0", "--framework", "none", "--dist", str(dist)]) == 0
    table = capsys.readouterr().out
    print(table)
    runs = Manifest(dist / "manifest.json").data["artifacts"]
    for artifact_id, arch in (("wheel:saxpy:cu130:x86_64", "x86_64"), ("wheel:saxpy:cu130:aarch64", "aarch64")):
        record = runs[artifact_id]["smoke"]
        assert record["sha256"] == runs[artifact_id]["sha256"]
        by_python = {r["python"]: r for r in record["runs"]}
        assert by_python["3.11"]["result"] == by_python["3.13"]["result"] == "pass"
        assert by_python["3.10"]["result"] == by_python["3.12"]["result"] == "untested"
        assert f'"machine": "{arch}"' in by_python["3.11"]["detail"]
        if not hostinfo.gpus():
            assert by_python["3.11"]["gpu"] == "skipped: no GPU"
    assert "untested" in table and "pass" in table


def _corrupt(dist, artifact_id):
    """Replace the extension inside the wheel with bytes that are no shared object."""
    manifest = Manifest(dist / "manifest.json")
    wheel = dist / manifest.get(artifact_id)["file"]
    broken = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"this is not an ELF file" if info.filename.endswith(".so") else data)
    broken.replace(wheel)
    manifest.record(artifact_id, sha256=sha256(wheel))


@pytest.mark.usefixtures("built_images")  # the plan smoked includes the none images
def test_a_wheel_whose_extension_cannot_load_fails(built_wheels, repo_matrix, tmp_path):
    dist = tmp_path / "dist"
    shutil.copytree(built_wheels[0], dist)
    _corrupt(dist, "wheel:saxpy:cu130:x86_64")
    runs = _smoke(repo_matrix, dist, arch="x86_64")
    failed = [r for r in runs if r.result == smoke.FAIL]
    assert failed and all("invalid ELF header" in r.detail or "ImportError" in r.detail for r in failed)


@pytest.mark.usefixtures("built_images")  # the plan smoked includes the none images
def test_a_wheel_for_another_arch_fails(built_wheels, repo_matrix, tmp_path, capsys):
    dist = tmp_path / "dist"
    shutil.copytree(built_wheels[0], dist)
    manifest = Manifest(dist / "manifest.json")
    arm = manifest.get("wheel:saxpy:cu130:aarch64")
    manifest.record("wheel:saxpy:cu130:x86_64", file=arm["file"], sha256=arm["sha256"])
    rc = cli.main(["smoke", "--cuda", "13.0", "--framework", "none", "--arch", "x86_64", "--dist", str(dist)])
    assert rc == 6
    assert "is not a supported wheel on this platform" in capsys.readouterr().err


def test_an_unbuilt_artifact_is_untested_never_passed(repo_matrix, tmp_path):
    runs = _smoke(repo_matrix, tmp_path)
    assert runs and all(r.result == smoke.UNTESTED and "not built" in r.detail for r in runs)
    with pytest.raises(smoke.SmokeError, match="not built"):
        smoke.smoke(repo_matrix, make_plan(repo_matrix, Selection(cuda=("13.0",))), tmp_path, require_built=True)


def test_wheels_are_smoked_where_no_image_was_built(built_wheels, tmp_path, request, capsys, wheels_only):
    """A wheels-only project (no framework axis), and a release whose images were not built yet."""
    root = request.config.rootpath
    dist = tmp_path / "dist"
    shutil.copytree(built_wheels[0], dist)
    manifest = Manifest(dist / "manifest.json")
    for artifact_id in [a for a in manifest.data["artifacts"] if a.startswith("image:")]:
        del manifest.data["artifacts"][artifact_id]
    manifest.save()
    argv = ["smoke", "--dist", str(dist), "--arch", "x86_64", "--cuda", "13.0"]
    assert cli.main([*argv, "--matrix", str(root / "matrix.toml"), "--framework", "none"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wheel:saxpy:cu130:x86_64 .* 3\.11 .* container .* pass", out)
    assert re.search(r"image:none:cu130:x86_64 .* untested", out)
    for name in ("container", "examples", "patches"):
        (tmp_path / name).symlink_to(root / name)
    text = wheels_only('"3.10", "3.11", "3.12", "3.13"')
    (tmp_path / "matrix.toml").write_text(text)
    assert cli.main([*argv, "--matrix", str(tmp_path / "matrix.toml"), "--force"]) == 0
    out = capsys.readouterr().out
    assert "image:" not in out and re.search(r"wheel:saxpy:cu130:x86_64 .* 3\.13 .* container .* pass", out)


def test_the_gpu_path_forced_on_this_host_reports_what_it_found(built_wheels, repo_matrix):
    """The GPU branch of host smoke runs here too: without a GPU it must fail and say why."""
    dist, _ = built_wheels
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",)))
    (w,) = plan.wheels
    record = Manifest(dist / "manifest.json").get(w.id)
    run = smoke._host_run(w, dist / record["file"], ["90a"], gpu=True)
    if hostinfo.gpus():
        assert run.result == smoke.PASS, run.detail
    else:
        assert run.result == smoke.FAIL
        assert run.gpu.startswith("the package saw no GPU: ") and "no CUDA device is available" in run.gpu


@pytest.mark.gpu
def test_gpu_kernels_run_on_this_host(built_wheels, repo_matrix):
    gpus = hostinfo.gpus()
    if not gpus:
        pytest.skip("no NVIDIA GPU on this host: the GPU smoke path is skipped, not passed")
    (run,) = _smoke(repo_matrix, built_wheels[0], host=True, arch="x86_64")
    assert run.result == smoke.PASS, run.detail
    report = json.loads(run.detail)
    assert report["gpu"] == "ran" and report["max_abs_error"] < 1e-5


@pytest.mark.usefixtures("built_images")
def test_host_and_container_runs_stand_side_by_side_and_a_narrow_run_is_not_full_coverage(
        built_wheels, repo_matrix, tmp_path):
    dist = tmp_path / "dist"
    shutil.copytree(built_wheels[0], dist)
    wheel_id = "wheel:saxpy:cu130:x86_64"
    whole = next(w for w in make_plan(repo_matrix).wheels if w.id == wheel_id)
    _smoke(repo_matrix, dist, arch="x86_64")
    _smoke(repo_matrix, dist, host=True, arch="x86_64")
    record = Manifest(dist / "manifest.json").get(wheel_id)
    assert {(r["where"], r["python"]) for r in record["smoke"]["runs"] if r["result"] == "pass"} >= {
        ("container", "3.11"), ("container", "3.13"), ("host", ".".join(map(str, sys.version_info[:2])))}
    assert smoke.coverage_problems(repo_matrix, whole, record) == []
    # The wheel is rebuilt (another sha256), then smoke-tested for one Python only: that covers one Python.
    _corrupt_nothing_but_the_hash(dist, wheel_id)
    narrow = Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",), python=("3.13",))
    smoke.smoke(repo_matrix, make_plan(repo_matrix, narrow), dist)
    record = Manifest(dist / "manifest.json").get(wheel_id)
    assert [r["python"] for r in record["smoke"]["runs"]] == ["3.13"]
    assert smoke.coverage_problems(repo_matrix, whole, record) == [
        f"{wheel_id}: no passing smoke record (Python 3.11) for {record['sha256'][:19]}"]


def _corrupt_nothing_but_the_hash(dist, artifact_id):
    """A rebuild that works as before: one more file in the wheel, so a new sha256."""
    manifest = Manifest(dist / "manifest.json")
    wheel = dist / manifest.get(artifact_id)["file"]
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("saxpy/REBUILT", "1")
    manifest.record(artifact_id, sha256=sha256(wheel))


def test_a_typo_in_artifact_is_an_error_not_an_empty_pass(repo_matrix, capsys, request):
    matrix = str(request.config.rootpath / "matrix.toml")
    assert cli.main(["smoke", "--matrix", matrix, "--artifact", "wheel:saxpy:cu130:x86_65"]) == 2
    assert 'not an artifact of the selection (did you mean "wheel:saxpy:cu130:x86_64"?)' in capsys.readouterr().err


def test_require_gpu_fails_where_there_is_no_gpu(built_wheels, repo_matrix):
    if hostinfo.gpus():
        pytest.skip("this host has a GPU: the no-GPU refusal cannot be shown here")
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",)))
    with pytest.raises(smoke.SmokeError, match="--require-gpu: no NVIDIA GPU found here"):
        smoke.smoke(repo_matrix, plan, built_wheels[0], host=True, require_gpu=True)
