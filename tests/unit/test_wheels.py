from __future__ import annotations

import zipfile

import pytest
from wheel.wheelfile import WheelFile

from toolkit import matrix, plan, wheels
from toolkit.errors import BuildError


@pytest.fixture
def small(write_matrix):
    return matrix.load_matrix(write_matrix())


def test_abi3_wheels_build_with_the_builder_python(small):
    w = plan.make_plan(small, plan.Selection(cuda=("13.0",), arch=("aarch64",))).wheels[0]
    assert wheels.build_selector(small, w) == "cp311-*"
    assert w.python_tag == "cp310-abi3"


def test_non_abi3_needs_a_matching_interpreter(small_matrix, write_matrix):
    text = small_matrix.replace('path = "examples/saxpy"', 'path = "examples/saxpy"\nabi3 = false')
    selection = plan.Selection(cuda=("13.0",), python=("3.12",), arch=("x86_64",))
    w = plan.make_plan(matrix.load_matrix(write_matrix(text)), selection).wheels[0]
    with pytest.raises(BuildError, match=r"only Python 3\.11; set cuda\.\"13\.0\"\.wheel-image"):
        wheels.build_selector(matrix.load_matrix(write_matrix(text)), w)
    text = text.replace('local-version = "cu130"', 'local-version = "cu130"\nwheel-image = "manylinux_2_28"')
    managed = matrix.load_matrix(write_matrix(text))
    assert wheels.build_selector(managed, plan.make_plan(managed, selection).wheels[0]) == "cp312-*"


def test_oversized_wheel_lists_its_largest_files(small, tmp_path):
    w = plan.make_plan(small, plan.Selection(cuda=("13.0",), arch=("x86_64",))).wheels[0]
    wheel = tmp_path / "big.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("saxpy/_core.abi3.so", b"\1" * 2_000_000)
        zf.writestr("saxpy/__init__.py", b"")
    small_limit = type(w)(**{**w.__dict__, "max_size_mb": 1})
    with pytest.raises(BuildError, match=r"over the 1 MB limit of package\.saxpy\.max-size-mb; largest inside: "
                                         r"saxpy/_core\.abi3\.so \(2\.0 MB\)"):
        wheels.check_size(small_limit, wheel)
    wheels.check_size(w, wheel)


@pytest.mark.parametrize("filename, message", [
    ("saxpy-1.2.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl", None),
    # an outside project with a static version: the file does not carry the release's version and label
    ("saxpy-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl", r"its version is 0\.1\.0, the plan's 1\.2\.0\+cu130"),
    ("saxpy-1.2.0+cu130-cp39-abi3-manylinux_2_34_x86_64.whl",
     r"its Python tag is cp39-abi3, the plan's cp310-abi3: .*wheel\.py-api = \"cp310\""),
    ("saxpy_ext-1.2.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl", r"the distribution is 'saxpy-ext'"),
])
def test_a_built_wheel_must_be_the_planned_one(filename, message, small):
    w = plan.make_plan(small, plan.Selection(cuda=("13.0",), arch=("x86_64",))).wheels[0]
    if message is None:
        wheels.check_built_name(w, filename)
    else:
        with pytest.raises(BuildError, match=message):
            wheels.check_built_name(w, filename)


def _wheel(folder, filename, version):
    """A small valid wheel of ``version`` (RECORD written by the wheel library)."""
    folder.mkdir(exist_ok=True)
    with WheelFile(folder / filename, "w") as whl:
        whl.writestr("saxpy/__init__.py", b"X = 1\n")
        whl.writestr(f"saxpy-{version}.dist-info/METADATA",
                     f"Metadata-Version: 2.4\nName: saxpy\nVersion: {version}\n".encode())
        whl.writestr(f"saxpy-{version}.dist-info/WHEEL", b"Wheel-Version: 1.0\nTag: cp310-abi3-manylinux_2_34_x86_64\n")
    return folder / filename


def test_a_static_version_without_the_label_gets_it_stamped_on(small, tmp_path):
    w = plan.make_plan(small, plan.Selection(cuda=("13.0",), arch=("x86_64",))).wheels[0]
    static = _wheel(tmp_path / "built", "saxpy-1.2.0-cp310-abi3-manylinux_2_34_x86_64.whl", "1.2.0")
    labelled = wheels.label(w, static, tmp_path / "out")
    assert labelled.name == "saxpy-1.2.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl"
    wheels.check_built_name(w, labelled.name)
    with WheelFile(labelled) as whl:
        assert "Version: 1.2.0+cu130" in whl.read("saxpy-1.2.0+cu130.dist-info/METADATA").decode()
        assert whl.read("saxpy/__init__.py") == b"X = 1\n"
    # a project that reads the label, or one that built another version, is left as it is (and checked)
    for filename, version in (("saxpy-1.2.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl", "1.2.0+cu130"),
                              ("saxpy-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl", "0.1.0")):
        other = _wheel(tmp_path / version, filename, version)
        assert wheels.label(w, other, tmp_path / "unused") == other
