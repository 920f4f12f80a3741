"""The PyTorch extension example (examples/saxpy-torch, its own matrix): built for both arches, the aarch64
wheel cross-compiled against torch's aarch64 wheel, audited, and smoke-tested with torch in clean containers."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from toolkit import cli, smoke, wheels
from toolkit.manifest import Manifest
from toolkit.matrix import BuildMode, load_matrix
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration

X86, ARM = "wheel:saxpy-torch:cu130:x86_64", "wheel:saxpy-torch:cu130:aarch64"
TORCH_LIBS = {"libtorch_cpu.so", "libc10_cuda.so", "libc10.so"}


def _project(tmp_path_factory, request, name: str, per_python: bool = False) -> Path:
    """A copy of the example, rendered, as a project that keeps its matrix beside its source would be;
    ``per_python``: built without the stable ABI (one extension per Python), for the builder's Python."""
    root = tmp_path_factory.mktemp(name) / "saxpy-torch"
    shutil.copytree(request.config.rootpath / "examples" / "saxpy-torch", root,
                    ignore=shutil.ignore_patterns("container", "docs", ".github", "dist"))
    if per_python:
        pyproject = (root / "pyproject.toml").read_text()
        (root / "pyproject.toml").write_text(pyproject.replace('wheel.py-api = "cp310"\n', ""))
        text = (root / "matrix.toml").read_text().replace('python = ["3.10", "3.11", "3.12", "3.13"]',
                                                           'python = ["3.11"]')
        (root / "matrix.toml").write_text(text.replace("torch = true\n", "torch = true\nabi3 = false\n"))
    assert cli.main(["--matrix", str(root / "matrix.toml"), "render"]) == 0
    return root


@pytest.fixture(scope="module")
def torch_project(engine_up, tmp_path_factory, request) -> Path:
    return _project(tmp_path_factory, request, "torch")


@pytest.fixture(scope="module")
def torch_wheels(torch_project):
    m = load_matrix(torch_project / "matrix.toml")
    records = wheels.build(m, make_plan(m), torch_project, torch_project / "dist")
    return m, torch_project / "dist", {r["id"]: r for r in records}


def _extension(dist: Path, record: dict, into: Path) -> Path:
    with zipfile.ZipFile(dist / record["file"]) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".so")]
        zf.extract(name, into)
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch==2.11.0" in metadata.splitlines()  # the torch it was built against, exactly
    return into / name


def test_both_arches_build_one_abi3_wheel_each_the_aarch64_one_cross_compiled(torch_wheels, tmp_path):
    m, dist, records = torch_wheels
    assert set(records) == {X86, ARM}
    assert records[X86]["build_mode"] == "native" and records[ARM]["build_mode"] == "cross"
    promised = m.cuda["13.0"].archs
    for artifact_id, machine in ((X86, "x86_64"), (ARM, "aarch64")):
        record = records[artifact_id]
        assert record["file"] == f"saxpy_torch-0.1.0+cu130-cp310-abi3-manylinux_2_34_{machine}.whl"
        (obj,) = record["audit"]["objects"]
        assert obj["name"] == "saxpy_torch/_C.abi3.so"
        assert list(obj["sass"]) == [t.sm for t in promised] and list(obj["ptx"]) == [t.sm for t in promised if t.ptx]
        with _extension(dist, record, tmp_path / machine).open("rb") as f:
            elf = ELFFile(f)
            assert elf["e_machine"] == {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}[machine]
            needed = {t.needed for t in elf.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"}
        # torch's libraries come from the installed torch, never from the wheel (auditwheel excluded them).
        assert TORCH_LIBS <= needed
        with zipfile.ZipFile(dist / record["file"]) as zf:
            assert not [n for n in zf.namelist() if "libtorch" in n or "libc10" in n]


def test_wheels_pass_with_torch_in_clean_x86_64_containers(torch_wheels):
    m, dist, _ = torch_wheels
    runs = smoke.smoke(m, make_plan(m, Selection(arch=("x86_64",))), dist)
    by_python = {r.python: r for r in runs}
    assert by_python["3.11"].result == by_python["3.13"].result == "pass", runs
    assert '"ok": true' in by_python["3.11"].detail  # the op registered, its CPU path equal to the reference
    record = Manifest(dist / "manifest.json").get(X86)["smoke"]
    assert record["sha256"] == Manifest(dist / "manifest.json").get(X86)["sha256"]


@pytest.mark.slow
def test_the_cross_built_wheel_passes_with_torch_in_clean_aarch64_containers_under_qemu(torch_wheels):
    """PyTorch's aarch64 build needs QEMU >= 10 (the engine registers it); several minutes per Python."""
    m, dist, _ = torch_wheels
    runs = smoke.smoke(m, make_plan(m, Selection(arch=("aarch64",))), dist)
    by_python = {r.python: r for r in runs}
    assert by_python["3.11"].result == by_python["3.13"].result == "pass", runs
    assert all('"ok": true' in r.detail for r in by_python.values() if r.result == "pass")


def _build_per_python(tmp_path_factory, request, mode: BuildMode) -> tuple[dict, Path]:
    root = _project(tmp_path_factory, request, f"per-python-{mode.value}", per_python=True)
    m = load_matrix(root / "matrix.toml")
    (record,) = wheels.build(m, make_plan(m, Selection(arch=("aarch64",))), root, root / "dist", mode=mode)
    return record, root


def test_a_per_python_extension_cross_compiles_with_the_target_s_suffix_and_tags(engine_up, tmp_path_factory,
                                                                                request, tmp_path):
    record, root = _build_per_python(tmp_path_factory, request, BuildMode.CROSS)
    assert record["build_mode"] == "cross"
    assert record["file"] == "saxpy_torch-0.1.0+cu130-cp311-cp311-manylinux_2_34_aarch64.whl"
    (obj,) = record["audit"]["objects"]
    # Named for aarch64 CPython 3.11, not for the x86_64 interpreter that ran the build.
    assert obj["name"] == "saxpy_torch/_C.cpython-311-aarch64-linux-gnu.so" and not obj["missing"]
    with _extension(root / "dist", record, tmp_path).open("rb") as f:
        assert ELFFile(f)["e_machine"] == "EM_AARCH64"


@pytest.mark.slow
def test_the_per_python_cross_wheel_matches_its_emulated_twin_and_passes_under_qemu(engine_up, tmp_path_factory,
                                                                                    request, aarch64_emulation_off):
    """The emulated build compiles against torch's headers under QEMU: minutes. The cross one runs with the
    kernel's QEMU handler off, so nothing in it was emulated; then it is smoke-tested with torch under QEMU."""
    with aarch64_emulation_off():
        cross, root = _build_per_python(tmp_path_factory, request, BuildMode.CROSS)
    emulated, _ = _build_per_python(tmp_path_factory, request, BuildMode.EMULATED)
    print(f"per-Python aarch64 wheel: cross {cross['build_seconds']} s, emulated {emulated['build_seconds']} s")
    assert (cross["build_mode"], emulated["build_mode"]) == ("cross", "emulated")
    assert cross["file"] == emulated["file"]
    assert cross["audit"]["objects"] == emulated["audit"]["objects"]
    m = load_matrix(root / "matrix.toml")
    (run,) = smoke.smoke(m, make_plan(m, Selection(arch=("aarch64",))), root / "dist")
    assert (run.python, run.result) == ("3.11", "pass"), run
    assert '"ok": true' in run.detail  # the probe line named aarch64: what ran is what was meant
