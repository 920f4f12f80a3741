"""Static package indexes: one channel per CUDA line and one variants index, as PyTorch and vLLM serve them.

Each channel is a tree of files that any web server or object store can serve:
``<root>/<channel>/simple/index.html`` lists the projects, ``<root>/<channel>/simple/<project>/`` holds the
wheels, their PEP 658 metadata files, and the project page as PEP 503 HTML (``index.html``) and PEP 691 JSON
(``index.json``), both written by ``simple-repository``'s serializers. The variants index also holds each
version's ``<name>-<version>-variants.json`` (PEP 825), merged by ``variantlib``.

rclone copies the tree to its root, a local directory or any remote it knows (S3, GCS, …, configured
through ``RCLONE_CONFIG_*`` variables, never arguments): files first, with ``--immutable`` (a file already
there with other content is refused, never overwritten), then the pages that list them. What a channel
holds is read back from its own ``index.json``, so a re-publish sends nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name, parse_wheel_filename
from simple_repository import model, parser, serializer
from variantlib.constants import VARIANT_DIST_INFO_FILENAME
from variantlib.variant_dist_info import VariantDistInfo

from . import settings, stamp, tools
from .errors import PublishError
from .matrix import Matrix

VARIANTS = "variants"
_API = model.Meta("1.0")
_JSON = serializer.SerializerJsonV1()
_HTML = serializer.SerializerHtmlV1()


@dataclasses.dataclass(frozen=True)
class Channel:
    """One static index: ``cu130`` (a CUDA line's labelled wheels) or ``variants``."""

    name: str
    root: str  # rclone destination of every channel: a local directory or remote:path
    url: str  # the channels' root URL that clients read

    @property
    def simple_url(self) -> str:
        return f"{self.url.rstrip('/')}/{self.name}/simple/"

    def _dest(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), self.name, "simple", *parts])


def root(m: Matrix, state: Path) -> str:
    """Where channels are written: ``[publish] channel-root``, else the directory in ``state`` that the engine
    serves."""
    return m.publish.channel_root or str(state / "channels")


def local_root(m: Matrix, state: Path) -> Path | None:
    """The channel root when it is a directory on this machine (served by the engine), else None."""
    return None if ":" in root(m, state) else Path(root(m, state))


def channel(m: Matrix, name: str) -> Channel:
    return Channel(name=name, root=root(m, settings.state_dir()), url=m.publish.channel_url)


def held(ch: Channel, project: str) -> dict[str, str]:
    """filename -> sha256 of what the channel lists for ``project`` (nothing yet: empty)."""
    return {f.filename: f.hashes.get("sha256", "") for f in _page(ch, canonicalize_name(project)).files}


def publish(ch: Channel, project: str, files: dict[Path, str]) -> list[str]:
    """Add ``files`` (wheel -> its sha256) to the channel's page of ``project``; return the names sent.

    A file the channel lists with the same sha256 is skipped; with another, the whole publish is refused
    before anything is sent.
    """
    project = canonicalize_name(project)
    page = _page(ch, project)
    listed = {f.filename: f.hashes.get("sha256", "") for f in page.files}
    for path, digest in files.items():
        if listed.get(path.name, digest) != digest:
            raise PublishError([f"{ch.simple_url}{project}/{path.name} is already there with sha256 "
                                f"{listed[path.name][:16]}, not {digest[:16]}"])
    new = [path for path in files if path.name not in listed]
    if not new:
        return []
    with tempfile.TemporaryDirectory(prefix="channel-") as tmp:
        files_dir, pages_dir = Path(tmp) / "files", Path(tmp) / "pages"
        files_dir.mkdir()
        entries = list(page.files)
        for path in new:
            metadata = _core_metadata(path)
            shutil.copyfile(path, files_dir / path.name)
            _write(files_dir / f"{path.name}.metadata", metadata)
            entries.append(_entry(path.name, files[path], metadata))
        if ch.name == VARIANTS:
            entries = _with_variants_json(ch, project, entries, new, pages_dir)
        entries.sort(key=lambda f: f.filename)
        detail = model.ProjectDetail(meta=_API, name=project, files=tuple(entries))
        _write(pages_dir / "index.html", _HTML.serialize_project_page(detail).encode())
        _write(pages_dir / "index.json", _JSON.serialize_project_page(detail).encode())
        _rclone(["copy", "--immutable", files_dir, ch._dest(project)])
        _rclone(["copy", pages_dir, ch._dest(project)])
        _list_project(ch, project, Path(tmp) / "list")
    return [p.name for p in new]


def _page(ch: Channel, project: str) -> model.ProjectDetail:
    text = _cat(ch._dest(project, "index.json"))
    if text is None:
        return model.ProjectDetail(meta=_API, name=project, files=())
    return parser.parse_json_project_page(text)


def _list_project(ch: Channel, project: str, folder: Path) -> None:
    """The channel's project list, with ``project`` in it."""
    text = _cat(ch._dest("index.json"))
    names = {p.name for p in parser.parse_json_project_list(text).projects} if text else set()
    if project in names:
        return
    listing = model.ProjectList(meta=_API, projects=frozenset(
        model.ProjectListElement(name=n) for n in names | {project}))
    _write(folder / "index.html", _HTML.serialize_project_list(listing).encode())
    _write(folder / "index.json", _JSON.serialize_project_list(listing).encode())
    _rclone(["copy", folder, ch._dest()])


def _with_variants_json(ch: Channel, project: str, entries: list[model.File], new: list[Path],
                        pages_dir: Path) -> list[model.File]:
    """Each version's ``<name>-<version>-variants.json``: the one the index holds, merged with the variant.json
    of every new variant wheel of that version."""
    by_version: dict[str, list[Path]] = {}
    for path in new:
        by_version.setdefault(str(parse_wheel_filename(stamp.base(path.name))[1]), []).append(path)
    for version, wheels in sorted(by_version.items()):
        name = f"{project.replace('-', '_')}-{version}-variants.json"
        text = _cat(ch._dest(project, name))
        merged = VariantDistInfo(text.encode()) if text else None
        for path in wheels:
            label = path.stem.rsplit("-", 1)[1]
            with zipfile.ZipFile(path) as z:
                info = next(n for n in z.namelist() if n.endswith(f".dist-info/{VARIANT_DIST_INFO_FILENAME}"))
                one = VariantDistInfo(z.read(info), label)
            if merged is None:
                merged = one
            else:
                merged.merge(one)
        data = merged.to_str().encode()
        _write(pages_dir / name, data)
        entries = [e for e in entries if e.filename != name] + [_entry(name, _sha256(data), None)]
    return entries


def _entry(filename: str, digest: str, metadata: bytes | None) -> model.File:
    return model.File(filename=filename, url=filename, hashes={"sha256": digest},
                      dist_info_metadata={"sha256": _sha256(metadata)} if metadata is not None else None,
                      requires_python=_requires_python(metadata) if metadata else None)


def _core_metadata(wheel: Path) -> bytes:
    """The wheel's METADATA, served beside it as ``<file>.metadata`` (PEP 658)."""
    with zipfile.ZipFile(wheel) as z:
        return z.read(next(n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")))


def _requires_python(metadata: bytes) -> str | None:
    return parse_email(metadata)[0].get("requires_python")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _cat(dest: str) -> str | None:
    """A file of the channel tree, or None where there is none."""
    proc = tools.run(["rclone", "cat", dest], capture=True, check=False, quiet=True)
    if proc.returncode == 0:
        return proc.stdout
    if "not found" in proc.stderr or "doesn't exist" in proc.stderr or "no such file" in proc.stderr.lower():
        return None
    raise PublishError([f"rclone could not read {dest}: {proc.stderr.strip()[-300:]}"])


def _rclone(args: list) -> None:
    proc = tools.run(["rclone", *args], capture=True, check=False)
    if proc.returncode != 0:
        raise PublishError([f"rclone {args[0]} to {args[-1]} failed: {proc.stderr.strip()[-300:]}"])
