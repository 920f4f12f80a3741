"""Which base images keep a planned artifact from being built here: the reasons, from what registries hold."""

from __future__ import annotations

from toolkit import matrix, preflight
from toolkit.matrix import Arch

DEVEL = "nvidia/cuda:12.8.1-devel-ubuntu24.04"


def _matrix(small_matrix, write_matrix):
    text = small_matrix.replace("[mirror]", f'[bootstrap."{DEVEL}"]\nsuite = "trixie"\n'
                                'packages = ["nvidia-cuda-toolkit"]\narch = ["x86_64"]\n\n'
                                f'[mirror]\n"{DEVEL}" = "127.0.0.1:5000/mirror/cuda:12.8"')
    return matrix.load_matrix(write_matrix(text))


def test_a_recipe_that_makes_the_arch_asks_for_engine_up_and_one_that_does_not_says_why(small_matrix, write_matrix):
    m = _matrix(small_matrix, write_matrix)
    nothing = lambda ref, timeout=None: []  # noqa: E731 - neither the mirror nor the public registry has it
    assert preflight._why_unavailable(m, DEVEL, Arch.X86_64, nothing) == (
        "127.0.0.1:5000/mirror/cuda:12.8 lacks linux/amd64: run `toolkit engine up` first (it makes the mirror copy)")
    assert preflight._why_unavailable(m, DEVEL, Arch.AARCH64, nothing) == (
        f"base image {DEVEL} (linux/arm64) is neither in its mirror 127.0.0.1:5000/mirror/cuda:12.8 nor reachable "
        "here, and its [bootstrap] recipe makes it for x86_64 only "
        "(Debian trixie has nvidia-cuda-toolkit for no other)")
    public = lambda ref, timeout=None: ["linux/arm64"] if ref == DEVEL else []  # noqa: E731
    assert "run `toolkit engine up` first" in preflight._why_unavailable(m, DEVEL, Arch.AARCH64, public)
