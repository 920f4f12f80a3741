"""Fingerprints: an unchanged re-run builds nothing; a change rebuilds exactly what it affects."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from toolkit import cli, images, wheels
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration

WHEELS = {"wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu130:aarch64"}
IMAGE = "image:none:cu130:x86_64"


def test_only_what_a_change_affects_is_rebuilt(engine_up, tmp_path, request):
    root = tmp_path / "repo"
    for name in ("examples", "patches"):
        shutil.copytree(request.config.rootpath / name, root / name)
    shutil.copy(request.config.rootpath / "matrix.toml", root / "matrix.toml")
    dist = tmp_path / "dist"

    def rebuilt() -> set[str]:
        assert cli.main(["--matrix", str(root / "matrix.toml"), "render"]) == 0
        m = load_matrix(root / "matrix.toml")
        both = make_plan(m, Selection(cuda=("13.0",), framework=("none",)))
        x86_image = make_plan(m, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",)))
        records = wheels.build(m, both, root, dist) + images.build(m, dataclasses.replace(x86_image, wheels=()),
                                                                   root, dist)
        return {r["id"] for r in records if not r.get("up_to_date")}

    assert rebuilt() == {*WHEELS, IMAGE}
    assert rebuilt() == set()
    matrix = root / "matrix.toml"  # an image-only input: the framework's smoke command
    matrix.write_text(matrix.read_text().replace('smoke = ["python", "-m", "saxpy", "--info"]',
                                                 'smoke = ["python", "-m", "saxpy", "--selftest"]'))
    assert rebuilt() == {IMAGE}
    source = root / "examples/saxpy/src/saxpy/__main__.py"  # the demo's source: its wheels and their image
    source.write_text(source.read_text() + "# touched\n")
    assert rebuilt() == {*WHEELS, IMAGE}
