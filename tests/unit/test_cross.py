from __future__ import annotations

from pathlib import Path

import pytest

from toolkit import cross, matrix, render, sccache
from toolkit.errors import ConfigError
from toolkit.matrix import Arch, BuildMode
from toolkit.plan import Selection, make_plan

X86, ARM = Arch.X86_64, Arch.AARCH64


def _crossable(text: str) -> str:
    """Matrix text with the CUDA runtime wheel among 13.0's toolchain: its aarch64 wheels can cross."""
    return text.replace('["nvidia-cuda-nvcc==13.0.*"]', '["nvidia-cuda-nvcc==13.0.*", "nvidia-cuda-runtime==13.0.*"]')


@pytest.fixture
def crossable(small_matrix, write_matrix):
    return matrix.load_matrix(write_matrix(_crossable(small_matrix)))


def _wheel(m, arch: Arch, version: str):
    plan = make_plan(m, Selection(arch=(arch.value,), cuda=(version,), framework=("none",)))
    return plan.wheels[0]


@pytest.mark.parametrize("arch, version, host, override, expected", [
    (ARM, "13.0", X86, None, BuildMode.CROSS),  # auto: the PyPI toolchain has an aarch64 cudart
    (ARM, "12.8", X86, None, BuildMode.EMULATED),  # auto: a CUDA base image cannot cross
    (ARM, "13.0", X86, BuildMode.EMULATED, BuildMode.EMULATED),
    (X86, "13.0", X86, None, BuildMode.NATIVE),
    (ARM, "13.0", ARM, BuildMode.CROSS, BuildMode.NATIVE),  # on its own arch a wheel is built natively
    (X86, "13.0", ARM, None, BuildMode.EMULATED),  # cross targets aarch64 only
])
def test_build_mode_resolution(crossable, arch, version, host, override, expected):
    assert cross.resolve(crossable, _wheel(crossable, arch, version), host, override) is expected


def test_native_elsewhere_and_an_impossible_cross_are_config_errors(crossable):
    with pytest.raises(ConfigError, match=r"build-mode\.aarch64: 'native' builds only on an aarch64 host"):
        cross.resolve(crossable, _wheel(crossable, ARM, "13.0"), X86, BuildMode.NATIVE)
    with pytest.raises(ConfigError, match=r"'cross' cannot build wheel:saxpy:cu128:aarch64: CUDA 12\.8 has no "
                                          r"aarch64 CUDA runtime"):
        cross.resolve(crossable, _wheel(crossable, ARM, "12.8"), X86, BuildMode.CROSS)


def test_a_per_python_wheel_crosses_for_the_builder_s_python_only(small_matrix, write_matrix):
    text = _crossable(small_matrix).replace('path = "examples/saxpy"', 'path = "examples/saxpy"\nabi3 = false')
    m = matrix.load_matrix(write_matrix(text.replace('python = ["3.10", "3.12"]', 'python = ["3.11", "3.12"]')))
    plan = make_plan(m, Selection(arch=("aarch64",), cuda=("13.0",), framework=("none",)))
    by_python = {w.pythons: w for w in plan.wheels}  # one per Python now
    # The builder has Debian's arm64 headers and sysconfig data of its own Python (3.11) only.
    assert cross.resolve(m, by_python[("3.11",)], X86) is BuildMode.CROSS
    assert cross.resolve(m, by_python[("3.12",)], X86) is BuildMode.EMULATED
    with pytest.raises(ConfigError, match=r"builder's Python \(3\.11\) only, this one is for 3\.12; allowed here"):
        cross.resolve(m, by_python[("3.12",)], X86, BuildMode.CROSS)


def test_cross_files_are_rendered_for_crossable_lines_only(crossable, small_matrix, write_matrix):
    out = {o.path: o.text for o in render.outputs(crossable)}
    dockerfile = out["container/Dockerfile.cross-builder-cu130"]
    assert "container/Dockerfile.cross-builder-cu128" not in out
    builder = render.builder_image(crossable, "13.0", out["container/Dockerfile.wheel-builder-cu130"])
    assert f"ARG BUILDER_IMAGE={builder}\nFROM ${{BUILDER_IMAGE}}" in dockerfile
    assert 'ARG CROSS_RUNTIME="nvidia-cuda-runtime==13.0.*"' in dockerfile
    assert "g++-aarch64-linux-gnu libpython3.11-dev:arm64" in dockerfile
    assert "ln -s /opt/cross/aarch64/nvidia/cu13/lib ${CUDA_HOME}/targets/sbsa-linux/lib" in dockerfile
    assert "set(CMAKE_CUDA_HOST_COMPILER aarch64-linux-gnu-g++)" in out[render.CROSS_TOOLCHAIN]
    assert "set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env)" in out[render.CROSS_TOOLCHAIN]
    x86_only = matrix.load_matrix(write_matrix(small_matrix.replace('arch = ["x86_64", "aarch64"]',
                                                                    'arch = ["x86_64"]')))
    assert not any("cross" in o.path for o in render.outputs(x86_only))


def test_cross_command_builds_retags_and_repairs_from_a_read_only_source(crossable, tmp_path):
    cache = sccache.Session(tmp_path / "bin", tmp_path / "cache", tmp_path / "settings", tmp_path / "stats")
    argv = cross.command(crossable, "13.0", "builder:x", tmp_path / "src", tmp_path / "out", tmp_path,
                         Path("/etc/ca.pem"), {"SOURCE_DATE_EPOCH": "1"}, cache)
    assert argv[:4] == ["docker", "run", "--rm", "--platform=linux/amd64"]
    assert f"--volume={tmp_path / 'src'}:/project:ro" in argv
    assert "--volume=/etc/ca.pem:/run/secrets/ca:ro" in argv
    assert {"--env=CMAKE_TOOLCHAIN_FILE=/toolchain.cmake", "--env=TOOLKIT_LOCAL_VERSION=cu130",
            "--env=SOURCE_DATE_EPOCH=1", "--env=_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__linux_aarch64-linux-gnu",
            "--env=CMAKE_ARGS=-DCMAKE_POLICY_DEFAULT_CMP0190=NEW"} <= set(argv)
    script = argv[-1]
    assert script.index(cache.start()) < script.index("python -m build --installer=uv --wheel") \
        < script.index(cache.report()) < script.index("--platform-tag linux_aarch64") \
        < script.index("auditwheel repair --exclude libcuda.so.1")
    assert f"--volume={tmp_path / 'cache'}:{sccache.CACHE}" in argv
    assert f"--env=CMAKE_CXX_COMPILER_LAUNCHER={sccache.LAUNCHER}" in argv
