"""The release manifest: one JSON file that every stage reads and records into.

Records are keyed by artifact id; each holds what was built (file, sha256,
digests), how it was audited and smoke-tested, and where it was published.
A smoke or publish record names the sha256/digest it applies to, so a rebuilt
artifact is never covered by an old result.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def now() -> str:
    """UTC time stamp for records."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def identity(record: dict[str, Any]) -> tuple[str, str]:
    """The key and value that name exactly what a record holds: a wheel's sha256, an image's digest."""
    key = "digest" if record.get("kind") == "image" else "sha256"
    return key, record.get(key, "")


def smoke_runs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded smoke runs that tested this very build (the smoke record names the same identity)."""
    smoke = record.get("smoke") or {}
    key, ident = identity(record)
    return smoke.get("runs", []) if ident and smoke.get(key) == ident else []


class Manifest:
    """Read-modify-write access to ``dist/manifest.json``; :meth:`save` writes atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            self.data = {"schema": SCHEMA_VERSION, "artifacts": {}}

    def get(self, artifact_id: str) -> dict[str, Any]:
        """The record of ``artifact_id``; an empty one, not stored, when there is none."""
        return self.data["artifacts"].get(artifact_id, {})

    def record(self, artifact_id: str, **fields: Any) -> None:
        """Merge ``fields`` into the artifact's record (created when absent) and save."""
        self.data["artifacts"].setdefault(artifact_id, {}).update(fields)
        self.save()

    def save(self) -> None:
        """Write the manifest atomically (a crash never leaves half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file of its own: two writers never share one (the lock in cli keeps runs apart).
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=".manifest-", delete=False) as tmp:
            try:
                tmp.write(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
                tmp.close()
                os.chmod(tmp.name, 0o644)  # a release record, not a secret (temporary files start as 0600)
                os.replace(tmp.name, self.path)
            except BaseException:  # Ctrl-C included: the manifest stays as it was, no half file beside it
                os.unlink(tmp.name)
                raise
