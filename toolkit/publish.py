"""``toolkit publish``: gated, idempotent and retrying uploads of wheels and images.

Each wheel goes to three places: its CUDA line's channel as built (``0.1.0+cu130``), the variants index as
a PEP 825 variant (``0.1.0``, label ``cu130``), and, for the default CUDA line only, the primary index
without a local label (``0.1.0``, as PyPI takes it). The copies differ from the smoke-tested file in their
metadata only (``stamp`` checks it).

Gates run before anything is sent and list every problem. Each artifact is then
compared with what its target already holds: the same content is skipped, other
content under the same name is refused (never overwritten), and only what is
missing is sent, so a re-run finishes an interrupted release without duplicates.
Connection errors and 5xx answers are retried with backoff; an auth failure stops
at once and names the target.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import tempfile
from pathlib import Path

import requests
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version
from pypi_simple import NoSuchProjectError, PyPISimple, UnsupportedContentTypeError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential
from uv import find_uv_bin
from variantlib.constants import VARIANT_DIST_INFO_FILENAME

from . import channels, console, images, provenance, sbom, settings, signing, smoke, stamp, tools
from .console import step
from .engine import credentials, docker
from .engine.daemon import host_arch
from .errors import CommandError, PublishError, ToolkitError
from .manifest import Manifest, identity, now
from .matrix import Matrix
from .plan import ImageArtifact, Plan, WheelArtifact, cuda_tag, make_plan
from .wheels import sha256

# What a release publishes beside its files (the signature of SHA256SUMS too); then, by how it was signed,
# the key that verifies it, or (keyless) the certificate of each signature; and the attestations of each wheel.
METADATA_FILES = ("manifest.json", "SHA256SUMS", "SHA256SUMS.sig", "sbom.cdx.json")
PUBLIC_KEY = "cosign.pub"
ATTESTATIONS = {"slsa": provenance.COSIGN_TYPE, "cdx": sbom.COSIGN_TYPE}  # file name part -> cosign's type
UPLOAD, SKIP, REFUSE = "upload", "skip (already published)", "REFUSE"
INDEX = "index"  # the primary index of [publish] index-url
HOLD = "hold (platforms missing)"
_OCI_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_ATTEMPTS = 4
# The host's pip may look into a local wheel folder; a client check must see the index alone. Checks ask for
# exactly one version (===): ==0.1.0 also matches 0.1.0+cu130.
_NO_LOCAL_WHEELS = {"PIP_FIND_LINKS": ""}


class TransientError(ToolkitError):
    """A connection error or a 5xx answer: worth another try; after the last one, a publish failure."""

    exit_code = PublishError.exit_code


_retrying = retry(retry=retry_if_exception_type(TransientError), stop=stop_after_attempt(_ATTEMPTS),
                  wait=wait_exponential(multiplier=0.5, max=4), reraise=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Action:
    """What publish does (or would do) with one artifact."""

    subject: str  # a wheel's or (for its patched framework wheel) an image's artifact id, or an image tag (the
    # platforms of a tag are published together)
    target: str
    action: str
    detail: str
    floating: str = ""  # images: the floating tag this publish moves ("" where it stays)
    channel: str = ""  # wheels: INDEX, a CUDA line's channel (cu130) or channels.VARIANTS
    sha256: str = ""  # wheels: of the file (``detail``) this target gets


def gates(m: Matrix, plan: Plan, whole: Plan, dist: Path, manifest: Manifest) -> list[str]:
    """Every reason not to publish; empty when all gates pass.

    ``whole`` is the unselected plan: a --python selection narrows no wheel's coverage.
    """
    problems = []
    planned = {a.id: a for a in whole.artifacts}
    for a in plan.artifacts:
        record = manifest.get(a.id)
        ident = identity(record)[1]
        uncovered = smoke.coverage_problems(m, planned.get(a.id, a), record) if ident else []
        if not ident:
            problems.append(f"{a.id}: not built (no manifest record)")
        elif uncovered:
            problems += uncovered
        elif isinstance(a, WheelArtifact):
            problems += _wheel_gates(a, dist / record["file"], record)
        else:
            problems += _image_gates(m, a, record, dist)
    return problems


def _unattestable(artifact_id: str, record: dict) -> list[str]:
    if "provenance" in record or record.get("published"):
        return []
    return [f"{artifact_id}: built before builds recorded their provenance, so it cannot be attested; "
            "build it again (--force)"]


def _wheel_gates(w: WheelArtifact, path: Path, record: dict) -> list[str]:
    if not path.exists():
        return [f"{w.id}: {path} is missing"]
    problems = [] if sha256(path) == record["sha256"] else [f"{w.id}: {path.name} changed since it was smoke-tested"]
    problems += _unattestable(w.id, record)
    try:
        Version(w.version)
    except InvalidVersion:
        problems.append(f"{w.id}: {w.version!r} is not a PEP 440 version")
    check = tools.run([sys.executable, "-m", "twine", "check", "--strict", path], capture=True, check=False,
                      quiet=True)
    if check.returncode != 0:
        problems.append(f"{w.id}: twine check failed: {check.stdout.strip()[-300:]}")
    return problems


def _image_gates(m: Matrix, image: ImageArtifact, record: dict, dist: Path) -> list[str]:
    repo, _, tag = image.tag.rpartition(":")
    problems = [] if repo and _OCI_TAG.match(tag) else [f"{image.id}: {image.tag!r} is not a valid OCI reference"]
    if image.max_size_mb and "size_mb" not in record:
        problems.append(f"{image.id}: built before builds measured their size, so its size budget is unchecked; "
                        "build it again (--force)")
    elif too_large := "size_mb" in record and images.over_budget(m, image, record):
        problems.append(too_large)  # a budget lowered since the build
    if not record.get("pushed"):
        problems.append(f"{image.id}: built without --push, so no registry holds its digest; "
                        "run `toolkit images --push` first")
    if made := record.get("patched_wheel"):  # the framework's patched wheel goes to the index with the image
        path = dist / made["file"]
        if not path.exists():
            problems.append(f"{image.id}: its patched framework wheel {path} is missing")
        elif sha256(path) != made["sha256"]:
            problems.append(f"{image.id}: {path.name} changed since the image was built with it")
    return problems + _unattestable(image.id, record)


def write_sha256sums(dist: Path, released: list[dict]) -> Path:
    """SHA256SUMS of every wheel released for this version, from the sums the smoke tests covered.

    The gates compared each file with its record before anything was sent; clients check the sums
    against what they download (``verify``).
    """
    sums = dist / "SHA256SUMS"
    sums.write_text("".join(f"{r['sha256']}  {r['file']}\n" for r in sorted(released, key=lambda r: r["file"])))
    return sums


@_retrying
def _index_files(simple_url: str, project: str) -> dict[str, str]:
    """filename -> sha256 of what the index holds for ``project`` (anonymous read, PEP 691 JSON or HTML)."""
    with PyPISimple(simple_url) as index:
        url = index.get_project_url(project)
        try:
            page = index.get_project_page(project, timeout=20)
        except NoSuchProjectError:
            return {}
        except requests.HTTPError as exc:
            code = exc.response.status_code
            if code >= 500:
                raise TransientError(f"{url}: HTTP {code}") from None
            raise PublishError([f"the index {simple_url} answered HTTP {code} to {url}"]) from None
        except requests.RequestException as exc:
            raise TransientError(f"{url}: {exc}") from None
        except UnsupportedContentTypeError as exc:
            raise PublishError([f"{url} is not a simple index page ({exc}); set [publish] simple-url"]) from None
    return {p.filename: p.digests.get("sha256", "") for p in page.packages}


def copies(m: Matrix, w: WheelArtifact, record: dict, dist: Path, out: Path) -> dict[str, Path]:
    """channel -> the file a built wheel (in ``dist``) is published as there; the copies are written into ``out``."""
    built = dist / record["file"]
    line = cuda_tag(w.build.cuda)
    found = {line: built, channels.VARIANTS: stamp.variant(built, m.project.version, line,
                                                           variant_properties(record), out)}
    if w.build.cuda == m.publish.default_line(m.axes.cuda):
        found[INDEX] = stamp.with_version(built, m.project.version, out) if w.version != m.project.version \
            else built
    return found


def variant_properties(record: dict) -> list[str]:
    """What a wheel variant declares: the CUDA line as the driver's lower bound, and every GPU target its audit
    found."""
    return [f"nvidia :: cuda_version_lower_bound :: {record['cuda']}",
            *(f"nvidia :: sm_arch :: {sm}" for sm in _sm_arch(record))]


def _sm_arch(record: dict) -> list[str]:
    """The audit's GPU targets as the NVIDIA provider names them, lowest first: SASS as ``<sm>_real`` (an
    arch-specific ``90a`` as ``90_real``), PTX as ``<sm>_virtual``."""
    objects = (record.get("audit") or {}).get("objects", [])
    sms = {f"{s.rstrip('af')}_real" for o in objects for s in o.get("sass", [])}
    sms |= {f"{s.rstrip('af')}_virtual" for o in objects for s in o.get("ptx", [])}
    return sorted(sms, key=lambda v: (int(v.split("_")[0]), v))


def _target_url(m: Matrix, channel: str) -> str:
    return m.publish.index_url if channel == INDEX else channels.channel(m, channel).simple_url


def _wheel_action(subject: str, channel: str, url: str, path: Path, held: dict[str, str]) -> Action:
    known, digest = held.get(path.name), sha256(path)
    if known is None:
        return Action(subject=subject, target=url, action=UPLOAD, detail=path.name, channel=channel, sha256=digest)
    if known == digest:
        return Action(subject=subject, target=url, action=SKIP, detail=path.name, channel=channel, sha256=digest)
    return Action(subject=subject, target=url, action=REFUSE, channel=channel, sha256=digest,
                  detail=f"{path.name} is already there with sha256 {known[:16]}, not {digest[:16]}")


def floating_tag(image: ImageArtifact) -> str:
    """The moving release tag of an image's CUDA line (``…/none:cu130``)."""
    repo, _, version_tag = image.tag.rpartition(":")
    return f"{repo}:{version_tag.rsplit('-', 1)[-1]}"


def _image_action(m: Matrix, members: list[ImageArtifact], expected: list[ImageArtifact], records: list[dict],
                  partial: bool) -> Action:
    """The immutable version tag is made once, from every planned platform, and never moved; the floating
    tag follows the newest release of its CUDA line (an older version's publish leaves it alone)."""
    tag, target = members[0].tag, members[0].tag.split("/")[0]
    missing = sorted({i.build.platform for i in expected} - {i.build.platform for i in members})
    if missing and not partial:
        return Action(subject=tag, target=target, action=HOLD,
                      detail=f"{', '.join(missing)} not in this publish, and {tag} can never take them later: "
                             "publish without narrowing --arch, or pass --partial")
    wanted = sorted(r["digest"] for r in records)
    held = _registry_digests(tag)
    if held is not None and sorted(held) != wanted:
        return Action(subject=tag, target=target, action=REFUSE,
                      detail=f"{tag} already points at {', '.join(h[:19] for h in held)}")
    floating = floating_tag(members[0])
    newer = _newer_release(floating, m.project.version)
    stays = f"{floating} stays at the newer {newer}" if newer else ""
    if held is not None and (newer or sorted(_registry_digests(floating) or []) == wanted):
        return Action(subject=tag, target=target, action=SKIP, detail=stays or f"{tag}, {floating}")
    loud = f"PARTIAL: {tag} without {', '.join(missing)}, for good; " if missing else ""
    return Action(subject=tag, target=target, action=UPLOAD, floating="" if newer else floating,
                  detail=loud + (stays or f"{floating} -> {', '.join(w[:19] for w in wanted)}"))


def _newer_release(ref: str, version: str) -> str:
    """The version of the release ``ref`` points at when it is newer than ``version``, else ''."""
    labels = [(c.get("config") or {}).get("Labels") or {} for c in docker.image_configs(ref) or []]
    newest = max((v for lab in labels if (v := lab.get("org.opencontainers.image.version"))), key=Version,
                 default="")
    return newest if newest and Version(newest) > Version(version) else ""


@_retrying
def _registry_digests(ref: str) -> list[str] | None:
    proc = docker.inspect_raw(ref)
    if proc.returncode == 0:
        return [m["digest"] for m in json.loads(proc.stdout).get("manifests", [])]
    text = proc.stderr + proc.stdout
    if "not found" in text or "MANIFEST_UNKNOWN" in text:
        return None
    if re.search(r"\b(401|403)\b|unauthorized|authentication required", text):
        raise PublishError([f"the registry refused the credentials for {ref}"])
    raise TransientError(f"{ref}: {text.strip()[-200:]}")


def actions(m: Matrix, plan: Plan, whole: Plan, manifest: Manifest, dist: Path, out: Path, *,
            partial: bool = False) -> list[Action]:
    """Upload, skip, hold or refuse, for every file of every wheel on each of its targets (the copies made in
    ``out``) and every image tag of the plan (``whole``, the unselected plan, says which platforms each tag is
    made of)."""
    held: dict[tuple[str, str], dict[str, str]] = {}
    found = []
    for w in plan.wheels:
        for channel, path in copies(m, w, manifest.get(w.id), dist, out).items():
            if (channel, w.package) not in held:
                held[channel, w.package] = _index_files(m.publish.read_url, w.package) if channel == INDEX \
                    else channels.held(channels.channel(m, channel), w.package)
            found.append(_wheel_action(w.id, channel, _target_url(m, channel), path, held[channel, w.package]))
    tags = {}
    for tag in dict.fromkeys(i.tag for i in plan.images):
        members = [i for i in plan.images if i.tag == tag]
        tags[tag] = _image_action(m, members, [i for i in whole.images if i.tag == tag],
                                  [manifest.data["artifacts"][i.id] for i in members], partial)
    for i in plan.images:  # a framework's patched wheel, which the image installs, goes to the index with its tag
        if (made := manifest.data["artifacts"][i.id].get("patched_wheel")) and tags[i.tag].action != HOLD:
            name = parse_wheel_filename(made["file"])[0]
            if (INDEX, name) not in held:  # each platform's image names the same wheel: one query
                held[INDEX, name] = _index_files(m.publish.read_url, name)
            found.append(_wheel_action(i.id, INDEX, m.publish.index_url, dist / made["file"], held[INDEX, name]))
    return found + list(tags.values())


@_retrying
def _twine_upload(path: Path, index_url: str, cred: credentials.Credential | None) -> None:
    # No credential: twine (>= 7) mints a PyPI token through trusted publishing (the CI's OIDC token),
    # which it tries for PyPI's upload URL when the user name is __token__ and no password is set
    # (an empty TWINE_PASSWORD, as a workflow's unset secret gives, counts as set: it is removed).
    login = {"TWINE_USERNAME": cred.username, "TWINE_PASSWORD": cred.password} if cred else {
        "TWINE_USERNAME": "__token__", "TWINE_PASSWORD": None}
    env = {**login, "TWINE_NON_INTERACTIVE": "1", "NO_COLOR": "1"}
    proc = tools.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url",
                      index_url, path], env=env, capture=True, check=False)
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr).split())
    if proc.returncode == 0:
        return
    if re.search(r"\b(401|403)\b", text):
        raise PublishError([f"the index {index_url} refused the credentials (HTTP 401/403) for {path.name}"])
    if re.search(r"\b5\d\d\b|Connection|Max retries|timed out", text):
        raise TransientError(f"{index_url}: {console.mask(text.strip()[-200:])}")
    raise PublishError([f"uploading {path.name} to {index_url} failed: {console.mask(text.strip()[-300:])}"])


@_retrying
def _imagetools_create(tag: str, refs: list[str]) -> None:
    try:
        docker.imagetools_create(tag, refs, capture=True)
    except CommandError as exc:
        if re.search(r"\b(401|403)\b|unauthorized", str(exc)):
            raise PublishError([f"the registry refused the credentials for {tag}"]) from None
        raise TransientError(str(exc)) from None


def _index_credential(m: Matrix) -> credentials.Credential | None:
    """TWINE_USERNAME/TWINE_PASSWORD; else, for PyPI, none (trusted publishing); else the engine's index's."""
    if m.publish.is_pypi and not settings.env_credentials(settings.INDEX_USER_ENV, settings.INDEX_PASSWORD_ENV):
        return None
    return credentials.load(settings.state_dir(), "index")


def metadata_names(wheels: list[dict], keyless: bool) -> set[str]:
    """Every file the release metadata holds when ``wheels`` are released, signed ``keyless`` or not."""
    signatures = ["SHA256SUMS.sig",
                  *(f"attestations/{r['file']}.{kind}.json" for r in wheels for kind in ATTESTATIONS)]
    extra = [str(signing.certificate(Path(n))) for n in signatures] if keyless else [PUBLIC_KEY]
    return {*METADATA_FILES, *signatures, *extra}


def publish(m: Matrix, plan: Plan, dist: Path, *, yes: bool, partial: bool = False) -> list[Action]:
    """Check the gates, decide per artifact, and (with ``yes``) send what is missing.

    ``partial`` lets an image tag be made from the platforms of a narrowed selection (for good).
    """
    manifest = Manifest(dist / "manifest.json")
    whole = make_plan(m)
    keyless = signing.mode() == signing.KEYLESS if yes else False
    earlier = published_metadata(m) if yes else {}
    if "manifest.json" in earlier:
        adopt_published(manifest, json.loads(earlier["manifest.json"]))
    problems = gates(m, plan, whole, dist, manifest)
    if problems:
        raise PublishError(problems)
    with tempfile.TemporaryDirectory(prefix="copies-") as scratch:  # a dry run writes nothing into dist
        decided = actions(m, plan, whole, manifest, dist, dist if yes else Path(scratch), partial=partial)
    refused = [a for a in decided if a.action == REFUSE]
    if refused:
        raise PublishError([f"{a.subject}: refused: {a.detail}" for a in refused])
    if not yes:
        return decided
    try:
        _send(m, plan, dist, manifest, decided)
    except TransientError as exc:
        raise PublishError([f"gave up after {_ATTEMPTS} tries: {exc}; what was sent is recorded, "
                            "so a re-run sends only the rest"]) from None
    wheels, images = released(m, manifest.data["artifacts"])
    names = metadata_names(wheels, keyless)
    if not any(a.action == UPLOAD for a in decided) and names <= set(earlier):
        step(f"{metadata_image(m)}: up to date (nothing new was published)")
        # the published files, for the user's dist; this run's own manifest stays (it is the newer record)
        _write_files(dist, {name: earlier[name] for name in names if name != "manifest.json"})
        return decided
    state = settings.state_dir()
    # Earlier attestations still hold (a wheel file is published once) when they were signed the same way.
    same_signer = str(signing.certificate(Path("SHA256SUMS.sig"))) in earlier if keyless else \
        earlier.get(PUBLIC_KEY) == signing.public_key(state).read_bytes()
    _attest_wheels(state, wheels, dist, {n: b for n, b in earlier.items() if n.startswith("attestations/")
                                         and same_signer})
    signing.sign_blob(state, write_sha256sums(dist, wheels))
    if not keyless:
        (dist / PUBLIC_KEY).write_bytes(signing.public_key(state).read_bytes())
    sbom.write_release(m, wheels, images, dist)
    _publish_metadata(m, dist, names)
    return decided


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def _attest_wheels(state: Path, wheels: list[dict], dist: Path, earlier: dict[str, bytes]) -> None:
    """The provenance and SBOM attestations of each released wheel in ``dist/attestations``: those of the
    release metadata (``earlier``), else made now."""
    _write_files(dist, earlier)
    for r in wheels:
        for kind, cosign_type in ATTESTATIONS.items():
            out = dist / "attestations" / f"{r['file']}.{kind}.json"
            if out.relative_to(dist).as_posix() in earlier:
                continue
            if not (dist / r["file"]).exists():
                raise PublishError([f"{r['id']}: {r['file']} is not in {dist} and the release metadata holds no "
                                    f"{kind} attestation of it"])
            predicate = (provenance.statement(r["file"], r["sha256"], r)["predicate"] if kind == "slsa"
                         else json.loads(sbom.wheel(dist / r["file"], r)))
            out.parent.mkdir(exist_ok=True)
            signing.attest_blob(state, dist / r["file"], cosign_type, predicate, out)


def released(m: Matrix, records: dict[str, dict], version: str | None = None) -> tuple[list[dict], list[dict]]:
    """The wheel and image records (of a manifest's ``records``) of every artifact published for this version
    (``version``, else the matrix's), by any publish so far: the release metadata grows with each publish of
    the version and never forgets an earlier one. A wheel gives one record per published copy (``file``,
    ``sha256``, ``channel``, ``url`` of the copy; ``id`` ``<artifact>@<channel>``)."""
    version = version or m.project.version
    wheels, images = [], []
    for artifact_id, r in sorted(records.items()):
        published = r.get("published") or {}
        if r.get("kind") == "wheel" and published.get("sha256") == r.get("sha256") and \
                parse_wheel_filename(r["file"])[1].public == version:
            wheels += [{**r, "id": f"{artifact_id}@{channel}", "channel": channel, "file": copy["file"],
                        "sha256": copy["sha256"], "url": copy["url"]} for channel, copy in _files(r).items()]
        elif r.get("kind") == "image" and published.get("digest") == r.get("digest") and any(
                t.rsplit(":", 1)[-1].startswith(f"{version}-") for t in published.get("tags", [])):
            images.append({"id": artifact_id, **r})
    return wheels, images


def _files(r: dict) -> dict[str, dict]:
    """channel -> the published copy of a wheel record; a wheel published before the channels went to the
    primary index as built."""
    published = r["published"]
    return published.get("files") or {INDEX: {"file": r["file"], "sha256": r["sha256"], "url": published["index"]}}


def adopt_published(manifest: Manifest, earlier: dict) -> None:
    """What earlier publishes of this version recorded (the registry's release manifest) joins this manifest:
    the records of artifacts this run did not build, whole, and the published (and attested) marks of those
    it built again identically. A CI run starts from an empty manifest, yet SHA256SUMS and the SBOM must keep
    every file the version ever released."""
    for artifact_id, old in (earlier.get("artifacts") or {}).items():
        if not old.get("published"):
            continue
        current = manifest.get(artifact_id)
        if not current:
            manifest.record(artifact_id, **old)
        elif identity(current) == identity(old) and not current.get("published"):
            manifest.record(artifact_id, published=old["published"],
                            **({"attested": old["attested"]} if "attested" in old else {}))


def published_metadata(m: Matrix, version: str | None = None) -> dict[str, bytes]:
    """Every file of the release metadata the registry holds for this version (``version``, else the matrix's;
    none yet: empty), by its path in the metadata (``SHA256SUMS``, ``attestations/…``)."""
    image = metadata_image(m, version)
    if _registry_digests(image) is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        out = Path(tmp) / "out"
        tools.run(docker.export_argv(image, "linux/amd64", f"type=local,dest={out}", Path(tmp)), capture=True)
        release = out / "release"
        return {p.relative_to(release).as_posix(): p.read_bytes() for p in sorted(release.rglob("*")) if p.is_file()}


def metadata_image(m: Matrix, version: str | None = None) -> str:
    """Where the release manifest, SHA256SUMS, SBOM and attestations of a version are pushed."""
    return f"{m.publish.image_repository}/release-metadata:{version or m.project.version}"


def _send(m: Matrix, plan: Plan, dist: Path, manifest: Manifest, decided: list[Action]) -> None:
    if plan.images:
        docker.login(m.publish.image_repository.split("/")[0], docker.registry_credential())
    cred = _index_credential(m)
    state = settings.state_dir()
    for w in plan.wheels:
        _send_wheel(m, w, dist, manifest, [a for a in decided if a.channel and a.subject == w.id], cred)
    sent = set()  # a pure patched wheel serves every platform's image: it is uploaded once
    for i in plan.images:
        for a in (a for a in decided if a.channel and a.subject == i.id):
            if a.action == UPLOAD and a.detail not in sent:
                _twine_upload(dist / a.detail, m.publish.index_url, cred)
                sent.add(a.detail)
            made = manifest.get(i.id)["patched_wheel"]
            if "published" not in made:
                manifest.record(i.id, patched_wheel={**made, "published": {"url": a.target, "at": now()}})
    for a in decided:
        if a.channel:
            continue
        started = now()
        if a.action in (UPLOAD, SKIP):
            _attest_images(state, plan, manifest, a.subject)  # before the tag names them
        if a.action == UPLOAD and _registry_digests(a.subject) is None:
            _imagetools_create(a.subject, _refs(plan, manifest, a.subject))
        if a.action in (UPLOAD, SKIP) and signing.verify_image(state, a.subject, _trust(m, state)):
            # unsigned: new, a crash between tag and signature, or published before signing (a tag holding
            # other content than the manifest records was refused before anything was sent)
            signing.sign_image(state, a.subject)
        if a.action != UPLOAD:
            continue
        if a.floating:  # the same digest as the signed version tag
            _imagetools_create(a.floating, _refs(plan, manifest, a.subject))
        for i in (i for i in plan.images if i.tag == a.subject):
            manifest.record(i.id, published={"tags": [a.subject, *filter(None, [a.floating])], "at": now(),
                                             "started_at": started, "digest": manifest.get(i.id)["digest"]})


def _send_wheel(m: Matrix, w: WheelArtifact, dist: Path, manifest: Manifest, mine: list[Action],
                cred: credentials.Credential | None) -> None:
    """Send the copies of one wheel that its targets lack; record where each copy is once all are there."""
    record = manifest.get(w.id)
    done = (record.get("published") or {}).get("sha256") == record["sha256"]
    if done and all(a.action == SKIP for a in mine):
        return
    started = now()
    for a in (a for a in mine if a.action == UPLOAD):
        if a.channel == INDEX:
            _twine_upload(dist / a.detail, m.publish.index_url, cred)
        else:
            channels.publish(channels.channel(m, a.channel), w.package, {dist / a.detail: a.sha256})
    manifest.record(w.id, published={"sha256": record["sha256"], "started_at": started, "at": now(), "files": {
        a.channel: {"file": a.detail, "sha256": a.sha256, "url": a.target} for a in mine}})


def _attest_images(state: Path, plan: Plan, manifest: Manifest, tag: str) -> None:
    """Attach the provenance and the SBOM (read from the image's files) to each platform digest of ``tag``
    that has none yet (``attested`` names the digest that has them)."""
    repo = tag.rsplit(":", 1)[0]
    for i in (i for i in plan.images if i.tag == tag):
        record = {"id": i.id, **manifest.get(i.id)}
        if record.get("attested") == record["digest"]:
            continue
        ref = f"{repo}@{record['digest']}"
        step(f"{i.id}: attesting provenance and SBOM of {ref}")
        statement = provenance.statement(repo, record["digest"].removeprefix("sha256:"), record)
        signing.attest_image(state, ref, provenance.COSIGN_TYPE, statement["predicate"])
        signing.attest_image(state, ref, sbom.COSIGN_TYPE, json.loads(sbom.image(record, ref)))
        manifest.record(i.id, attested=record["digest"])


def _trust(m: Matrix, state: Path) -> signing.Trust:
    """How this run's own signatures verify: by the key pair, or (keyless) by the release workflow's identity."""
    if signing.mode() == signing.KEYLESS:
        return signing.Trust(identity=signing.workflow_identity(m.project.source))
    return signing.Trust(key=signing.public_key(state))


def _refs(plan: Plan, manifest: Manifest, tag: str) -> list[str]:
    """The recorded digest of every planned platform of ``tag``, as references in its repository."""
    repo = tag.rsplit(":", 1)[0]
    return [f"{repo}@{manifest.get(i.id)['digest']}" for i in plan.images if i.tag == tag]


def _publish_metadata(m: Matrix, dist: Path, names: set[str]) -> str:
    """Push the release manifest, SHA256SUMS, SBOM, signatures and attestations (``names``, paths in
    ``dist``) beside the images, as a small OCI image."""
    image = metadata_image(m)
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        context = Path(tmp)
        _write_files(context / "release", {name: (dist / name).read_bytes() for name in sorted(names)})
        (context / "Dockerfile").write_text("FROM scratch\nCOPY release /release/\n")
        tools.run(docker.build_argv(dockerfile=context / "Dockerfile", platform="linux/amd64", tag=image,
                                    context=context), capture=True)
    return image


def _install_in_clean_venv(package: str, version: str, index: list[str], venv: Path, _: dict) -> list[str]:
    """``pip install NAME==VERSION`` from the index into a fresh venv, then import it."""
    tools.run([sys.executable, "-m", "venv", "--clear", venv], quiet=True)
    steps = [[venv / "bin" / "pip", "install", "--quiet", "--no-cache-dir", *index, f"{package}==={version}"],
             [venv / "bin" / "python", "-c", f"import {package.replace('-', '_')}"]]
    for argv in steps:
        proc = tools.run(argv, capture=True, check=False, env=_NO_LOCAL_WHEELS)
        if proc.returncode != 0:
            return [f"{' '.join(map(str, argv[1:3]))} failed in a clean venv: {proc.stderr.strip()[-200:]}"]
    return []


def download_target(filename: str) -> list[str]:
    """pip's --platform and --python-version that select exactly this wheel file (cp312-abi3 → 3.12)."""
    tag = next(iter(parse_wheel_filename(filename)[3]))
    digits = tag.interpreter.removeprefix("cp").removeprefix("py")
    return [f"--platform={tag.platform}", f"--python-version={digits[0]}.{digits[1:]}" if len(digits) > 1
            else f"--python-version={digits}"]


def release_trust(m: Matrix, metadata: dict[str, bytes], key: Path | None) -> signing.Trust:
    """What the signatures of a release must verify against: ``key`` when given; else the release workflow's
    identity for a keyless release (its metadata holds certificates); else this machine's key."""
    if key:
        return signing.Trust(key=key)
    if str(signing.certificate(Path("SHA256SUMS.sig"))) in metadata:
        return signing.Trust(identity=signing.workflow_identity(m.project.source))
    return signing.Trust(key=signing.public_key(settings.state_dir()))


def verify(m: Matrix, *, version: str | None = None, key: Path | None = None, out: Path | None = None) -> list[str]:
    """Check a published release (``version``, else the matrix's) as a client would; return every problem.

    From the registry's release metadata alone: the signature of SHA256SUMS; each wheel its manifest lists,
    downloaded from the index (``pip download``, its own platform and Python) and compared with SHA256SUMS,
    installed in a clean venv where this machine can run it, its provenance and SBOM attestations verified
    against the downloaded file; each image tag's digests and signature, and each platform's provenance and
    SBOM attestations in the registry. ``out`` receives the metadata and the verified statements.
    """
    state = settings.state_dir()
    metadata = published_metadata(m, version)
    if "manifest.json" not in metadata:
        return [f"{metadata_image(m, version)}: no release metadata in the registry (nothing was published)"]
    trust = release_trust(m, metadata, key)
    wheels, images = released(m, json.loads(metadata["manifest.json"])["artifacts"], version)
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in
                                                metadata.get("SHA256SUMS", b"").decode().splitlines())}
    problems, statements = [], {}
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        folder = out or Path(tmp) / "release"
        _write_files(folder, metadata)
        problem = signing.verify_blob(state, folder / "SHA256SUMS", folder / "SHA256SUMS.sig", trust)
        problems += [f"{metadata_image(m, version)}: {problem}"] if problem else []
        for r in wheels:
            problems += [f"{r['id']}: {p}" for p in _verify_wheel(m, r, sums, folder, Path(tmp), trust, statements)]
        for tag in sorted({r["tag"] for r in images}):
            members = [r for r in images if r["tag"] == tag]
            problems += _verify_image(state, tag, members, trust, statements)
        if out:
            (out / "statements.json").write_text(json.dumps(statements, indent=2, sort_keys=True) + "\n")
    return problems


def _verify_wheel(m: Matrix, r: dict, sums: dict[str, str], metadata: Path, tmp: Path, trust: signing.Trust,
                  statements: dict) -> list[str]:
    name, version = parse_wheel_filename(stamp.base(r["file"]))[:2]
    target = tmp / r["id"].replace(":", "_")
    channel = r.get("channel", INDEX)
    index = ["--index-url", m.publish.read_url if channel == INDEX else channels.channel(m, channel).simple_url]
    if channel == channels.VARIANTS:  # pip does not know variants: fetched as the page links it, installed by uv
        got, problem = _fetch(f"{index[1]}{name}/{r['file']}", target), ""
    else:
        proc = tools.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                          *download_target(r["file"]), *index, "-d", target, f"{name}==={version}"],
                         capture=True, check=False, env=_NO_LOCAL_WHEELS)
        got, problem = next(iter(target.glob("*.whl")), None), proc.stderr.strip()[-200:]
    if got is None or sha256(got) != r["sha256"]:
        return [f"{index[1]} did not serve the published {r['file']} ({problem or 'not found'})"]
    if sums.get(got.name) != r["sha256"]:
        return [f"the published SHA256SUMS says {sums.get(got.name, 'nothing')[:16]} for {got.name}, "
                f"the index served {r['sha256'][:16]}"]
    problems = []
    for kind, cosign_type in ATTESTATIONS.items():
        envelope = metadata / "attestations" / f"{got.name}.{kind}.json"
        if not envelope.exists():
            problems.append(f"the release metadata holds no {kind} attestation of {got.name}")
            continue
        try:
            statements[f"{r['id']} {kind}"] = signing.verify_blob_attestation(
                settings.state_dir(), got, envelope, cosign_type, trust)
        except PublishError as exc:
            problems += exc.problems
    if not problems and r["platform"] == host_arch().platform:
        install = _uv_install_variant if channel == channels.VARIANTS else _install_in_clean_venv
        problems += install(str(name), str(version), index, tmp / "venv", r)
    return problems


def _fetch(url: str, folder: Path) -> Path | None:
    answer = requests.get(url, timeout=60)
    if answer.status_code != 200:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / url.rsplit("/", 1)[1]).write_bytes(answer.content)
    return folder / url.rsplit("/", 1)[1]


def gpu_of(r: dict) -> dict[str, str]:
    """What uv's NVIDIA provider is told to see: a driver of the wheel's CUDA line and a GPU it has SASS for
    (the variant a machine like that gets)."""
    number = next(sm for sm in _sm_arch(r) if sm.endswith("_real")).split("_")[0]
    return {"NV_VARIANT_PROVIDER_FORCE_CUDA_DRIVER_VERSION": r["cuda"],
            "NV_VARIANT_PROVIDER_FORCE_SM_ARCH": f"{number[:-1]}.{number[-1]}"}


def uv_install_argv(venv: Path, index_url: str, requirement: str) -> list:
    """uv installing a wheel variant from a variants index (PEP 825 is behind a preview flag in uv 0.13)."""
    return [find_uv_bin(), "pip", "install", "--quiet", "--no-cache", "--preview-features", "wheel-variants",
            "--python", venv / "bin" / "python", "--index-url", index_url, requirement]


def _uv_install_variant(package: str, version: str, index: list[str], venv: Path, r: dict) -> list[str]:
    """uv, told it runs on a GPU machine of the wheel's CUDA line, picks this variant from the variants index
    into a clean venv; it imports."""
    tools.run([sys.executable, "-m", "venv", "--clear", "--without-pip", venv], quiet=True)
    proc = tools.run(uv_install_argv(venv, index[1], f"{package}==={version}"), capture=True, check=False,
                     env=gpu_of(r))
    if proc.returncode != 0:
        return [f"uv install from {index[1]} failed in a clean venv: {proc.stderr.strip()[-300:]}"]
    label = r["file"].removesuffix(".whl").rsplit("-", 1)[1]
    found = list(venv.glob(f"lib/python*/site-packages/*.dist-info/{VARIANT_DIST_INFO_FILENAME}"))
    picked = json.loads(found[0].read_text()).get("variants", {}) if found else {}
    if label not in picked:
        return [f"uv installed {', '.join(picked) or 'no variant'} from {index[1]}, not {label}"]
    proc = tools.run([venv / "bin" / "python", "-c", f"import {package.replace('-', '_')}"], capture=True,
                     check=False)
    return [f"import {package} failed after uv installed it: {proc.stderr.strip()[-200:]}"] if proc.returncode else []


def _verify_image(state: Path, tag: str, members: list[dict], trust: signing.Trust, statements: dict) -> list[str]:
    held = sorted(_registry_digests(tag) or [])
    wanted = sorted(r["digest"] for r in members)
    problems = [f"{tag}: the registry holds {held}, the manifest records {wanted}"] if held != wanted else []
    problems += list(filter(None, [signing.verify_image(state, tag, trust)]))
    repo = tag.rsplit(":", 1)[0]
    for r in members:
        for kind, cosign_type in ATTESTATIONS.items():
            try:
                statement = signing.verify_image_attestation(state, f"{repo}@{r['digest']}", cosign_type, trust)
            except PublishError as exc:
                problems += exc.problems
                continue
            statements[f"{r['id']} {kind}"] = statement
    return problems
