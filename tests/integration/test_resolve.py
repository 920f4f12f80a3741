"""Will a framework install on each platform? uv's resolver against PyPI, before any build."""

from __future__ import annotations

import json

import pytest

from toolkit import cli, docs, resolve
from toolkit.matrix import load_matrix

pytestmark = pytest.mark.integration

# torch-memory-saver 0.0.9 (a dependency of sglang 0.5.6) has a wheel for x86_64 on PyPI and none for aarch64.
NO_AARCH64 = "torch-memory-saver==0.0.9"
WHY = "PyPI has no aarch64 wheel of torch-memory-saver 0.0.9 (its Linux wheels: manylinux2014_x86_64)"


@pytest.fixture
def tms_matrix(small_matrix, write_matrix):
    """The small matrix with a framework that requires NO_AARCH64, on both arches."""
    vllm = '[framework.vllm]\nrequirements = ["vllm==0.32.0"]\nmodule = "vllm"\narch = ["x86_64"]'
    tms = f'[framework.tms]\nrequirements = ["{NO_AARCH64}"]\nmodule = "torch_memory_saver"'
    return write_matrix(small_matrix.replace('"none", "vllm"', '"none", "tms"')
                        .replace('framework = "vllm"', 'framework = "tms"').replace(vllm, tms))


def test_resolve_finds_the_platform_without_a_wheel_and_says_what_pypi_has(tms_matrix, capsys):
    assert cli.main(["resolve", "--matrix", str(tms_matrix), "--json", "--write"]) == 0
    found = {r["platform"]: r for r in json.loads(capsys.readouterr().out)}
    assert found["linux/amd64"]["status"] == resolve.RESOLVES
    assert found["linux/amd64"]["pins"] == {"torch-memory-saver": "0.0.9"}
    arm = found["linux/arm64"]
    assert (arm["status"], arm["python"], arm["glibc"]) == (resolve.NO_WHEEL, "3.11", "2.36")
    assert arm["reason"] == f"torch-memory-saver==0.0.9 has no usable wheels; {WHY}"
    # the support matrix marks the cell impossible, with that reason, from the recorded results
    m = load_matrix(tms_matrix)
    rows = {row[0]: row[2] for row in docs.context(m, tms_matrix.parent)["artifact_rows"]}
    assert rows["`image:tms:cu130:aarch64`"].startswith("impossible: tms's requirements have no binary wheel for "
                                                       "linux/arm64 at Python 3.11, glibc 2.36") and WHY in \
        rows["`image:tms:cu130:aarch64`"]
    assert rows["`image:tms:cu130:x86_64`"] == "not built"


def test_doctor_marks_the_cell_impossible_before_any_build(tms_matrix, tmp_path, capsys):
    cli.main(["doctor", "--matrix", str(tms_matrix), "--cuda", "13.0", "--output", str(tmp_path / "out"), "--json"])
    report = json.loads(capsys.readouterr().out)
    cells = {a["artifact"]: a for a in report["artifacts"]}
    assert cells["image:tms:cu130:aarch64"]["build"] == "impossible" and WHY in cells["image:tms:cu130:aarch64"]["why"]
    assert cells["image:tms:cu130:x86_64"]["build"] != "impossible"
    checks = {c["name"]: c for c in report["checks"]}
    arm, amd = (checks[f"wheels tms linux/{arch} debian:bookworm-slim"] for arch in ("arm64", "amd64"))
    assert arm["result"] == "warn" and WHY in arm["detail"]
    assert amd["result"] == "pass"
    assert "| tms | linux/arm64 |" in (tmp_path / "out" / "doctor.md").read_text()


def test_the_images_preflight_refuses_the_platform_and_builds_nothing(engine_up, tms_matrix, tmp_path, capsys):
    assert cli.main(["render", "--matrix", str(tms_matrix)]) == 0
    dist = tmp_path / "dist"
    code = cli.main(["images", "--matrix", str(tms_matrix), "--dist", str(dist), "--framework", "tms",
                     "--cuda", "13.0"])
    err = capsys.readouterr().err
    assert code == 4 and "image:tms:cu130:aarch64: tms's requirements have no binary wheel" in err and WHY in err
    assert "image:tms:cu130:x86_64" not in err.split("cannot be built on this machine")[1]
    assert not (dist / "manifest.json").exists()


def test_a_cell_with_an_unreachable_base_too_gets_both_reasons(engine_up, tms_matrix, tmp_path, capsys):
    nowhere = "127.0.0.1:5000/nowhere/debian:bookworm-slim"  # a Debian bookworm runtime the registry lacks
    tms_matrix.write_text(tms_matrix.read_text().replace('runtime-image = "debian:bookworm-slim"',
                                                         f'runtime-image = "{nowhere}"'))
    assert cli.main(["render", "--matrix", str(tms_matrix)]) == 0
    code = cli.main(["images", "--matrix", str(tms_matrix), "--dist", str(tmp_path / "dist"), "--framework", "tms",
                     "--cuda", "13.0"])
    err = capsys.readouterr().err
    lines = {line.split(": ", 2)[1].strip(): line for line in err.splitlines() if "image:tms:" in line}
    assert code == 4 and f"base image {nowhere} (linux/arm64)" in lines["image:tms:cu130:aarch64"]
    assert WHY in lines["image:tms:cu130:aarch64"]
    assert f"base image {nowhere} (linux/amd64)" in lines["image:tms:cu130:x86_64"]
    assert "binary wheel" not in lines["image:tms:cu130:x86_64"]
