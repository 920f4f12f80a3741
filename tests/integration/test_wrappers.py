"""container/build.sh and run.sh as a user meets them: right after `git clone`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from toolkit import container

pytestmark = pytest.mark.integration


def test_wrappers_work_from_a_fresh_clone_and_print_their_parsers_help(tmp_path, request, monkeypatch):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(request.config.rootpath), str(clone)], check=True)
    # The first python3 on PATH lacks the toolkit's dependencies, as on a machine that has only cloned.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to(tmp_path / "bare" / "bin" / "python3")
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHON")},
           "PATH": f"{tmp_path / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "COLUMNS": "100"}
    first = subprocess.run([clone / "container" / "build.sh", "--framework", "none", "--cuda-version", "13.0",
                            "--platform", "linux/amd64", "--dry-run"],
                           cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    assert "installing the toolkit into" in first.stderr and (clone / ".venv" / "bin" / "python").exists()
    assert first.stdout.startswith("docker buildx build --platform=linux/amd64")
    monkeypatch.setenv("COLUMNS", "100")
    for script, parser in (("build.sh", container.build_parser()), ("run.sh", container.run_parser())):
        proc = subprocess.run([clone / "container" / script, "--help"], cwd=clone, env=env, capture_output=True,
                              text=True, check=True)
        assert proc.stdout == parser.format_help()  # the wrapper's help is the parser's that runs
        assert "installing" not in proc.stderr  # the .venv of the first run is found again
    run = subprocess.run([clone / "container" / "run.sh", "--framework", "none", "--platform", "linux/arm64",
                          "--gpus", "none", "--dry-run", "--", "python", "-V"],
                         cwd=clone, env=env, capture_output=True, text=True, check=True)
    assert run.stdout.split()[-3:] == ["127.0.0.1:5000/gpu-toolkit/none:latest-arm64", "python", "-V"]
