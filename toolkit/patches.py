"""Framework wheels with the project's patches, as Dynamo ships ``vllm==0.7.2+dynamo``.

The wheel that a framework's first requirement pins is downloaded for the image's platform (binary only, at
its runtime image's Python and glibc, from the index the images install from), the files the patches name
are taken out of it, and GNU patch applies each patch to them exactly (no fuzz; ``--dry-run`` first, so that
one that no longer applies fails naming its file and hunk). ``stamp`` writes the copy as ``V+<project>``, its
RECORD rewritten by the ``wheel`` library, and checks that only the patched files and the dist-info differ.
Downloads and patched wheels are kept in the state directory by their inputs: a second build reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from . import resolve, settings, stamp, tools
from .console import step
from .errors import BuildError, ConfigError
from .matrix import Matrix
from .plan import ImageArtifact
from .wheels import sha256

_TARGET = re.compile(r"^\+\+\+ (\S+)", re.MULTILINE)


def targets(patch: str) -> list[str]:
    """The files a unified diff changes, as paths in the wheel (``-p1``: its first component dropped)."""
    return list(dict.fromkeys(t.split("/", 1)[1] for t in _TARGET.findall(patch) if t != "/dev/null" and "/" in t))


def make(m: Matrix, image: ImageArtifact, root: Path, dist: Path) -> dict:
    """The patched wheel ``image`` installs, made (or found) and linked into ``dist``: its record."""
    original = _download(image)
    patches = [(p, (root / p).read_bytes()) for p in image.patches]
    # a download is never replaced, so its name stands for its bytes
    key = hashlib.sha256(json.dumps([original.name, *(hashlib.sha256(b).hexdigest() for _, b in patches)]).encode())
    kept = settings.state_dir() / "patched" / key.hexdigest()[:16]
    if not (kept / "record.json").is_file():
        step(f"{image.id}: applying {len(patches)} patch(es) to {original.name}")
        version = image.patched.split("==", 1)[1]
        kept.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=kept.parent) as tmp:
            files = apply(original, patches, Path(tmp), f"{m.source}: framework.{image.framework}.patches")
            wheel = stamp.patched(original, version, files, Path(tmp) / "out")
            record = {"file": wheel.name, "sha256": sha256(wheel), "from": original.name,
                      "from_sha256": sha256(original), "patches": list(image.patches),
                      "changed": stamp.content_changes(original, wheel)}
            (Path(tmp) / "out" / "record.json").write_text(json.dumps(record, indent=2) + "\n")
            shutil.rmtree(kept, ignore_errors=True)
            os.rename(Path(tmp) / "out", kept)
    record = json.loads((kept / "record.json").read_text())
    placed, made = dist / record["file"], kept / record["file"]
    dist.mkdir(parents=True, exist_ok=True)
    if not (placed.is_file() and os.path.samefile(placed, made)):  # the build context: the image copies it
        placed.unlink(missing_ok=True)
        try:
            os.link(made, placed)
        except OSError:  # another file system
            shutil.copyfile(made, placed)
    return record


def _download(image: ImageArtifact) -> Path:
    """The pinned wheel for the image's platform, from the index the images install from (kept)."""
    req = Requirement(image.requirements[0])
    python, glibc = resolve.distro(image.runtime_image_public) or ("", "")
    if not python:
        raise BuildError(f"{image.id}: the toolkit does not know the Python and glibc of {image.runtime_image} "
                         f"(it knows {', '.join(resolve.DISTROS)}), so it cannot pick the wheel to patch")
    folder = settings.state_dir() / "framework-wheels" / f"{req}-{image.build.arch.value}-py{python}-{glibc}"
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob("*.whl"))
    if not found:
        major, minor = map(int, glibc.split("."))
        # pip takes the manylinux tags a platform accepts only when they are all named
        platforms = [f"--platform=manylinux_{major}_{k}_{image.build.arch.value}" for k in range(minor, 16, -1)]
        step(f"{image.id}: downloading {req} for {image.build.platform} (Python {python}, glibc {glibc})")
        tools.run([sys.executable, "-m", "pip", "--isolated", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "--implementation=cp", f"--python-version={python}", *platforms,
                   f"--cert={settings.ca_mount()}", f"--index-url={resolve.PYPI}", f"--dest={folder}", str(req)])
        found = sorted(folder.glob("*.whl"))
    if len(found) != 1 or parse_wheel_filename(found[0].name)[0] != canonicalize_name(req.name):
        raise BuildError(f"{image.id}: expected one wheel of {req} in {folder}, found {[f.name for f in found]}")
    return found[0]


def apply(original: Path, patches: list[tuple[str, bytes]], work: Path, where: str) -> dict[str, bytes]:
    """The files ``patches`` (name, text) change, with their new bytes, after applying each in order to those
    of the wheel ``original`` (in ``work``); one that does not apply is an error naming it (``where``: its key)."""
    names = list(dict.fromkeys(t for _, text in patches for t in targets(text.decode(errors="replace"))))
    with zipfile.ZipFile(original) as z:
        held = set(z.namelist())
        for name in names:
            if name in held:
                z.extract(name, work)
    for i, (path, text) in enumerate(patches):
        for check in (True, False):
            done = tools.run(["patch", "-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch",
                              "--reject-file=-",
                              f"--directory={work}", *(["--dry-run"] if check else [])], input=text.decode(),
                             capture=True, check=False, quiet=True)
            if done.returncode:
                said = "; ".join(line.strip() for line in done.stdout.splitlines() + done.stderr.splitlines()
                                 if line.strip() and not line.startswith("patching file"))
                raise ConfigError([f"{where}[{i}]: {path} does not apply to {original.name}: {said}"])
    return {name: (work / name).read_bytes() for name in names if (work / name).is_file()}
