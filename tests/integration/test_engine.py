"""The engine against the real dockerd, registry, index and QEMU it brings up."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import docker
import docker.errors
import pytest

from toolkit import cli, engine, settings, tools
from toolkit.engine import credentials, daemon, host
from toolkit.engine import docker as adapter
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration

REGISTRY, INDEX = "127.0.0.1:5000", "http://127.0.0.1:8081"
BASE = "127.0.0.1:5000/mirror/debian:bookworm-slim"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _engine_state(state):
    """What a second `engine up` must leave as it is: pid files, credentials, configs, and the base images."""
    patterns = ("**/*.pid", "credentials.json", "**/htpasswd", "**/config.yml")
    files = {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for pattern in patterns for p in state.glob(pattern)}
    return files, {ref: adapter.platforms_of(ref) for ref in (BASE, BASE.replace("bookworm", "trixie"))}


def test_second_engine_up_changes_nothing(engine_up, capsys):
    before = _engine_state(engine_up)
    assert before[0], "the engine keeps pid files and credentials in its state"
    capsys.readouterr()
    assert cli.main(["engine", "up", "--cuda", "13.0", "--json"]) == 0
    captured = capsys.readouterr()
    statuses = json.loads(captured.out)
    assert all(s["up"] for s in statuses), statuses
    assert {s["name"] for s in statuses} >= {"docker", "buildx", "emulation", "registry", "index"}
    assert _engine_state(engine_up) == before
    acted = [line for line in captured.err.splitlines()
             if re.match(r"==> (starting|installing|building|joining|bootstrapping)", line)]
    assert acted == []


def test_base_image_is_a_manifest_list_of_both_platforms(engine_up):
    raw = tools.run(["docker", "buildx", "imagetools", "inspect", "--raw", BASE], capture=True).stdout
    manifest = json.loads(raw)
    assert "manifests" in manifest
    assert {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifest["manifests"]} == {
        "linux/amd64", "linux/arm64"}


def test_arm64_container_prints_aarch64(engine_up, registry_cred):
    adapter.pull(BASE, platform="linux/arm64", cred=registry_cred)
    assert adapter.run(BASE, ["uname", "-m"], platform="linux/arm64").strip() == "aarch64"
    adapter.pull(BASE, platform="linux/amd64", cred=registry_cred)
    assert adapter.run(BASE, ["uname", "-m"], platform="linux/amd64").strip() == "x86_64"


def test_registry_push_and_pull_need_the_password(engine_up, registry_cred):
    client = docker.from_env()
    adapter.pull(BASE, platform="linux/amd64", cred=registry_cred)
    ref = f"{REGISTRY}/test/probe"
    client.images.get(BASE).tag(ref, tag="v1")
    wrong = {"username": registry_cred.username, "password": "not-the-password"}
    with pytest.raises(docker.errors.APIError, match=r"401|unauthorized|authentication required"):
        client.login(registry=REGISTRY, reauth=True, **wrong)
    denied = client.images.push(ref, tag="v1", auth_config=wrong)
    assert "unauthorized" in denied or "authentication required" in denied
    good = {"username": registry_cred.username, "password": registry_cred.password}
    pushed = client.images.push(ref, tag="v1", auth_config=good)
    assert '"digest"' in pushed or "digest:" in pushed, pushed
    client.images.remove(f"{ref}:v1")
    client.images.pull(ref, tag="v1", auth_config=good)
    with pytest.raises(docker.errors.APIError):
        client.images.pull(ref, tag="v1", auth_config=wrong)


def _wheel(tmp: Path, name: str) -> Path:
    """A minimal but valid pure-Python wheel."""
    dist = name.replace("-", "_")
    path = tmp / f"{dist}-1.0-py3-none-any.whl"
    files = {
        f"{dist}/__init__.py": "VALUE = 42\n",
        f"{dist}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, text in files.items():
            zf.writestr(arcname, text)
        record = "".join(f"{a},,\n" for a in files) + f"{dist}-1.0.dist-info/RECORD,,\n"
        zf.writestr(f"{dist}-1.0.dist-info/RECORD", record)
    return path


def _twine(wheel: Path, user: str, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TWINE_USERNAME": user, "TWINE_PASSWORD": password, "TWINE_NON_INTERACTIVE": "1"}
    return subprocess.run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{INDEX}/", str(wheel)],
                          capture_output=True, text=True, env=env)


def test_index_upload_needs_auth_and_install_is_anonymous(engine_up, index_cred, tmp_path):
    name = f"tk-probe-{int(time.time() * 1000)}"
    wheel = _wheel(tmp_path, name)
    refused = _twine(wheel, index_cred.username, "wrong-password")
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    uploaded = _twine(wheel, index_cred.username, index_cred.password)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    again = _twine(wheel, index_cred.username, index_cred.password)
    assert again.returncode != 0, "re-uploading the same file must be refused"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--index-url",
                    f"{INDEX}/simple/", "--target", str(target), f"{name}==1.0"], check=True,
                   env={**os.environ, "PIP_FIND_LINKS": ""})
    assert (target / name.replace("-", "_") / "__init__.py").read_text() == "VALUE = 42\n"


def _listeners(port: int) -> set[str]:
    out = tools.run(["ss", "-Hltn", f"sport = :{port}"], capture=True, quiet=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_registry_index_and_channels_listen_on_loopback_only(engine_up):
    assert _listeners(5000) == {"127.0.0.1"}
    assert _listeners(8081) == {"127.0.0.1"}
    assert _listeners(8082) == {"127.0.0.1"}


def test_credentials_are_private_and_never_printed(engine_up, registry_cred, index_cred, tmp_path):
    if not os.environ.get(settings.REGISTRY_PASSWORD_ENV):
        assert (engine_up / "credentials.json").stat().st_mode & 0o777 == 0o600
    for secret in [*engine_up.glob("**/htpasswd"), *engine_up.glob("registry/config.yml"), *engine_up.glob("*.log"),
                   *engine_up.glob("*/*.log")]:
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} is readable by others"
    # A whole run, as a user starts it, with its own HOME: the output, the user's docker config, the
    # service logs and every process's argv are searched for the passwords.
    env = {**os.environ, "HOME": str(tmp_path), "TOOLKIT_STATE_DIR": str(engine_up)}
    env.pop("DOCKER_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "toolkit", "engine", "up", "--cuda", "13.0", "--arch", "x86_64"],
                          env=env, capture_output=True, text=True, check=True)
    assert "docker login" in proc.stderr, "the run logged in: its output is where a password could show"
    user_config = tmp_path / ".docker" / "config.json"
    assert not user_config.exists() or "auths" not in json.loads(user_config.read_text())
    assert [p.name for p in (engine_up / "docker-config").iterdir()] == [str(os.getpid())]
    for cred in (registry_cred, index_cred):
        encoded = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        for text in (proc.stdout, proc.stderr):
            assert cred.password not in text and encoded not in text
        for log in engine_up.rglob("*.log"):
            assert cred.password not in log.read_text(errors="replace"), log
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                assert cred.password not in cmdline.read_bytes().decode(errors="replace")
            except OSError:
                continue


def test_the_registry_login_lives_in_a_private_config_of_the_run(engine_up, registry_cred):
    private = adapter.private_config()
    assert os.environ["DOCKER_CONFIG"] == str(private) and private.parent == engine_up / "docker-config"
    assert private.stat().st_mode & 0o777 == 0o700
    assert "127.0.0.1:5000" in json.loads((private / "config.json").read_text())["auths"]


def test_a_user_outside_the_docker_group_is_told_at_once(engine_up):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the toolkit as another user")
    with tempfile.TemporaryDirectory() as home:  # pytest's own tmp folders are root's alone
        os.chmod(home, 0o777)
        env = {"PATH": os.environ["PATH"], "HOME": home, "TOOLKIT_STATE_DIR": f"{home}/state"}
        proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                               "-m", "toolkit", "engine", "up", "--cuda", "13.0", "--arch", "x86_64"],
                              env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 4, proc.stderr
    assert "not open to you: join the docker group (`sudo usermod -aG docker $USER`" in proc.stderr
    assert "starting dockerd" not in proc.stderr


def test_a_second_engine_reuses_docker_and_down_stops_only_its_own(engine_up, tmp_path, monkeypatch, request):
    """A user's existing dockerd is used, not restarted; down stops only what this state started."""
    text = (Path(request.config.rootpath) / "matrix.toml").read_text()
    text = text.replace("127.0.0.1:5000/gpu-toolkit", "127.0.0.1:5055/gpu-toolkit")
    text = text.replace("http://127.0.0.1:8081/", "http://127.0.0.1:8091/")
    (tmp_path / "matrix.toml").write_text(text)
    for name in ("examples", "patches"):
        (tmp_path / name).symlink_to(Path(request.config.rootpath) / name)
    state = tmp_path / "state"
    m = load_matrix(tmp_path / "matrix.toml")
    plan = make_plan(m, Selection(cuda=("13.0",), arch=("x86_64",)))
    statuses = {s.name: s for s in engine.up(m, plan, state)}
    assert statuses["docker"].started_by == "external"
    assert statuses["registry"].started_by == "toolkit" and statuses["index"].started_by == "toolkit"
    pids = [host.read_pid(state / "registry" / "registry.pid"), host.read_pid(state / "index" / "index.pid")]
    assert all(pids)
    assert engine.down(state) == ["index", "registry"]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    host.wait_for(lambda: not host.port_open("127.0.0.1", 5055) and not host.port_open("127.0.0.1", 8091),
                  "the stopped registry and index to close their ports", timeout=15)
    assert adapter.ping(), "the shared dockerd must keep running"
    assert daemon.dockerd_status(state).started_by == "external"
    assert credentials.load(state, "registry").password != credentials.load(engine_up, "registry").password


def test_adding_a_platform_keeps_those_the_tag_has(engine_up, tmp_path):
    """ensure_image builds only what the registry lacks, and its join keeps the platforms already there."""
    (tmp_path / "hello").write_text("hello\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY hello /hello\n")  # no RUN: no emulation needed for arm64
    image = f"127.0.0.1:5000/gpu-toolkit/ensure-test:{time.time_ns()}"
    assert adapter.ensure_image(image, ["linux/amd64"], dockerfile=dockerfile, dry_run=False)
    assert adapter.ensure_image(image, ["linux/arm64"], dockerfile=dockerfile, dry_run=False)
    assert sorted(adapter.platforms_of(image)) == ["linux/amd64", "linux/arm64"]
    assert not adapter.ensure_image(image, ["linux/amd64", "linux/arm64"], dockerfile=dockerfile, dry_run=False)


def test_the_registry_read_directly_answers_as_the_engine_does(engine_up, registry_cred, tmp_path):
    """A multi-platform tag of the registry this run logged into is read with one GET; its digest and
    platforms are those the engine reports. A tag the registry lacks is absent either way."""
    engine.login(load_matrix(REPO_ROOT / "matrix.toml"), engine_up)
    (tmp_path / "hello").write_text("hello\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY hello /hello\n")
    image = f"127.0.0.1:5000/gpu-toolkit/index-test:{time.time_ns()}"
    adapter.ensure_image(image, ["linux/amd64", "linux/arm64"], dockerfile=dockerfile, dry_run=False)
    engine_answer = docker.APIClient().inspect_distribution(
        image, auth_config={"username": registry_cred.username, "password": registry_cred.password})
    direct = adapter._index(image, registry_cred, 60)
    assert direct is not None, "a manifest list is read from the registry, not asked of the engine"
    assert direct["Descriptor"]["digest"] == engine_answer["Descriptor"]["digest"]
    assert sorted(adapter.platforms_of(image)) == ["linux/amd64", "linux/arm64"]
    assert sorted((p["os"], p["architecture"]) for p in direct["Platforms"]) == sorted(
        (p["os"], p["architecture"]) for p in engine_answer["Platforms"])
    assert adapter._index(image + "-absent", registry_cred, 60) is None
    assert adapter.platforms_of(image + "-absent") is None


def test_bootstrapping_a_platform_keeps_those_the_tag_has(engine_up):
    """A plan that needs fewer platforms than the mirror tag holds must not drop the others from it."""
    from toolkit.engine import baseimages
    from toolkit.matrix import Arch, Bootstrap

    resolved = f"127.0.0.1:5000/mirror/bootstrap-test:{time.time_ns()}"
    for arch in (Arch.AARCH64, Arch.X86_64):  # rootfs tarballs are cached by engine up
        image = baseimages.BaseImage(public="debian:bookworm-slim", resolved=resolved, archs=(arch,),
                                     recipe=Bootstrap(suite="bookworm"))
        assert baseimages.ensure(engine_up, image).up
    assert sorted(adapter.platforms_of(resolved)) == ["linux/amd64", "linux/arm64"]


def test_a_bootstrap_recipe_installs_its_packages_makes_its_links_and_only_its_archs(engine_up):
    """How the CUDA 12.4 stand-ins are made (a suite, packages, links, amd64 only), on a small package."""
    from toolkit.engine import baseimages
    from toolkit.matrix import Arch, Bootstrap

    resolved = f"127.0.0.1:5000/mirror/bootstrap-recipe-test:{time.time_ns()}"
    recipe = Bootstrap(suite="bookworm", packages=("file",), links={"/usr/local/bin/probe": "/usr/bin/file"},
                       arch=(Arch.X86_64,))
    image = baseimages.BaseImage(public="example/absent:1", resolved=resolved, archs=(Arch.X86_64, Arch.AARCH64),
                                 recipe=recipe)
    found = baseimages.ensure(engine_up, image)
    assert not found.up
    assert found.detail == ("missing linux/arm64; its [bootstrap] recipe makes it for x86_64 only "
                            "(Debian bookworm has file for no other): example/absent:1 is not reachable")
    assert adapter.platforms_of(resolved) == ["linux/amd64"]
    out = adapter.run(resolved, ["sh", "-c", "readlink /usr/local/bin/probe && probe --version"],
                      platform="linux/amd64")
    assert out.splitlines()[0] == "/usr/bin/file"
    assert out.splitlines()[1].startswith("probe-")  # file names itself after the link it ran by
