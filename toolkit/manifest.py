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

from .errors import ConfigError

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


def slot(where: str, python: str) -> tuple[str, str]:
    """Where a smoke run belongs: the host, an interpreter of the wheel's glibc floor, or the containers (an
    untested Python holds its container slot)."""
    return (where if where in ("host", "floor") else "container", python)


def merge(fragments: list[Path]) -> dict[str, dict[str, Any]]:
    """The records of a release's fragments (one per CI job, or slice), joined into one set.

    Records of different artifacts combine; records of one artifact combine when they name the same build
    (sha256/digest), their smoke runs side by side by place and Python (a host GPU run beside container
    runs). One artifact built with different content in two fragments is a conflict naming both.
    """
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    problems = []
    for path in fragments:
        try:
            records = json.loads(path.read_text())["artifacts"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: not a release manifest ({exc})")
            continue
        for artifact_id, record in records.items():
            if artifact_id not in merged:
                merged[artifact_id], origin[artifact_id] = record, path
                continue
            key, ident = identity(record)
            if merged[artifact_id].get(key) != ident:
                problems.append(f"{artifact_id}: {origin[artifact_id]} records {key} {merged[artifact_id].get(key)}, "
                                f"{path} records {key} {ident}: two different builds of one artifact")
                continue
            merged[artifact_id] = _joined(merged[artifact_id], record)
    if problems:
        raise ConfigError(problems)
    return merged


def merged_runs(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Smoke runs of one build side by side: a later run replaces only an earlier one of the same slot."""
    runs = {slot(r["where"], r["python"]): r for r in earlier + later}
    return [runs[k] for k in sorted(runs)]


def _joined(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two records of the same build as one; their valid smoke runs kept side by side."""
    joined = {**first, **second}
    tested = [s for s in (first, second) if smoke_runs(s)]
    if tested:
        joined["smoke"] = {**tested[0]["smoke"], **tested[-1]["smoke"],
                           "at": max(s["smoke"]["at"] for s in tested),
                           "runs": merged_runs(smoke_runs(first), smoke_runs(second))}
    return joined


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


def published_to(record: dict) -> str:
    """Where an artifact was published: an image's tags, a wheel's channels (or, before channels, its index)."""
    published = record.get("published") or {}
    return ", ".join(published.get("tags") or published.get("files") or filter(None, [published.get("index")]))
