"""Publishing against a fresh local index: gates, idempotence, refusal, auth and faults."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from wheel.wheelfile import WheelFile

from toolkit import cli, engine, patches, publish, settings, signing, smoke, stamp
from toolkit.engine import host
from toolkit.errors import PublishError
from toolkit.manifest import Manifest
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan
from toolkit.wheels import sha256

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

INDEX_PORT = 8096
CHANNEL_PORT = 8097


@pytest.fixture(scope="module")
def fresh_index(engine_up, registry_cred, request, tmp_path_factory):
    """An index of its own (own state, port and credentials) so every test starts from nothing.

    The registry is the session's, used as a user's existing one: its credentials come from the environment.
    """
    root = tmp_path_factory.mktemp("publish")
    text = (request.config.rootpath / "matrix.toml").read_text()
    # a repository of its own too: the session's registry outlives test runs, and a release's metadata there
    # (release-metadata:<version>) would be adopted by the next run's publish of that version
    text = text.replace('image-repository = "127.0.0.1:5000/gpu-toolkit"',
                        f'image-repository = "127.0.0.1:5000/p{uuid.uuid4().hex[:8]}"')
    (root / "matrix.toml").write_text(text.replace("http://127.0.0.1:8081/", f"http://127.0.0.1:{INDEX_PORT}/")
                                      + f'channel-url = "http://127.0.0.1:{CHANNEL_PORT}/"\n')
    for name in ("container", "examples", "patches"):
        (root / name).symlink_to(request.config.rootpath / name)
    state = root / "state"
    env = {settings.REGISTRY_USER_ENV: registry_cred.username, settings.REGISTRY_PASSWORD_ENV: registry_cred.password}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        m = load_matrix(root / "matrix.toml")
        statuses = {s.name: s for s in engine.up(m, make_plan(m, Selection(cuda=("13.0",), arch=("x86_64",))), state)}
    assert statuses["index"].started_by == "toolkit" and statuses["registry"].started_by == "external"
    yield root, state, env
    engine.down(state)


@pytest.fixture
def release(built_wheels, fresh_index, tmp_path, monkeypatch):
    """The built wheels in a dist of their own, smoke-tested, ready for the fresh index."""
    root, state, env = fresh_index
    for key, value in {**env, "TOOLKIT_STATE_DIR": str(state)}.items():
        monkeypatch.setenv(key, value)


    dist = tmp_path / "dist"
    shutil.copytree(built_wheels[0], dist)
    m = load_matrix(root / "matrix.toml")
    plan = dataclasses.replace(make_plan(m, Selection(cuda=("13.0",), framework=("none",))), images=())
    assert all(r.result != smoke.FAIL for r in smoke.smoke(m, plan, dist))  # the gate needs real smoke records
    return m, plan, dist


def _held(m, version):
    return {f: h for f, h in publish._index_files(m.publish.read_url, "saxpy").items()
            if f.startswith(f"saxpy-{version}-")}


def _as_version(m, plan, dist, version):
    """The built wheels re-versioned: each test publishes a release of its own to the shared index."""
    m2 = dataclasses.replace(m, project=dataclasses.replace(m.project, version=version))
    p2 = dataclasses.replace(make_plan(m2, Selection(cuda=("13.0",), framework=("none",))), images=())
    manifest = Manifest(dist / "manifest.json")
    for w in p2.wheels:
        record = manifest.get(w.id)
        new_name = stamp.with_version(dist / record["file"], f"{version}+cu130", dist).name
        record["file"], record["sha256"] = new_name, sha256(dist / new_name)
        record["smoke"]["sha256"] = record["sha256"]
    manifest.save()
    return m2, p2, dist


def _change_content(dist, artifact_id):
    """The wheel with one more file (a valid wheel: RECORD written by the wheel library)."""
    manifest = Manifest(dist / "manifest.json")
    record = manifest.get(artifact_id)
    path, original = dist / record["file"], dist / "original" / record["file"]
    original.parent.mkdir(exist_ok=True)
    shutil.move(path, original)
    with WheelFile(original) as src, WheelFile(path, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/RECORD"):
                dst.writestr(info, src.read(info))
        dst.writestr("saxpy/extra.txt", "changed")
    record["sha256"] = record["smoke"]["sha256"] = sha256(path)
    manifest.save()


def test_unsmoked_artifact_cannot_be_published(release):
    m, plan, dist = release
    manifest = Manifest(dist / "manifest.json")
    manifest.get("wheel:saxpy:cu130:aarch64").pop("smoke", None)
    manifest.save()
    with pytest.raises(PublishError, match="wheel:saxpy:cu130:aarch64: no passing smoke record"):
        publish.publish(m, plan, dist, yes=True)
    assert not (dist / "SHA256SUMS").exists()


def _digest(ref):
    out = subprocess.run(["docker", "buildx", "imagetools", "inspect", ref], capture_output=True, text=True,
                         check=True).stdout
    return re.search(r"^Digest:\s+(\S+)", out, re.M).group(1)


def test_publish_then_republish_skips_then_changed_content_is_refused(release):
    m, plan, dist = _as_version(*release, "0.2.0")
    dry = publish.publish(m, plan, dist, yes=False)
    assert [a.action for a in dry] == [publish.UPLOAD] * 6 and _held(m, "0.2.0") == {}  # 2 wheels, 3 targets
    assert not (dist / "SHA256SUMS").exists()  # a dry run writes nothing, not even the copies it compared
    assert not list(dist.glob("saxpy-0.2.0-*.whl"))
    publish.publish(m, plan, dist, yes=True)
    assert publish.verify(m) == []
    held = _held(m, "0.2.0")
    assert len(held) == 2 and all(held[f] == sha256(dist / f) for f in held)
    metadata = _digest(publish.metadata_image(m))
    manifest = Manifest(dist / "manifest.json")  # a later smoke run of the same build, recorded locally
    manifest.record(plan.wheels[0].id, smoke={**manifest.get(plan.wheels[0].id)["smoke"], "at": "2099-01-01"})
    local = (dist / "manifest.json").read_text()
    assert {a.action for a in publish.publish(m, plan, dist, yes=True)} == {publish.SKIP}
    assert (dist / "manifest.json").read_text() == local  # this run's records stay, not the registry's copy
    assert _digest(publish.metadata_image(m)) == metadata  # nothing new: the release metadata is not re-pushed
    assert (dist / "SHA256SUMS").read_text().count(".whl") == 6
    assert '"bomFormat": "CycloneDX"' in (dist / "sbom.cdx.json").read_text()
    _change_content(dist, "wheel:saxpy:cu130:x86_64")
    with pytest.raises(PublishError, match=r"refused: saxpy-0\.2\.0\+cu130-.*already there with sha256"):
        publish.publish(m, plan, dist, yes=True)
    assert _held(m, "0.2.0") == held
    # one wheel's provenance published as the other's: it does not verify against the file the index serves
    wheels = publish.released(m, json.loads(publish.published_metadata(m)["manifest.json"])["artifacts"])[0]
    first, second = (dist / "attestations" / f"{r['file']}.slsa.json" for r in wheels[:2])
    first.write_bytes(second.read_bytes())
    publish._publish_metadata(m, dist, publish.metadata_names(wheels, keyless=False))
    problems = publish.verify(m)
    assert len(problems) == 1 and problems[0].startswith(
        f"{wheels[0]['id']}: {wheels[0]['file']}: {first.name} is no valid slsaprovenance1 attestation of it"), problems


def test_wrong_password_fails_fast_and_marks_nothing(release, monkeypatch):
    m, plan, dist = _as_version(*release, "0.3.0")
    monkeypatch.setenv("TWINE_USERNAME", "toolkit")
    monkeypatch.setenv("TWINE_PASSWORD", "not-the-password")
    with pytest.raises(PublishError, match=r"the index http://127\.0\.0\.1:8096/ refused the credentials"):
        publish.publish(m, plan, dist, yes=True)
    assert not any("published" in r for r in Manifest(dist / "manifest.json").data["artifacts"].values())
    assert _held(m, "0.3.0") == {}


class _EchoPassword(http.server.BaseHTTPRequestHandler):
    """An index that refuses uploads with the password it was sent in its answer, as a careless one might."""

    def do_GET(self):
        self.send_error(404)  # nothing published yet

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        password = base64.b64decode(self.headers["Authorization"].split()[1]).decode().partition(":")[2]
        self.send_error(400, f"rejected upload signed with {password}")

    def log_message(self, *args):
        pass


def test_a_password_an_index_echoes_back_is_masked(release, monkeypatch, capsys):
    m, plan, dist = _as_version(*release, "0.3.1")
    monkeypatch.setenv("TWINE_USERNAME", "toolkit")
    monkeypatch.setenv("TWINE_PASSWORD", "s3cret-echoed-back")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoPassword)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PublishError) as exc:
            publish.publish(_through(m, f"http://127.0.0.1:{server.server_address[1]}/"), plan, dist, yes=True)
    finally:
        server.shutdown()
    assert "rejected upload signed with ***" in str(exc.value)  # the index's answer is shown, masked
    assert "s3cret-echoed-back" not in str(exc.value) + capsys.readouterr().err


class _FaultProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the real index, but answers 500 to uploads numbered in [fail_from, fail_to)."""

    target, fail_from, fail_to, hang_from, posts = "", 0, 0, 10**6, 0
    hung = threading.Event()  # set to let a hung upload go (unanswered)

    def do_GET(self):
        self._forward(None)

    def do_POST(self):
        cls = type(self)
        cls.posts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if cls.posts >= cls.hang_from:
            cls.hung.wait(120)
            return
        if cls.fail_from <= cls.posts < cls.fail_to:
            self.send_error(500, "injected fault")
        else:
            self._forward(body)

    def _forward(self, body):
        request = urllib.request.Request(self.target + self.path, data=body, method=self.command,
                                         headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, headers, data = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            status, headers, data = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fault_proxy(fresh_index):
    _FaultProxy.target, _FaultProxy.posts, _FaultProxy.hang_from = f"http://127.0.0.1:{INDEX_PORT}", 0, 10**6
    _FaultProxy.hung.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    _FaultProxy.hung.set()
    server.shutdown()


def _through(m, url):
    return dataclasses.replace(m, publish=dataclasses.replace(m.publish, index_url=url))


def test_passing_5xx_answers_are_retried(release, fault_proxy):
    m, plan, dist = _as_version(*release, "0.4.0")
    _FaultProxy.fail_from, _FaultProxy.fail_to = 1, 3  # the first two uploads get a 500
    publish.publish(_through(m, fault_proxy), plan, dist, yes=True)
    assert _FaultProxy.posts == 4
    assert len(_held(m, "0.4.0")) == 2


def test_an_index_that_goes_down_mid_run_is_completed_by_a_rerun(release, fault_proxy):
    m, plan, dist = _as_version(*release, "0.5.0")
    _FaultProxy.fail_from, _FaultProxy.fail_to = 2, 10**6  # first upload lands, then the index is down
    with pytest.raises(PublishError, match=r"gave up after 4 tries: .*500"):
        publish.publish(_through(m, fault_proxy), plan, dist, yes=True)
    records = Manifest(dist / "manifest.json").data["artifacts"]
    assert [w.id for w in plan.wheels if "published" in records[w.id]] == [plan.wheels[0].id]
    assert len(_held(m, "0.5.0")) == 1
    rerun = publish.publish(m, plan, dist, yes=True)
    # the second wheel's channel copies went out before its index upload failed: only that upload is left
    assert [a.action for a in rerun] == [publish.SKIP] * 5 + [publish.UPLOAD]
    held = _held(m, "0.5.0")
    assert len(held) == 2 and all(held[f] == sha256(dist / f) for f in held)


@pytest.fixture
def image_release(built_images, fresh_index, tmp_path, monkeypatch):
    """The none images of both platforms in a repository of their own, re-labelled per release version.

    Each version's images are the built ones plus its version label (the label is what tells releases
    apart); their smoke records are the built images' passing ones, moved to the new digests.
    """
    root, state, env = fresh_index
    for key, value in {**env, "TOOLKIT_STATE_DIR": str(state)}.items():
        monkeypatch.setenv(key, value)
    repo = f"127.0.0.1:5000/t{uuid.uuid4().hex[:8]}"
    selection = Selection(cuda=("13.0",), framework=("none",))
    base = load_matrix(root / "matrix.toml")
    images_only = dataclasses.replace(make_plan(base, selection), wheels=())
    assert all(r.result == smoke.PASS for r in smoke.smoke(base, images_only, built_images[0]))
    built = Manifest(built_images[0] / "manifest.json").data["artifacts"]

    def as_version(version, archs=("x86_64", "aarch64")):
        m = dataclasses.replace(base, project=dataclasses.replace(base.project, version=version),
                                publish=dataclasses.replace(base.publish, image_repository=repo))
        dist = tmp_path / version
        dist.mkdir(exist_ok=True)
        manifest = Manifest(dist / "manifest.json")
        plan = make_plan(m, dataclasses.replace(selection, arch=archs))
        for image in plan.images:
            record = dict(built[image.id])
            source = f"{record['tag'].rsplit(':', 1)[0]}@{record['digest']}"
            (dist / "Dockerfile").write_text(f"FROM {source}\nLABEL org.opencontainers.image.version={version}\n")
            pushed = f"{repo}/none:build-{version}-{image.build.arch.docker}"
            subprocess.run(["docker", "buildx", "build", f"--platform={image.build.platform}", f"--tag={pushed}",
                            "--push", f"--metadata-file={dist / 'meta.json'}", str(dist)],
                           check=True, capture_output=True)
            digest = json.loads((dist / "meta.json").read_text())["containerimage.digest"]
            record.update(tag=image.tag, platform_tag=pushed, digest=digest, pushed=True)
            record["smoke"] = {**record["smoke"], "digest": digest}
            record.pop("published", None)
            manifest.data["artifacts"][image.id] = record
        manifest.save()
        return m, dataclasses.replace(plan, wheels=()), dist

    return as_version


def _tag_digests(ref):
    return sorted(publish._registry_digests(ref) or [])


def test_a_narrowed_publish_holds_the_version_tag_unless_told(image_release, capsys):
    m, plan, dist = image_release("3.0.0", archs=("x86_64",))
    tag = plan.images[0].tag
    (held,) = publish.publish(m, plan, dist, yes=True)
    assert held.action == publish.HOLD and "linux/arm64 not in this publish" in held.detail
    assert _tag_digests(tag) == [] and _tag_digests(publish.floating_tag(plan.images[0])) == []
    assert "published" not in Manifest(dist / "manifest.json").get(plan.images[0].id)
    (partial,) = publish.publish(m, plan, dist, yes=True, partial=True)
    assert partial.action == publish.UPLOAD and partial.detail.startswith(f"PARTIAL: {tag} without linux/arm64")
    assert _tag_digests(tag) == [Manifest(dist / "manifest.json").get(plan.images[0].id)["digest"]]


class _ArgvWatch(threading.Thread):
    """Every command line on this machine while it runs (/proc/*/cmdline), as another user would see them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen, self.running = set(), True

    def run(self):
        while self.running:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:  # the process ended meanwhile
                    pass


def _registry_digest(ref):
    return json.loads(subprocess.run(["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}",
                                      ref], capture_output=True, text=True, check=True).stdout)["digest"]


def test_published_images_are_signed_and_attested_and_other_content_under_the_tag_fails(image_release, tmp_path,
                                                                                        capfd):
    m, plan, dist = image_release("5.0.0")
    tag = plan.images[0].tag
    watch = _ArgvWatch()
    watch.start()
    try:
        publish.publish(m, plan, dist, yes=True)
    finally:
        watch.running = False
        watch.join()
    state = Path(os.environ["TOOLKIT_STATE_DIR"])
    private_key = (state / "signing" / "cosign.key").read_text()
    assert "ENCRYPTED SIGSTORE PRIVATE KEY" in private_key
    password = json.loads((state / "credentials.json").read_text())["signing"]  # generated: none was set
    cosign = [c for c in watch.seen if "/cosign " in c]
    assert any(" sign " in c for c in cosign) and any(" attest " in c for c in cosign), sorted(watch.seen)[:20]
    assert not any(password in c for c in watch.seen)
    seen = capfd.readouterr()
    assert password not in seen.out + seen.err

    out = tmp_path / "verified"
    assert publish.verify(m, out=out) == []
    published = [p.read_bytes() for p in out.rglob("*") if p.is_file()]  # the metadata image's files, statements
    assert not any(password.encode() in b or private_key.encode() in b for b in published)
    assert {p.name for p in out.iterdir()} >= {"SHA256SUMS.sig", "cosign.pub", "sbom.cdx.json", "statements.json"}
    statements = json.loads((out / "statements.json").read_text())
    records = Manifest(dist / "manifest.json").data["artifacts"]
    for image in plan.images:
        record = records[image.id]
        bom = statements[f"{image.id} cdx"]["predicate"]
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
        purls = [c.get("purl", "") for c in bom["components"]]
        arch = image.build.arch.docker
        assert any(p.startswith("pkg:deb/debian/libc6@") and f"arch={arch}" in p for p in purls), purls
        assert any(p.startswith("pkg:deb/debian/python3@") for p in purls)
        assert any(p.startswith("pkg:pypi/saxpy@0.1.0%2Bcu130") for p in purls)  # the venv's own distribution
        slsa = statements[f"{image.id} slsa"]
        assert slsa["subject"][0]["digest"]["sha256"] == record["digest"].removeprefix("sha256:")
        dependencies = slsa["predicate"]["buildDefinition"]["resolvedDependencies"]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        assert dependencies[0] == {"uri": f"git+{m.project.source}@{commit}", "digest": {"gitCommit": commit}}
        bases = {d["name"]: "sha256:" + d["digest"]["sha256"] for d in dependencies
                 if d.get("uri", "").startswith("oci:")}
        assert bases == {ref: _registry_digest(ref) for ref in (image.build.build_image, image.runtime_image)}

    # the tag re-pushed with other content (one platform only): its digest has no signature
    amd64 = next(r["digest"] for r in records.values() if r.get("platform") == "linux/amd64")
    subprocess.run(["docker", "buildx", "imagetools", "create", f"--tag={tag}", f"{tag.rsplit(':', 1)[0]}@{amd64}"],
                   check=True, capture_output=True)
    problems = publish.verify(m)
    assert any(p.startswith(f"{tag}: no valid signature") for p in problems), problems


def test_the_floating_tag_never_moves_back_to_an_older_release(image_release):
    new_m, new_plan, new_dist = image_release("2.0.0")
    publish.publish(new_m, new_plan, new_dist, yes=True)
    floating = publish.floating_tag(new_plan.images[0])
    newest = _tag_digests(floating)
    assert newest == _tag_digests(new_plan.images[0].tag) and len(newest) == 2
    old_m, old_plan, old_dist = image_release("1.0.0")
    (action,) = publish.publish(old_m, old_plan, old_dist, yes=True)
    assert action.action == publish.UPLOAD and f"{floating} stays at the newer 2.0.0" in action.detail
    assert len(_tag_digests(old_plan.images[0].tag)) == 2  # the older version's own tag is made
    assert _tag_digests(floating) == newest
    assert publish.verify(old_m) == []


def test_an_images_patched_framework_wheel_goes_to_the_index_with_it_once(image_release, patchable, tmp_path):
    m, plan, dist = image_release("5.0.0", archs=("x86_64",))
    (image,) = plan.images
    (tmp_path / "work").mkdir()
    files = patches.apply(patchable.wheel, [("p/0001.patch", patchable.patch.encode())], tmp_path / "work",
                          "m.toml: framework.x.patches")
    wheel = stamp.patched(patchable.wheel, "1.0+proj", files, dist)
    Manifest(dist / "manifest.json").record(image.id, patched_wheel={"file": wheel.name, "sha256": sha256(wheel)})
    (held,) = publish.publish(m, plan, dist, yes=True)  # the tag waits for arm64: so does the wheel
    assert held.action == publish.HOLD and publish._index_files(m.publish.read_url, "demo") == {}
    (sent,) = [a for a in publish.publish(m, plan, dist, yes=True, partial=True) if a.channel]
    assert (sent.subject, sent.action, sent.detail, sent.channel) == (image.id, publish.UPLOAD, wheel.name,
                                                                      publish.INDEX)
    assert publish._index_files(m.publish.read_url, "demo") == {wheel.name: sha256(wheel)}
    assert Manifest(dist / "manifest.json").get(image.id)["patched_wheel"]["published"]["url"] == m.publish.index_url
    (again,) = [a for a in publish.publish(m, plan, dist, yes=True, partial=True) if a.channel]
    assert again.action == publish.SKIP
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(PublishError) as caught:
        publish.publish(m, plan, dist, yes=False, partial=True)
    assert f"{image.id}: {wheel.name} changed since the image was built with it" in caught.value.problems


def test_release_metadata_grows_with_each_publish_of_a_version_even_from_a_fresh_manifest(release, tmp_path, capsys):
    m, plan, dist = _as_version(*release, "0.6.0")
    first, second = ([w for w in plan.wheels if w.build.arch.value == arch] for arch in ("x86_64", "aarch64"))
    publish.publish(m, dataclasses.replace(plan, wheels=tuple(first)), dist, yes=True)
    assert (dist / "SHA256SUMS").read_text().count(".whl") == 3  # its channel, variant and index copies
    metadata = _digest(publish.metadata_image(m))
    # The second publish is a CI run's: a fresh manifest knowing only what its own jobs built.
    fresh = dist.parent / "fresh"
    fresh.mkdir()
    built = Manifest(dist / "manifest.json").data["artifacts"]
    for w in second:
        shutil.copy(dist / built[w.id]["file"], fresh)
        Manifest(fresh / "manifest.json").record(w.id, **built[w.id])
    dist = fresh
    publish.publish(m, dataclasses.replace(plan, wheels=tuple(second)), dist, yes=True)
    sums = (dist / "SHA256SUMS").read_text()
    records = Manifest(dist / "manifest.json").data["artifacts"]
    copies = {c["file"]: c["sha256"] for w in plan.wheels for c in records[w.id]["published"]["files"].values()}
    assert len(copies) == 6 and sums == "".join(f"{digest}  {file}\n" for file, digest in sorted(copies.items()))
    sbom = json.loads((dist / "sbom.cdx.json").read_text())
    assert sorted(c["hashes"][0]["content"] for c in sbom["components"]) == sorted(copies.values())
    assert _digest(publish.metadata_image(m)) != metadata
    assert publish.verify(m) == []
    # a user's check: verify-release, with the project's key, then with a key that signed nothing of it
    (tmp_path / "matrix.toml").write_text(m.source.read_text().replace('version = "0.1.0"', 'version = "0.6.0"'))
    for name in ("container", "examples", "patches"):
        (tmp_path / name).symlink_to(m.source.parent / name)
    key = signing.public_key(settings.state_dir())
    capsys.readouterr()
    assert cli.main(["verify-release", "--matrix", str(tmp_path / "matrix.toml"), "--key", str(key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"version": "0.6.0", "verified": True, "problems": []}
    other = signing.public_key(tmp_path / "other-signer")
    assert cli.main(["verify-release", "0.6.0", "--matrix", str(tmp_path / "matrix.toml"), "--key", str(other)]) == 7
    err = capsys.readouterr().err
    assert "SHA256SUMS: its signature does not verify" in err and "is no valid slsaprovenance1 attestation" in err
    first_file = records[first[0].id]["file"]
    # a sum gone wrong where clients read it: the registry's release metadata, not the local file
    (dist / "SHA256SUMS").write_text(sums.replace(f"  {first_file}", f"0  {first_file}"))
    publish._publish_metadata(m, dist, publish.metadata_names(publish.released(m, records)[0], keyless=False))
    problems = publish.verify(m)
    assert [p.split(":")[0:4] for p in problems if p.startswith("wheel:")] == [f"{first[0].id}@cu130".split(":")]
    assert any("SHA256SUMS: its signature does not verify" in p for p in problems), problems


def test_an_index_read_elsewhere_than_it_is_uploaded_to_is_read_there(release):
    """PyPI, Artifactory: the upload URL serves no simple API; simple-url says where to read."""
    m, plan, dist = _as_version(*release, "0.9.0")
    publish.publish(m, plan, dist, yes=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoPassword)  # 404 to reads, 400 to uploads
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        split = dataclasses.replace(m, publish=dataclasses.replace(
            m.publish, index_url=f"http://127.0.0.1:{server.server_address[1]}/legacy/", simple_url=m.publish.read_url))
        assert [a.action for a in publish.publish(split, plan, dist, yes=True)] == [publish.SKIP] * 6
    finally:
        server.shutdown()


def test_ctrl_c_mid_publish_says_what_was_sent_and_a_rerun_finishes(release, fault_proxy, tmp_path, wheels_only,
                                                                   capsys):
    m, plan, dist = _as_version(*release, "0.8.0")
    _FaultProxy.hang_from = 2  # the first upload lands, the second hangs: the moment a user presses Ctrl-C
    text = wheels_only('"3.11"')
    text = text.replace('version = "0.1.0"', 'version = "0.8.0"').replace(
        "127.0.0.1:5000/gpu-toolkit", m.publish.image_repository).replace(
        'index-url = "http://127.0.0.1:8081/"',
        f'index-url = "{fault_proxy}"\nchannel-url = "http://127.0.0.1:{CHANNEL_PORT}/"')
    for name in ("examples", "patches"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "matrix.toml").write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "publish", "--matrix", str(tmp_path / "matrix.toml"),
                             "--dist", str(dist), "--yes"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    host.wait_for(lambda: _FaultProxy.posts >= 2, "the second upload", timeout=120)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group: toolkit and twine
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first, second = plan.wheels
    assert f"interrupted: published in this run: {first.id}\n" in err and second.id not in err.split("interrupted")[1]
    assert "a re-run does only the rest" in err
    records = Manifest(dist / "manifest.json").data["artifacts"]  # whole and readable
    assert "published" in records[first.id] and "published" not in records[second.id]
    assert not list(dist.glob(".manifest-*"))
    (tmp_path / "matrix.toml").write_text(text.replace(fault_proxy, m.publish.index_url))  # the index, directly
    assert cli.main(["publish", "--matrix", str(tmp_path / "matrix.toml"), "--dist", str(dist), "--yes",
                     "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert [a["action"] for a in rerun["actions"]] == [publish.SKIP] * 5 + [publish.UPLOAD]
    assert rerun["sent"] is True and rerun["verify"] == []
    assert len(_held(m, "0.8.0")) == 2
