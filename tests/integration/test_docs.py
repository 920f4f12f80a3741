"""Generated files stay consistent with the matrix, and CI catches any hand edit."""

from __future__ import annotations

import pytest

from toolkit import cli

pytestmark = pytest.mark.integration

GENERATED = ["container/Dockerfile.none", "container/cibuildwheel-cu130.toml", ".github/workflows/release.yml",
             "docs/support-matrix.md"]


def test_committed_files_match_a_fresh_render(repo_copy, capsys):
    assert cli.main(["--matrix", str(repo_copy / "matrix.toml"), "render", "--check"]) == 0


@pytest.mark.parametrize("path", GENERATED)
def test_a_hand_edit_in_each_generated_folder_is_caught(repo_copy, path, capsys):
    target = repo_copy / path
    target.write_text(target.read_text() + "\n# edited by hand\n")
    assert cli.main(["--matrix", str(repo_copy / "matrix.toml"), "render", "--check"]) == 8
    assert f"{path}: differs" in capsys.readouterr().err


def test_removing_aarch64_changes_every_generated_family_consistently(repo_copy, capsys):
    matrix = repo_copy / "matrix.toml"
    matrix.write_text(matrix.read_text().replace('arch = ["x86_64", "aarch64"]', 'arch = ["x86_64"]'))
    before = {p: (repo_copy / p).read_text() for p in GENERATED}
    assert cli.main(["--matrix", str(matrix), "render"]) == 0
    after = {p: (repo_copy / p).read_text() for p in GENERATED}
    assert "arm64) ARCH=aarch64" in before["container/Dockerfile.none"]
    assert "arm64) ARCH=aarch64" not in after["container/Dockerfile.none"]
    assert "manylinux-aarch64-image" in before["container/cibuildwheel-cu130.toml"]
    assert "manylinux-aarch64-image" not in after["container/cibuildwheel-cu130.toml"]
    assert "| **aarch64** |" in before["docs/support-matrix.md"]
    assert "aarch64" not in after["docs/support-matrix.md"]
    assert after[".github/workflows/release.yml"] != before[".github/workflows/release.yml"]
    assert cli.main(["--matrix", str(matrix), "render", "--check"]) == 0
