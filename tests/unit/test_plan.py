from __future__ import annotations

import json

import pytest

from toolkit import cli, matrix, plan
from toolkit.errors import ConfigError


@pytest.fixture
def small(write_matrix):
    return matrix.load_matrix(write_matrix())


def test_abi3_collapses_the_python_axis(small):
    p = plan.make_plan(small)
    assert [w.id for w in p.wheels] == [
        "wheel:saxpy:cu128:x86_64", "wheel:saxpy:cu130:x86_64",
        "wheel:saxpy:cu128:aarch64", "wheel:saxpy:cu130:aarch64"]
    wheel = p.wheels[1]
    assert wheel.pythons == ("3.10", "3.12")
    assert wheel.python_tag == "cp310-abi3"
    assert wheel.version == "1.2.0+cu130"


def test_non_abi3_builds_one_wheel_per_python(small_matrix, write_matrix):
    m = matrix.load_matrix(write_matrix(small_matrix.replace('path = "examples/saxpy"',
                                                             'path = "examples/saxpy"\nabi3 = false')))
    ids = [w.id for w in plan.make_plan(m, plan.Selection(cuda=("13.0",), arch=("x86_64",))).wheels]
    assert ids == ["wheel:saxpy:cu130:cp310:x86_64", "wheel:saxpy:cu130:cp312:x86_64"]


def test_images_know_platform_toolchain_flags_and_bases(small):
    p = plan.make_plan(small)
    image = next(i for i in p.images if i.id == "image:none:cu130:aarch64")
    assert image.build.platform == "linux/arm64"
    assert image.build.toolchain is matrix.Toolchain.PYPI
    assert image.build.torch_arch_list == "7.5;8.0;9.0a;12.0+PTX"
    assert image.build.cmake_architectures == "75-real;80-real;90a-real;120"
    assert image.build.build_image == "127.0.0.1:5000/mirror/debian:bookworm-slim"
    assert image.build.build_image_public == "debian:bookworm-slim"
    assert image.wheels == ("wheel:saxpy:cu130:aarch64",)
    assert image.tag == "127.0.0.1:5000/gpu-toolkit/none:1.2.0-cu130"
    assert not any(i.id.startswith("image:vllm:cu130:aarch64") for i in p.images)


def test_ids_are_unique_and_stable(small, small_matrix, write_matrix):
    # Ids key the manifest across releases: they are spelled from the cell alone, whatever the axis order,
    # and an axis value added later leaves the existing ids as they were.
    ids = [a.id for a in plan.make_plan(small).artifacts]
    assert ids == [
        "wheel:saxpy:cu128:x86_64", "wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu128:aarch64",
        "wheel:saxpy:cu130:aarch64", "image:none:cu128:x86_64", "image:none:cu130:x86_64",
        "image:vllm:cu130:x86_64", "image:none:cu128:aarch64", "image:none:cu130:aarch64"]
    assert len(ids) == len(set(ids))
    reordered = small_matrix.replace('arch = ["x86_64", "aarch64"]', 'arch = ["aarch64", "x86_64"]').replace(
        'cuda = ["12.8", "13.0"]', 'cuda = ["13.0", "12.8"]').replace('"none", "vllm"]', '"vllm", "none"]')
    assert sorted(a.id for a in plan.make_plan(matrix.load_matrix(write_matrix(reordered))).artifacts) == sorted(ids)
    grown = small_matrix.replace('python = ["3.10", "3.12"]', 'python = ["3.10", "3.12", "3.13"]')
    assert [a.id for a in plan.make_plan(matrix.load_matrix(write_matrix(grown))).artifacts] == ids


def test_framework_filter_keeps_only_the_wheels_its_images_contain(small):
    vllm = plan.make_plan(small, plan.Selection(framework=("vllm",)))
    assert vllm.wheels == () and [i.id for i in vllm.images] == ["image:vllm:cu130:x86_64"]
    none = plan.make_plan(small, plan.Selection(framework=("none",), arch=("aarch64",), cuda=("13.0",)))
    assert [a.id for a in none.artifacts] == ["wheel:saxpy:cu130:aarch64", "image:none:cu130:aarch64"]


def test_unsupported_variant_names_the_rule(small):
    expected = r"matches no cell; excluded by .*arch=aarch64 framework=vllm: vllm supports arch x86_64 only"
    with pytest.raises(ConfigError, match=expected):
        plan.make_plan(small, plan.Selection(framework=("vllm",), arch=("aarch64",)))


def test_unknown_filter_value_is_a_config_error(small, write_matrix, capsys):
    with pytest.raises(ConfigError, match=r"--arch arm64: not a value of axes\.arch.*allowed: x86_64, aarch64"):
        plan.make_plan(small, plan.Selection(arch=("arm64",)))
    assert cli.main(["--matrix", str(write_matrix()), "plan", "--cuda", "13.1"]) == 2
    assert "--cuda 13.1" in capsys.readouterr().err


def test_plan_json_carries_the_derived_flags(write_matrix, capsys):
    assert cli.main(["--matrix", str(write_matrix()), "plan", "--json", "--arch", "x86_64,aarch64",
                     "--cuda", "13.0", "--framework", "none"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu130:aarch64",
                                      "image:none:cu130:x86_64", "image:none:cu130:aarch64"]
    wheel = rows[0]
    assert wheel["kind"] == "wheel" and wheel["platform"] == "linux/amd64"
    assert wheel["torch_cuda_arch_list"] == "7.5;8.0;9.0a;12.0+PTX"
    assert "-gencode=arch=compute_120,code=compute_120" in wheel["gencode"]
    assert wheel["python_tag"] == "cp310-abi3"


def test_plan_table(write_matrix, capsys):
    assert cli.main(["--matrix", str(write_matrix()), "plan", "--cuda", "12.8"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["artifact", "platform", "python"]
    assert "wheel:saxpy:cu128:aarch64" in out and "nvidia/cuda:12.8.1-devel-ubuntu24.04" in out


def test_a_wheels_only_matrix_has_no_framework_axis(small_matrix, write_matrix):
    text = small_matrix.replace('framework = ["none", "vllm"]\n', "")
    text = text[:text.index("[[exclude]]")] + text[text.index('[cuda."13.0"]'):text.index("[framework.none]")] \
        + text[text.index("[package.saxpy]"):]
    # an include names every axis there is: no framework here
    m = matrix.load_matrix(write_matrix(text + '[[include]]\narch = "x86_64"\npython = "3.12"\ncuda = "13.0"\n'
                                               'reason = "kept"\n'))
    p = plan.make_plan(m)
    assert p.images == () and [w.id for w in p.wheels] == [
        "wheel:saxpy:cu128:x86_64", "wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu128:aarch64",
        "wheel:saxpy:cu130:aarch64"]
    assert p.wheels[1].pythons == ("3.10", "3.12")


def test_the_benchmark_s_synthetic_matrix_is_valid_and_has_1000_cells(tmp_path):
    from toolkit import bench
    from toolkit.matrix import cells

    m = matrix.load_matrix(bench.synthetic_matrix(tmp_path / "matrix.toml"))
    assert len(cells(m)) == 1000
