"""The CUDA 13.0 support table against the real nvcc that builds the wheels."""

from __future__ import annotations

import pytest

from toolkit import cuda, render
from toolkit.engine import docker

pytestmark = pytest.mark.integration


def test_cuda_13_0_table_matches_nvcc_list_gpu_code(built_wheels, repo_matrix, registry_cred, request):
    # The CUDA 13.0 wheel builder's nvcc (PyPI's nvidia-cuda-nvcc): present wherever the wheels are built,
    # so this comparison runs in every test run instead of skipping on hosts without a CUDA install.
    dockerfile = request.config.rootpath / render.builder_dockerfile("13.0")
    image = render.builder_image(repo_matrix, "13.0", dockerfile.read_text())
    docker.pull(image, platform="linux/amd64", cred=registry_cred)
    listed = docker.run(image, ["nvcc", "--list-gpu-code"], platform="linux/amd64").split()
    plain = {sm for sm in cuda.CUDA_SASS["13.0"] if sm.isdigit()}
    assert sorted(listed) == sorted(f"sm_{sm}" for sm in plain)
    assert sorted(plain, key=int) == ["75", "80", "86", "87", "88", "89", "90", "100", "103", "110", "120", "121"]
