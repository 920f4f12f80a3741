from __future__ import annotations

from toolkit import fingerprint


def test_a_checkout_under_a_build_folder_still_sees_source_changes(tmp_path):
    # The checkout itself lives under folders named like the skipped ones (CI workspaces often do).
    package = tmp_path / "build" / "dist" / ".venv" / "project" / "examples" / "saxpy"
    (package / "src").mkdir(parents=True)
    (package / "src" / "kernel.cu").write_text("__global__ void k() {}\n")
    before = fingerprint.source_tree(package)
    (package / "src" / "kernel.cu").write_text("__global__ void k() { /* changed */ }\n")
    assert fingerprint.source_tree(package) != before


def test_outputs_inside_the_package_are_not_inputs(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "kernel.cu").write_text("x\n")
    before = fingerprint.source_tree(tmp_path)
    for skipped in ("build", "dist", ".git", "__pycache__"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "out.o").write_text("object\n")
    assert fingerprint.source_tree(tmp_path) == before
