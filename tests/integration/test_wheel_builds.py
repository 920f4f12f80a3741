"""Real cibuildwheel builds of the demo extension, their audit and their reproducibility."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from toolkit import cli, cuda, wheels
from toolkit.matrix import load_matrix
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
    shutil.copytree(request.config.rootpath / "examples", root / "examples")
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


def test_same_inputs_give_the_same_sha256(built_wheels, repo_matrix, tmp_path):
    _, records = built_wheels
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), arch=("x86_64",), framework=("none",)))
    (again,) = wheels.build(repo_matrix, plan, wheels.Path(__file__).resolve().parents[2], tmp_path)
    assert again["sha256"] == records[X86]["sha256"]
