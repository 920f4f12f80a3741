"""saxpy as a PyTorch custom op (``torch.ops.saxpy_torch``), with CPU and CUDA kernels."""

from __future__ import annotations

from importlib.metadata import version as _version

import torch

from . import _C  # noqa: F401  importing it registers the ops with torch

__version__ = _version("saxpy-torch")
OPS = torch.ops.saxpy_torch


def saxpy(a: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``a * x + y`` on the device of ``x`` and ``y`` (float32)."""
    return OPS.saxpy(a, x, y)


def kernel_arch() -> int:
    """The ``__CUDA_ARCH__`` the current GPU runs this extension's code with."""
    return OPS.kernel_arch()


def registered() -> dict[str, bool]:
    """Which dispatch keys have a saxpy kernel (what TORCH_LIBRARY_IMPL registered)."""
    return {key: torch._C._dispatch_has_kernel_for_dispatch_key("saxpy_torch::saxpy", key) for key in ("CPU", "CUDA")}


__all__ = ["OPS", "__version__", "kernel_arch", "registered", "saxpy"]
