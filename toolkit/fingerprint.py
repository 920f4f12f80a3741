"""Input fingerprints: an artifact whose inputs hash to the recorded value is up to date.

A wheel's inputs are its plan entry (matrix cell, flags, toolchain), the rendered
files that build it and its source tree; an image's are its plan entry, its
Dockerfile, the wheels it contains (by sha256) and its base images' digests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import render
from .matrix import BuildMode
from .plan import ImageArtifact, WheelArtifact, artifact_json

_SKIP_DIRS = {".git", "build", "dist", "__pycache__", ".nox", ".venv"}


def source_tree(root: Path) -> str:
    """The hash of every file under ``root`` but build outputs, caches and VCS data inside it.

    Only the parts below ``root`` are matched: a checkout under /home/me/build/ still counts its sources.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not _SKIP_DIRS & set(relative.parts):
            digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def wheel(w: WheelArtifact, root: Path, mode: BuildMode, base_digests: list[str]) -> str:
    """The fingerprint of a wheel's inputs, the build mode (and so the files it uses) and the digest of
    its base image (``base_digests``, which the caller asked the registry for) among them."""
    paths = [render.cibuildwheel_config(w.build.cuda), render.builder_dockerfile(w.build.cuda)]
    if mode is BuildMode.CROSS:
        paths += [render.cross_dockerfile(w.build.cuda), render.CROSS_TOOLCHAIN]
    files = [(root / p).read_text() for p in paths]
    return _hash(artifact_json(w), mode.value, files, source_tree(root / w.path), *base_digests)


def image(i: ImageArtifact, root: Path, wheel_sha256: list[str], base_digests: list[str]) -> str:
    """The fingerprint of an image's inputs, the sha256 of the wheels it contains and the digests of its
    build and runtime base images among them."""
    dockerfile = (root / render.image_dockerfile(i.framework)).read_text()
    return _hash(artifact_json(i), dockerfile, wheel_sha256, *base_digests)
