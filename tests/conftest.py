"""Shared test helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A small valid matrix; unit tests derive bad ones from it by replacing text.
SMALL_MATRIX = '''
[project]
name = "demo"
version = "1.2.0"

[axes]
arch = ["x86_64", "aarch64"]
python = ["3.10", "3.12"]
cuda = ["12.8", "13.0"]
framework = ["none", "vllm"]

[[exclude]]
cuda = "12.8"
framework = "vllm"
reason = "vLLM wheels target CUDA 13.0"

[cuda."13.0"]
archs = "7.5 8.0 9.0a 12.0+PTX"
toolchain = "pypi"
toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*"]
local-version = "cu130"
build-image = "debian:bookworm-slim"
runtime-image = "debian:bookworm-slim"

[cuda."12.8"]
archs = "80-real;90a-real;120"
toolchain = "image"
build-image = "nvidia/cuda:12.8.1-devel-ubuntu24.04"
runtime-image = "nvidia/cuda:12.8.1-runtime-ubuntu24.04"

[framework.none]
wheels = ["saxpy"]
module = "saxpy"

[framework.vllm]
requirements = ["vllm==0.32.0"]
module = "vllm"
arch = ["x86_64"]

[package.saxpy]
path = "examples/saxpy"
smoke = ["python", "-m", "saxpy", "--selftest"]

[mirror]
"debian:bookworm-slim" = "127.0.0.1:5000/mirror/debian:bookworm-slim"
'''


@pytest.fixture
def small_matrix() -> str:
    """The text of a small valid matrix."""
    return SMALL_MATRIX


@pytest.fixture
def write_matrix(tmp_path: Path):
    """Write matrix text to tmp_path/matrix.toml and return its path."""

    def write(text: str = SMALL_MATRIX) -> Path:
        package = tmp_path / "examples" / "saxpy"  # [package.saxpy] must name a real Python package
        package.mkdir(parents=True, exist_ok=True)
        (package / "pyproject.toml").touch()
        path = tmp_path / "matrix.toml"
        path.write_text(text)
        return path

    return write


@dataclasses.dataclass(frozen=True)
class Patchable:
    """A small wheel, the original text of one of its files, and a patch that changes that file."""

    wheel: Path
    version_py: str
    patch: str


@pytest.fixture
def patchable(tmp_path) -> Patchable:
    from wheel.wheelfile import WheelFile

    version_py = "__version__ = '1.0'\nGREETING = 'hello'\n"
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as w:
        w.writestr("demo/__init__.py", "from ._version import __version__\n")
        w.writestr("demo/_version.py", version_py)
        w.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        w.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    patch = ("Say who patched it.\n\n--- a/demo/_version.py\n+++ b/demo/_version.py\n@@ -1,2 +1,2 @@\n"
             "-__version__ = '1.0'\n+__version__ = '1.0+proj'\n GREETING = 'hello'\n")
    return Patchable(wheel=path, version_py=version_py, patch=patch)
