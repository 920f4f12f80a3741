"""The toolkit's own release artifacts: a pure-Python sdist and wheel that install and run."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.integration


def test_sdist_and_wheel_build_pass_twine_and_carry_the_templates(request, tmp_path):
    root = request.config.rootpath
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(root)], check=True,
                   capture_output=True)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split("-")[0] for n in built] == ["gpu_release_toolkit", "gpu_release_toolkit"]
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    wheel = next(tmp_path.glob("*.whl"))
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "toolkit/templates/image.Dockerfile.j2" in names and "toolkit/engine/baseimages.py" in names
