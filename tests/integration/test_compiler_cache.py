"""The compiler cache against real builds: sccache in throw-away cibuildwheel and cross containers, a local
cache that outlives them, a remote backend (Redis in a container) whose password must appear nowhere."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from toolkit import images, sccache, settings, wheels
from toolkit.engine import docker
from toolkit.plan import Selection, make_plan

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "sccache-redis-pw-7f3a9c"


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])  # cibuildwheel (native), the cross builder
def test_the_cache_hits_in_a_new_container_and_the_wheel_is_the_same_without_it(engine_up, repo_matrix, tmp_path,
                                                                               monkeypatch, arch):
    monkeypatch.setenv(settings.COMPILER_CACHE_ENV, str(tmp_path / "cache"))
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), arch=(arch,), framework=("none",)))
    (cold,) = wheels.build(repo_matrix, plan, REPO, tmp_path / "dist")
    (warm,) = wheels.build(repo_matrix, plan, REPO, tmp_path / "dist", force=True)  # a new container
    kept = _files(tmp_path / "cache")
    (off,) = wheels.build(repo_matrix, plan, REPO, tmp_path / "off", cache=False)
    first, second, none = cold["compiler_cache"], warm["compiler_cache"], off["compiler_cache"]
    print(f"{arch}: cold {cold['build_seconds']} s {sccache.describe(first)}; "
          f"warm {warm['build_seconds']} s {sccache.describe(second)}; off {off['build_seconds']} s")
    assert first["enabled"] and first["location"] == "local" and first["hits"] == 0
    assert {"C/C++", "CUDA", "PTX", "CUBIN"} <= set(first["misses_by_language"])  # device code counted apart
    assert second["hits"] == first["misses"] > 0 and second["misses"] == 0
    assert second["hits_by_language"] == first["misses_by_language"]
    assert not none["enabled"] and none["hits"] == 0 and none["misses"] == first["misses"]
    # The launcher timed every call, the cache off included; the slowest name their source files.
    assert 0 < second["compile_seconds"] < first["compile_seconds"] and none["compile_seconds"] > 0
    assert all(c["source"] and c["seconds"] > 0 for c in first["slowest_compiles"])
    assert any(c["source"].endswith(".cu") for c in first["slowest_compiles"])
    assert _files(tmp_path / "cache") == kept  # the cache off: nothing read from it or written to it
    assert cold["sha256"] == warm["sha256"] == off["sha256"]
    record = json.loads((tmp_path / "dist" / "manifest.json").read_text())["artifacts"][cold["id"]]
    assert record["compiler_cache"] == second


@pytest.fixture
def redis(engine_up, repo_matrix, tmp_path):
    """A Redis server with a password, in a container on the engine's default bridge (where build containers
    reach it); the password is in its configuration file, not its command line."""
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nRUN apt-get update && apt-get install -y --no-install-recommends redis-server"
            " && rm -rf /var/lib/apt/lists/*\n")
        image = f"{repo_matrix.publish.image_repository}/test-redis:bookworm"
        docker.ensure_image(image, ["linux/amd64"], dockerfile=Path(context) / "Dockerfile", dry_run=False,
                            build_args={"BASE": repo_matrix.image("debian:bookworm-slim")})
    conf = tmp_path / "redis.conf"
    conf.write_text(f"bind 0.0.0.0\nprotected-mode no\nrequirepass {PASSWORD}\nsave \"\"\n")
    container = docker.client().containers.run(image, ["redis-server", "/etc/redis/test.conf"], detach=True,
                                               volumes={str(conf): {"bind": "/etc/redis/test.conf", "mode": "ro"}})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        for _ in range(50):
            if container.exec_run(["redis-cli", "-a", PASSWORD, "--no-auth-warning", "ping"]).output.strip() == b"PONG":
                break
            time.sleep(0.1)
        yield f"redis://{address}:6379", container
    finally:
        container.remove(force=True)


def _in_saved_image(ref: str, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in ``docker save`` of ``ref`` (read as it streams: gigabytes)."""
    with subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE) as proc:
        tail = b""
        while chunk := proc.stdout.read(1 << 22):
            if needle in tail + chunk:
                proc.kill()
                return True
            tail = chunk[-len(needle):]
    assert proc.returncode == 0
    return False


@contextlib.contextmanager
def _argv_watch():
    """Every process command line on this host (containers' included) seen while the block runs."""
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            done.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def test_a_remote_backend_s_password_reaches_sccache_and_nowhere_else(redis, repo_matrix, tmp_path, monkeypatch,
                                                                     capfd):
    endpoint, server = redis
    monkeypatch.setenv("SCCACHE_REDIS_ENDPOINT", endpoint)
    monkeypatch.setenv("SCCACHE_REDIS_PASSWORD", PASSWORD)
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), arch=("x86_64",), framework=("none",)))
    with _argv_watch() as argv:
        monkeypatch.setenv(settings.COMPILER_CACHE_ENV, str(tmp_path / "local-a"))
        (first,) = wheels.build(repo_matrix, plan, REPO, tmp_path / "dist", force=True)
        monkeypatch.setenv(settings.COMPILER_CACHE_ENV, str(tmp_path / "local-b"))  # a machine with no local cache
        (second,) = wheels.build(repo_matrix, plan, REPO, tmp_path / "dist", force=True)
        # The image's wheel-build stage (the one that gets the settings) built afresh, and kept as an image.
        (image,) = plan.images
        with sccache.settings_file() as conf:
            argv_build = images.build_command(repo_matrix, image, REPO, tmp_path / "dist", tmp_path / "meta.json",
                                              push=False, builder=None, target="wheel-build", cache=conf)
            stage = f"{image.tag}-wheel-build-test"
            argv_build = [a if not a.startswith("--tag=") else f"--tag={stage}" for a in argv_build]
            built = subprocess.run([*argv_build[:-1], "--no-cache-filter=wheel-build", "--progress=plain",
                                    argv_build[-1]], capture_output=True, text=True, check=True)
    assert first["compiler_cache"]["location"] == "redis"
    assert second["compiler_cache"]["hits"] == first["compiler_cache"]["misses"] > 0  # from Redis
    assert not (tmp_path / "local-b").exists() or not _files(tmp_path / "local-b")
    keys = server.exec_run(["redis-cli", "-a", PASSWORD, "--no-auth-warning", "dbsize"]).output
    assert int(keys) > 0
    assert sccache.from_build_log(built.stderr, True)["location"] == "redis"  # the stage's counters, as recorded
    leaks = [f"argv: {a}" for a in argv if PASSWORD in a]
    leaks += [f"file: {p}" for p in (tmp_path / "dist").rglob("*")
              if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    out, err = capfd.readouterr()
    leaks += ["toolkit output" for text in (out, err, built.stdout, built.stderr) if PASSWORD in text]
    leaks += ["the wheel-build stage's layers"] if _in_saved_image(stage, PASSWORD.encode()) else []
    leaks += [f"container config of {c.name}" for c in docker.client().containers.list(all=True)
              if c.id != server.id and PASSWORD in json.dumps(c.attrs)]
    assert not leaks
    subprocess.run(["docker", "image", "rm", stage], capture_output=True, check=False)
