"""The CUDA 13.0 support table against the real nvcc on this machine."""

from __future__ import annotations

import pytest

from toolkit import cuda, hostinfo


def test_cuda_13_0_table_matches_nvcc_list_gpu_code():
    nvcc = next((n for n in hostinfo.nvcc_compilers() if n.version == "13.0"), None)
    if nvcc is None:
        pytest.skip("no CUDA 13.0 nvcc on PATH or under /usr/local/cuda*")
    plain = {sm for sm in cuda.CUDA_SASS["13.0"] if sm.isdigit()}
    assert sorted(nvcc.gpu_code) == sorted(f"sm_{sm}" for sm in plain)
    assert sorted(plain, key=int) == ["75", "80", "86", "87", "88", "89", "90", "100", "103", "110", "120", "121"]
