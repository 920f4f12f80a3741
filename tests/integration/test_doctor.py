"""`toolkit doctor` on this host, from facts."""

from __future__ import annotations

import json

import pytest

from toolkit import cli, hostinfo

pytestmark = pytest.mark.integration


def test_doctor_reports_this_host(engine_up, tmp_path, capsys):
    rc = cli.main(["doctor", "--cuda", "13.0", "--output", str(tmp_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["verdict"] == "PASS"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["emulation"]["result"] == "pass" and "linux/arm64" in checks["emulation"]["detail"]
    if hostinfo.gpus():
        assert checks["gpu"]["result"] == "pass"
    else:
        assert report["gpus"] == [] and checks["gpu"]["result"] == "warn"
        assert "no NVIDIA GPU" in checks["gpu"]["detail"]
        assert all(a["gpu_test"] == "skipped: no GPU" for a in report["artifacts"])
    nvcc13 = [t for t in report["toolchains"] if t["version"] == "13.0"]
    if nvcc13:
        assert "sm_121" in nvcc13[0]["gpu_code"] and checks["cuda 13.0 archs"]["result"] == "pass"
    builds = {a["artifact"]: a["build"] for a in report["artifacts"]}
    assert builds["wheel:saxpy:cu130:x86_64"] == "native"
    assert builds["wheel:saxpy:cu130:aarch64"] == "cross"  # the matrix's auto, CUDA 13.0 from PyPI
    assert builds["image:none:cu130:aarch64"] == "emulated"
    markdown = (tmp_path / "doctor.md").read_text()
    assert "## Summary" in markdown and "**Verdict: PASS**" in markdown


def test_doctor_flags_sm121_with_cuda_12_1(tmp_path, small_matrix, capsys):
    bad = small_matrix.replace('[cuda."12.8"]\narchs = "80-real;90a-real;120"',
                               '[cuda."12.1"]\narchs = "80-real;121-real"').replace('"12.8"', '"12.1"')
    path = tmp_path / "matrix.toml"
    path.write_text(bad)
    rc = cli.main(["--matrix", str(path), "doctor", "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 2
    assert "sm_121 needs CUDA >= 12.9" in out and "verdict: FAIL" in out
    report = json.loads((tmp_path / "out" / "doctor.json").read_text())
    assert report["verdict"] == "FAIL"
    assert any(c["result"] == "FAIL" and 'cuda."12.1".archs' in c["detail"] for c in report["checks"])
