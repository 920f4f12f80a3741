"""scikit-build-core metadata provider: the version with the CUDA line's label, and the torch it was built against.

A TORCH_LIBRARY extension links against one torch release's C++ ABI, so the wheel requires exactly that
release: read from the unpacked torch wheel the build links against (TORCH_ROOT, set by the toolkit's
builder), never written twice.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

VERSION = "0.1.0"


def _torch_version() -> str:
    root = os.environ.get("TORCH_ROOT", "")
    found = re.search(r"^__version__ = '([^'+]+)", (Path(root) / "version.py").read_text(), re.M) if root else None
    if not found:
        raise ValueError(f"TORCH_ROOT={root!r}: no torch/version.py there (the unpacked torch wheel to build against)")
    return found.group(1)


def dynamic_metadata(field: str, settings: dict | None = None) -> str | list[str]:
    """scikit-build-core's provider hook: ``version`` or ``dependencies``."""
    if field == "dependencies":
        return [f"torch=={_torch_version()}"]
    if field != "version":
        raise ValueError(f"only version and dependencies are provided here, not {field!r}")
    label = os.environ.get("TOOLKIT_LOCAL_VERSION", "")
    return f"{VERSION}+{label}" if label else VERSION
