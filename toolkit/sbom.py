"""CycloneDX 1.6 SBOMs (cyclonedx-python-lib; each checked against the schema before it is used).

Three kinds: the release's (its wheels and images, by standard purls), a wheel's (its declared
dependencies and the libraries auditwheel vendored into it) and an image's (its Debian packages, from
the dpkg status, and the Python distributions of its site-packages, read from the image's files).
"""

from __future__ import annotations

import email.parser
import hashlib
import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL
from packaging.metadata import Metadata
from packaging.utils import canonicalize_name, parse_wheel_filename

from . import stamp, tools
from .engine import docker
from .errors import PublishError
from .matrix import Matrix

COSIGN_TYPE = "cyclonedx"  # the predicate type cosign attests an SBOM under
_DIST_INFO = re.compile(r"(?:^|/)(?:site|dist)-packages/[^/]+\.dist-info/METADATA$")
_DPKG = {"var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release"}
_LOCATION = "gpu-toolkit:location"


def _text(bom: Bom, what: str) -> str:
    # Imported here: jsonschema compiles its format grammars on import (1.5 s), which every command would pay.
    from cyclonedx.validation.json import JsonStrictValidator

    text = JsonV1Dot6(bom).output_as_string(indent=2)
    invalid = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if invalid:
        raise PublishError([f"the SBOM of {what} does not match the CycloneDX 1.6 schema: {invalid}"])
    return text + "\n"


def _sha256(hexdigest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=hexdigest)]


def _wheel_component(r: dict) -> Component:
    name, version = parse_wheel_filename(stamp.base(r["file"]))[:2]
    return Component(type=ComponentType.LIBRARY, name=name, version=str(version), bom_ref=r["id"],
                     purl=PackageURL(type="pypi", name=name, version=str(version), qualifiers={"file_name": r["file"]}),
                     hashes=_sha256(r["sha256"]))


def _image_component(r: dict) -> Component:
    repo, _, tag = r["tag"].rpartition(":")
    return Component(type=ComponentType.CONTAINER, name=repo, version=tag, bom_ref=r["id"],
                     purl=PackageURL(type="oci", name=repo.rsplit("/", 1)[-1], version=r["digest"], qualifiers={
                         "repository_url": repo, "arch": r["platform"].split("/", 1)[1], "tag": tag}),
                     hashes=_sha256(r["digest"].removeprefix("sha256:")))


def write_release(m: Matrix, wheels: list[dict], images: list[dict], dist: Path) -> Path:
    """``sbom.cdx.json``: the release made of its wheels and images (standard purls, PEP 503 names,
    each artifact's sha256)."""
    bom = Bom()
    bom.metadata.component = Component(type=ComponentType.APPLICATION, name=m.project.name,
                                       version=m.project.version, bom_ref=m.project.name)
    for r in wheels:
        bom.components.add(_wheel_component(r))
    for r in images:
        bom.components.add(_image_component(r))
    bom.register_dependency(bom.metadata.component, list(bom.components))  # the release is made of them
    text = _text(bom, f"release {m.project.version}")
    path = dist / "sbom.cdx.json"
    path.write_text(text)
    return path


def wheel(path: Path, record: dict) -> str:
    """The SBOM of one wheel file: what its metadata requires (``Requires-Dist``, markers kept) and the
    shared libraries vendored into it, each with its sha256."""
    bom = Bom()
    bom.metadata.component = top = _wheel_component(record)
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        metadata = Metadata.from_email(zf.read(name), validate=False)
        vendored = [(i.filename, zf.read(i)) for i in zf.infolist()
                    if re.search(r"\.libs/[^/]+\.so(\.\d+)*$", i.filename)]
    for req in metadata.requires_dist or []:
        bom.components.add(Component(
            type=ComponentType.LIBRARY, name=canonicalize_name(req.name), bom_ref=f"requires:{req}",
            purl=PackageURL(type="pypi", name=canonicalize_name(req.name)),
            properties=[Property(name="gpu-toolkit:requirement", value=str(req))]))
    for filename, data in vendored:
        bom.components.add(Component(
            type=ComponentType.LIBRARY, name=filename.rsplit("/", 1)[-1], bom_ref=f"vendored:{filename}",
            hashes=_sha256(hashlib.sha256(data).hexdigest()), properties=[Property(name=_LOCATION, value=filename)]))
    bom.register_dependency(top, list(bom.components))
    return _text(bom, record["file"])


def image_files(ref: str, platform: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The dpkg status and os-release of the image ``ref`` (by path), and the METADATA of every Python
    distribution in a site-packages or dist-packages folder, read from its exported file system.

    BuildKit streams the file system as a tar; only those files are kept, nothing runs in the image.
    """
    with tempfile.TemporaryDirectory(prefix="sbom-") as tmp:
        system, dists = {}, []
        argv = docker.export_argv(ref, platform, "type=tar,dest=-", Path(tmp))
        with tools.stream(argv) as out, tarfile.open(fileobj=out, mode="r|") as tar:
            for member in tar:
                path = member.name.lstrip("./")
                if member.isfile() and (path in _DPKG or _DIST_INFO.search(path)):
                    text = tar.extractfile(member).read().decode(errors="replace")
                    if path in _DPKG:
                        system[path] = text
                    else:
                        dists.append((path, text))
    return system, dists


def _debian_packages(status: str) -> list[dict[str, str]]:
    """The installed packages of a dpkg status file (paragraphs of Field: value lines)."""
    packages = []
    for paragraph in status.split("\n\n"):
        fields = dict(email.parser.Parser().parsestr(paragraph.strip() + "\n").items())
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            packages.append(fields)
    return packages


def image(record: dict, ref: str) -> str:
    """The SBOM of one image platform (``ref``: its repository@digest), read from its files."""
    return image_bom(record, *image_files(ref, record["platform"]))


def image_bom(record: dict, system: dict[str, str], dists: list[tuple[str, str]]) -> str:
    """The SBOM of an image whose dpkg status and os-release are ``system`` and whose Python distributions'
    METADATA are ``dists`` (path, text): its OS, Debian packages and Python distributions."""
    release = dict(line.split("=", 1) for line in (system.get("etc/os-release") or system.get(
        "usr/lib/os-release", "")).splitlines() if "=" in line)
    distro, version = release.get("ID", "").strip('"'), release.get("VERSION_ID", "").strip('"')
    bom = Bom()
    bom.metadata.component = top = _image_component(record)
    if distro:
        bom.components.add(Component(type=ComponentType.OPERATING_SYSTEM, name=distro, version=version or None,
                                     bom_ref=f"os:{distro}"))
    for p in _debian_packages(system.get("var/lib/dpkg/status", "")):
        qualifiers = {"arch": p.get("Architecture", "")} | ({"distro": f"{distro}-{version}"} if distro else {})
        bom.components.add(Component(
            type=ComponentType.LIBRARY, name=p["Package"], version=p.get("Version"), bom_ref=f"deb:{p['Package']}",
            purl=PackageURL(type="deb", namespace=distro or None, name=p["Package"], version=p.get("Version"),
                            qualifiers=qualifiers)))
    for path, text in sorted(dists):
        meta = email.parser.Parser().parsestr(text, headersonly=True)
        name, dist_version = canonicalize_name(meta.get("Name", "")), meta.get("Version", "")
        bom.components.add(Component(
            type=ComponentType.LIBRARY, name=name, version=dist_version, bom_ref=f"pypi:{path}",
            purl=PackageURL(type="pypi", name=name, version=dist_version),
            properties=[Property(name=_LOCATION, value="/" + path.rsplit("/", 2)[0])]))
    bom.register_dependency(top, list(bom.components))
    return _text(bom, record["id"])
