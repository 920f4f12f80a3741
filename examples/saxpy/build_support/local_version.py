"""scikit-build-core metadata provider: the release version plus a CUDA local label.

The toolkit passes the label of the CUDA line (e.g. ``cu130``) in TOOLKIT_LOCAL_VERSION,
so one source tree gives ``0.1.0+cu130`` and ``0.1.0+cu129`` wheels.
"""

from __future__ import annotations

import os

VERSION = "0.1.0"


def dynamic_metadata(field: str, settings: dict | None = None) -> str:
    """scikit-build-core's provider hook for ``field`` (only the version is provided)."""
    if field != "version":
        raise ValueError(f"only the version is provided here, not {field!r}")
    label = os.environ.get("TOOLKIT_LOCAL_VERSION", "")
    return f"{VERSION}+{label}" if label else VERSION
