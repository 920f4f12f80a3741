"""The CUDA 13.0 support table against the real nvcc on this machine."""

from __future__ import annotations

import re

import pytest

from toolkit import cuda, tools


def _nvcc_13_0() -> str | None:
    nvcc = tools.which("nvcc")
    if nvcc is None:
        return None
    version = tools.run([nvcc, "--version"], capture=True, quiet=True).stdout
    return nvcc if re.search(r"release 13\.0\b", version) else None


def test_cuda_13_0_table_matches_nvcc_list_gpu_code():
    nvcc = _nvcc_13_0()
    if nvcc is None:
        pytest.skip("no CUDA 13.0 nvcc on PATH")
    listed = tools.run([nvcc, "--list-gpu-code"], capture=True, quiet=True).stdout.split()
    plain = {sm for sm in cuda.CUDA_SASS["13.0"] if sm.isdigit()}
    assert sorted(listed) == sorted(f"sm_{sm}" for sm in plain)
    assert sorted(plain, key=int) == ["75", "80", "86", "87", "88", "89", "90", "100", "103", "110", "120", "121"]
