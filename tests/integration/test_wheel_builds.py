"""Real builds of the demo extension (cibuildwheel, and cross), their audit and their reproducibility."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import cli, cuda, engine, smoke, wheels
from toolkit.engine import docker
from toolkit.errors import CommandError
from toolkit.matrix import BuildMode, load_matrix
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration

X86, ARM = "wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu130:aarch64"


def test_both_wheels_are_abi3_manylinux_and_twine_clean(built_wheels):
    dist, records = built_wheels
    assert set(records) == {X86, ARM}
    for artifact_id, arch in ((X86, "x86_64"), (ARM, "aarch64")):
        name = records[artifact_id]["file"]
        assert name.startswith("saxpy-0.1.0+cu130-cp310-abi3-manylinux_")
        assert name.endswith(f"_{arch}.whl")
        print(f"{artifact_id}: {records[artifact_id]['build_seconds']} s, {records[artifact_id]['size']} bytes")
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.glob("*.whl"))],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_audit_lists_exactly_the_matrix_archs(built_wheels, repo_matrix, capsys):
    dist, records = built_wheels
    promised = repo_matrix.cuda["13.0"].archs
    for record in records.values():
        (obj,) = record["audit"]["objects"]
        assert list(obj["sass"]) == [t.sm for t in promised]
        assert list(obj["ptx"]) == [t.sm for t in promised if t.ptx]
        assert not obj["missing"]
    assert cli.main(["audit", *map(str, dist.glob("*.whl"))]) == 0
    assert "saxpy/_core.abi3.so" in capsys.readouterr().out


def test_a_wheel_missing_an_arch_fails_the_audit(engine_up, repo_matrix, tmp_path, request, capsys):
    root = tmp_path / "repo"
    for name in ("examples", "patches"):
        shutil.copytree(request.config.rootpath / name, root / name)
    text = (request.config.rootpath / "matrix.toml").read_text()
    (root / "matrix.toml").write_text(text.replace('archs = "7.5 8.0 8.6 8.9', 'archs = "7.5 8.0 8.9'))
    narrowed = load_matrix(root / "matrix.toml")
    assert cli.main(["--matrix", str(root / "matrix.toml"), "render"]) == 0
    plan = make_plan(narrowed, Selection(cuda=("13.0",), arch=("x86_64",), framework=("none",)))
    (record,) = wheels.build(narrowed, plan, root, tmp_path / "dist")
    wheel = tmp_path / "dist" / record["file"]
    capsys.readouterr()
    assert cli.main(["audit", str(wheel)]) == 5
    err = capsys.readouterr().err
    assert "MISSING sm_86 (SASS)" in err
    report = cli.audit.audit_wheel(wheel, cuda.parse_arch_list("7.5 8.0 8.9 9.0a 10.0 12.0+PTX"))
    assert report.ok


def test_a_project_with_a_static_version_gets_each_line_s_label(engine_up, repo_matrix, tmp_path, request):
    """An outside project that does not read TOOLKIT_LOCAL_VERSION: its wheel is stamped with the line's label."""
    root = tmp_path / "repo"
    for name in ("examples", "patches"):
        shutil.copytree(request.config.rootpath / name, root / name)
    (root / "matrix.toml").write_text((request.config.rootpath / "matrix.toml").read_text())
    project = root / "examples" / "saxpy" / "pyproject.toml"
    text = project.read_text().replace('dynamic = ["version"]', 'version = "0.1.0"')
    project.write_text(text[:text.index("# The version is 0.1.0")])  # no metadata provider: a static version
    assert cli.main(["--matrix", str(root / "matrix.toml"), "render"]) == 0
    plan = make_plan(load_matrix(root / "matrix.toml"), Selection(cuda=("13.0",), arch=("x86_64",),
                                                                  framework=("none",)))
    (record,) = wheels.build(load_matrix(root / "matrix.toml"), plan, root, tmp_path / "dist")
    assert record["stamped_from"] == "saxpy-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl"
    assert record["file"] == "saxpy-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl" and record["audit"]["ok"]
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", tmp_path / "dist" / record["file"]],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_same_inputs_give_the_same_sha256(built_wheels, repo_matrix, tmp_path):
    _, records = built_wheels
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), arch=("x86_64",), framework=("none",)))
    (again,) = wheels.build(repo_matrix, plan, wheels.Path(__file__).resolve().parents[2], tmp_path)
    assert again["sha256"] == records[X86]["sha256"]


def _gpu_code(record):
    return [(o["name"], o["sass"], o["ptx"]) for o in record["audit"]["objects"]]


def test_cross_builds_with_emulation_off_and_matches_the_emulated_wheel(built_wheels, repo_matrix, tmp_path,
                                                                       aarch64_emulation_off):
    """Cross mode needs no QEMU at all: with emulation switched off (checked: an arm64 container cannot
    start) it still builds the aarch64 wheel. The emulated build, emulation back on, gives the same
    wheel name and GPU code. (The cross wheel of built_wheels is smoke-tested in test_smoke.py.)"""
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), arch=("aarch64",), framework=("none",)))
    repo = Path(__file__).resolve().parents[2]
    with aarch64_emulation_off():
        with pytest.raises(CommandError, match="exec format error"):
            docker.run(repo_matrix.image("debian:bookworm-slim"), ["uname", "-m"], platform="linux/arm64")
        (crossed,) = wheels.build(repo_matrix, plan, repo, tmp_path / "cross", mode=BuildMode.CROSS)
    (emulated,) = wheels.build(repo_matrix, plan, repo, tmp_path / "emulated", mode=BuildMode.EMULATED)
    print(f"aarch64 wheel: cross {crossed['build_seconds']} s, emulated {emulated['build_seconds']} s")
    assert (crossed["build_mode"], emulated["build_mode"]) == ("cross", "emulated")
    assert crossed["file"] == emulated["file"] == built_wheels[1][ARM]["file"]
    assert crossed["sha256"] == built_wheels[1][ARM]["sha256"]  # built_wheels cross-compiled it too: reproducible
    assert _gpu_code(crossed) == _gpu_code(emulated) and crossed["audit"]["ok"]


def _floor_project(tmp_path: Path, rootpath: Path, glibc: str) -> Path:
    """The demo with its CUDA 13.0 line's host code linked against Debian bullseye's C library (glibc 2.31)."""
    root = tmp_path / f"floor-{glibc}"
    for name in ("examples", "patches"):
        shutil.copytree(rootpath / name, root / name)
    image, mirror = "debian:bullseye-slim", "127.0.0.1:5000/mirror/debian:bullseye-slim"
    text = (rootpath / "matrix.toml").read_text().replace(
        'local-version = "cu130"', f'local-version = "cu130"\nglibc = "{glibc}"\nsysroot-image = "{image}"')
    text = text.replace("[mirror]\n", f'[mirror]\n"{image}" = "{mirror}"\n')
    (root / "matrix.toml").write_text(text.replace("[bootstrap]\n", f'[bootstrap]\n"{image}" = "bullseye"\n'))
    assert cli.main(["--matrix", str(root / "matrix.toml"), "render"]) == 0
    return root


def _built_and_smoked_at_floor(tmp_path: Path, rootpath: Path, state: Path, arch: str) -> tuple[dict, dict]:
    """The demo's wheel for ``arch`` built at the 2.28 floor, then smoke-tested with Python 3.11: its record,
    and its runs by (where, Python)."""
    root = _floor_project(tmp_path, rootpath, "2.28")
    m = load_matrix(root / "matrix.toml")
    plan = make_plan(m, Selection(cuda=("13.0",), arch=(arch,), framework=("none",)))
    assert all(s.up for s in engine.up(m, plan, state))  # bootstraps debian:bullseye-slim here
    (record,) = wheels.build(m, plan, root, tmp_path / "dist")
    narrow = Selection(cuda=("13.0",), arch=(arch,), framework=("none",), python=("3.11",))
    found = smoke.smoke(m, make_plan(m, narrow), tmp_path / "dist")
    return record, {(r.where, r.python): r for r in found if r.artifact == record["id"]}


def test_a_glibc_floor_below_the_builder_s_is_met_by_linking_against_a_sysroot(engine_up, tmp_path, request):
    """Built on bookworm (glibc 2.36, which gives manylinux_2_34), linked against bullseye's C library: the
    wheel is manylinux_2_28, which auditwheel checked; a floor the code cannot meet stops the build."""
    record, runs = _built_and_smoked_at_floor(tmp_path, request.config.rootpath, engine_up, "x86_64")
    assert record["file"].startswith("saxpy-0.1.0+cu130-cp310-abi3-manylinux_")
    assert record["file"].endswith("manylinux_2_28_x86_64.whl") and record["audit"]["ok"]
    # Installed where the floor is: CPython 3.11 built from source on bullseye (glibc 2.31), as well as in the
    # usual bookworm interpreter.
    assert set(runs) == {("container", "3.11"), ("floor", "3.11")}
    assert all(r.result == "pass" for r in runs.values()), runs
    too_old = _floor_project(tmp_path, request.config.rootpath, "2.17")  # static cudart needs glibc 2.24 here
    m = load_matrix(too_old / "matrix.toml")
    with pytest.raises(CommandError, match="cibuildwheel"):
        wheels.build(m, make_plan(m, Selection(cuda=("13.0",), arch=("x86_64",), framework=("none",))), too_old,
                     tmp_path / "dist-2.17")
    log = (tmp_path / "dist-2.17" / "logs" / "wheel_saxpy_cu130_x86_64.log").read_text()
    assert 'cannot repair' in log and '"manylinux_2_17_x86_64" ABI because of the presence of too-recent' in log


@pytest.mark.slow
def test_the_glibc_floor_holds_for_the_emulated_aarch64_wheel(engine_up, tmp_path, request):
    """The arm64 builder links against bullseye's arm64 C library, and the floor's arm64 interpreter compiles
    CPython, both under QEMU: many minutes."""
    record, runs = _built_and_smoked_at_floor(tmp_path, request.config.rootpath, engine_up, "aarch64")
    assert record["build_mode"] == "emulated"  # auto: the cross builder has no aarch64 sysroot
    assert record["file"].endswith("manylinux_2_28_aarch64.whl") and record["audit"]["ok"]
    assert set(runs) == {("container", "3.11"), ("floor", "3.11")}
    assert all(r.result == "pass" for r in runs.values()), runs
