"""The main commands on a machine that cannot reach every base image (no Docker Hub here)."""

from __future__ import annotations

import json

import pytest

from toolkit import cli

pytestmark = pytest.mark.integration


def test_wheels_stop_at_once_naming_what_cannot_be_built(engine_up, request, capsys, tmp_path):
    matrix = str(request.config.rootpath / "matrix.toml")
    # not 12.4: whether its stand-in is made yet depends on this machine's past (engine up makes it)
    assert cli.main(["wheels", "--matrix", matrix, "--arch", "x86_64", "--cuda", "12.8,12.9,13.0", "--dry-run",
                     "--dist", str(tmp_path)]) == 4
    captured = capsys.readouterr()
    assert "wheel:saxpy:cu128:x86_64: base image nvidia/cuda:12.8.1-devel-ubuntu24.04 (linux/amd64) cannot be " \
           "pulled here" in captured.err
    assert "select what can be built (--cuda 13.0), or pass --skip-unavailable" in captured.err
    assert "cibuildwheel" not in captured.out  # not even a dry run's build command


def test_skip_unavailable_builds_the_rest_and_reports_what_it_skipped(engine_up, request, capsys, tmp_path):
    matrix = str(request.config.rootpath / "matrix.toml")
    assert cli.main(["wheels", "--matrix", matrix, "--arch", "x86_64", "--cuda", "12.8,12.9,13.0", "--dry-run",
                     "--skip-unavailable", "--json", "--dist", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    records = json.loads(out[out.index("[\n"):])
    assert {r["id"] for r in records if "not_built" in r} == {"wheel:saxpy:cu128:x86_64", "wheel:saxpy:cu129:x86_64"}
    assert "# wheel:saxpy:cu130:x86_64: native" in out


def test_images_refuse_an_unreachable_base_before_building(engine_up, request, capsys, tmp_path):
    matrix = str(request.config.rootpath / "matrix.toml")
    assert cli.main(["images", "--matrix", matrix, "--framework", "none", "--arch", "x86_64", "--push",
                     "--dry-run", "--dist", str(tmp_path)]) == 4
    assert "image:none:cu129:x86_64: base image nvidia/cuda:12.9.1-devel-ubuntu24.04" in capsys.readouterr().err


def test_engine_status_reports_with_exit_0_and_fails_only_when_strict(engine_up, request, capsys):
    matrix = str(request.config.rootpath / "matrix.toml")
    assert cli.main(["engine", "status", "--matrix", matrix, "--arch", "x86_64"]) == 0
    # Among those not available (12.4's stand-ins too, on a machine that has not bootstrapped them yet).
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("not available: ")]
    assert "image nvidia/cuda:12.8.1-devel-ubuntu24.04" in line.removeprefix("not available: ").split(", ")
    assert cli.main(["engine", "status", "--matrix", matrix, "--arch", "x86_64", "--strict"]) == 4
