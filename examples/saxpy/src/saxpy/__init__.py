"""saxpy on the GPU, and which GPU code the device actually ran."""

from __future__ import annotations

from importlib.metadata import version as _version

from ._core import device_count, device_info, kernel_arch, saxpy

__version__ = _version("saxpy")
__all__ = ["__version__", "device_count", "device_info", "kernel_arch", "saxpy"]
