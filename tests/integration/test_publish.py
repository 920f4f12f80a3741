"""Publishing against a fresh local index: gates, idempotence, refusal, auth and faults."""

from __future__ import annotations

import dataclasses
import http.server
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
import zipfile

import pytest

from toolkit import engine, publish, settings, smoke
from toolkit.errors import PublishError
from toolkit.manifest import Manifest
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan
from toolkit.wheels import sha256

pytestmark = pytest.mark.integration

INDEX_PORT = 8096


@pytest.fixture(scope="module")
def fresh_index(engine_up, registry_cred, request, tmp_path_factory):
    """An index of its own (own state, port and credentials) so every test starts from nothing.

    The registry is the session's, used as a user's existing one: its credentials come from the environment.
    """
    root = tmp_path_factory.mktemp("publish")
    text = (request.config.rootpath / "matrix.toml").read_text()
    (root / "matrix.toml").write_text(text.replace("http://127.0.0.1:8081/", f"http://127.0.0.1:{INDEX_PORT}/"))
    shutil.copytree(request.config.rootpath / "container", root / "container")
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
            if f.startswith(f"saxpy-{version}+")}


def _as_version(m, plan, dist, version):
    """The built wheels re-versioned: each test publishes a release of its own to the shared index."""
    m2 = dataclasses.replace(m, project=dataclasses.replace(m.project, version=version))
    p2 = dataclasses.replace(make_plan(m2, Selection(cuda=("13.0",), framework=("none",))), images=())
    manifest = Manifest(dist / "manifest.json")
    for w in p2.wheels:
        record = manifest.artifact(w.id)
        new_name = record["file"].replace(f"saxpy-{m.project.version}+", f"saxpy-{version}+")
        with zipfile.ZipFile(dist / record["file"]) as zin, zipfile.ZipFile(dist / new_name, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename.endswith(("METADATA", "RECORD", "WHEEL")):
                    data = data.replace(f"{m.project.version}+".encode(), f"{version}+".encode())
                zout.writestr(info.filename.replace(f"saxpy-{m.project.version}+", f"saxpy-{version}+"), data)
        record["file"], record["sha256"] = new_name, sha256(dist / new_name)
        record["smoke"]["sha256"] = record["sha256"]
    manifest.save()
    return m2, p2, dist


def _change_content(dist, artifact_id):
    manifest = Manifest(dist / "manifest.json")
    record = manifest.artifact(artifact_id)
    with zipfile.ZipFile(dist / record["file"], "a") as zf:
        zf.writestr("saxpy/extra.txt", "changed")
    record["sha256"] = record["smoke"]["sha256"] = sha256(dist / record["file"])
    manifest.save()


def test_unsmoked_artifact_cannot_be_published(release):
    m, plan, dist = release
    manifest = Manifest(dist / "manifest.json")
    manifest.artifact("wheel:saxpy:cu130:aarch64").pop("smoke", None)
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
    assert [a.action for a in dry] == [publish.UPLOAD, publish.UPLOAD] and _held(m, "0.2.0") == {}
    publish.publish(m, plan, dist, yes=True)
    assert publish.verify(m, plan, dist) == []
    held = _held(m, "0.2.0")
    assert len(held) == 2 and all(held[f] == sha256(dist / f) for f in held)
    metadata = _digest(publish.metadata_image(m))
    assert {a.action for a in publish.publish(m, plan, dist, yes=True)} == {publish.SKIP}
    assert _digest(publish.metadata_image(m)) == metadata  # nothing new: the release metadata is not re-pushed
    assert (dist / "SHA256SUMS").read_text().count(".whl") == 2
    assert '"bomFormat": "CycloneDX"' in (dist / "sbom.cdx.json").read_text()
    _change_content(dist, "wheel:saxpy:cu130:x86_64")
    with pytest.raises(PublishError, match=r"refused: saxpy-0\.2\.0\+cu130-.*already there with sha256"):
        publish.publish(m, plan, dist, yes=True)
    assert _held(m, "0.2.0") == held


def test_wrong_password_fails_fast_and_marks_nothing(release, monkeypatch, capsys):
    m, plan, dist = _as_version(*release, "0.3.0")
    monkeypatch.setenv("TWINE_USERNAME", "toolkit")
    monkeypatch.setenv("TWINE_PASSWORD", "not-the-password")
    with pytest.raises(PublishError, match=r"the index http://127\.0\.0\.1:8096/ refused the credentials"):
        publish.publish(m, plan, dist, yes=True)
    assert not any("published" in r for r in Manifest(dist / "manifest.json").data["artifacts"].values())
    assert _held(m, "0.3.0") == {}
    assert "not-the-password" not in capsys.readouterr().err


class _FaultProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the real index, but answers 500 to uploads numbered in [fail_from, fail_to)."""

    target, fail_from, fail_to, posts = "", 0, 0, 0

    def do_GET(self):
        self._forward(None)

    def do_POST(self):
        cls = type(self)
        cls.posts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
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
    _FaultProxy.target, _FaultProxy.posts = f"http://127.0.0.1:{INDEX_PORT}", 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
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
    assert [a.action for a in rerun] == [publish.SKIP, publish.UPLOAD]
    held = _held(m, "0.5.0")
    assert len(held) == 2 and all(held[f] == sha256(dist / f) for f in held)
