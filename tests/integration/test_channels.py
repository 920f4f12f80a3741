"""Per-CUDA channels and the variants index: written by rclone, served by the engine's nginx, read by pip and uv."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from toolkit import channels, publish, stamp
from toolkit.errors import PublishError
from toolkit.wheels import sha256

pytestmark = pytest.mark.integration
X86 = "wheel:saxpy:cu130:x86_64"


@pytest.fixture
def channel(engine_up, repo_matrix):
    """A channel of its own in the engine's channel root (served on channel-url), removed afterwards."""
    made = []

    def make(kind: str) -> channels.Channel:
        name = f"{kind}-test-{uuid.uuid4().hex[:8]}" if kind != channels.VARIANTS else channels.VARIANTS
        found = channels.Channel(name=name, root=str(engine_up / "channels" / f"t{uuid.uuid4().hex[:8]}"),
                                 url=repo_matrix.publish.channel_url)
        made.append(Path(found.root))
        return found

    yield make
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


def _served(ch: channels.Channel, engine_up: Path) -> str:
    """The URL nginx serves ``ch`` at (its root is a folder under the engine's channel root)."""
    sub = Path(ch.root).relative_to(engine_up / "channels")
    return f"{ch.url.rstrip('/')}/{sub}/{ch.name}/simple/"


def _pip_download(url: str, requirement: str, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--index-url",
                           url, "-d", dest, requirement], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": "/dev/null"})


def test_a_cuda_channel_serves_pep503_691_658_and_never_overwrites(built_wheels, channel, engine_up, tmp_path):
    dist, records = built_wheels
    built = dist / records[X86]["file"]
    ch = channel("cu130")
    assert channels.publish(ch, "saxpy", {built: sha256(built)}) == [built.name]
    assert channels.publish(ch, "saxpy", {built: sha256(built)}) == []  # a re-publish sends nothing
    url = _served(ch, engine_up)

    json_page = requests.get(f"{url}saxpy/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10)
    assert json_page.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    (entry,) = json_page.json()["files"]
    assert entry["hashes"]["sha256"] == records[X86]["sha256"] and entry["requires-python"] == ">=3.10"
    metadata = requests.get(f"{url}saxpy/{built.name}.metadata", timeout=10).content
    assert entry["core-metadata"]["sha256"] == hashlib.sha256(metadata).hexdigest()
    assert b"Version: 0.1.0+cu130" in metadata
    assert 'data-core-metadata="sha256=' in requests.get(f"{url}saxpy/", timeout=10).text  # HTML for the others

    got = _pip_download(url, "saxpy===0.1.0+cu130", tmp_path / "pip")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "pip" / built.name).read_bytes() == built.read_bytes()

    other = tmp_path / "other" / built.name  # same name, other bytes: refused, the channel keeps the first
    other.parent.mkdir()
    shutil.copy(stamp.with_version(built, "0.1.0+cu130.post0", tmp_path / "x"), other)
    with pytest.raises(PublishError, match="already there with sha256"):
        channels.publish(ch, "saxpy", {other: sha256(other)})
    assert requests.get(f"{url}saxpy/{built.name}", timeout=10).content == built.read_bytes()


def test_uv_picks_the_variant_for_a_gpu_of_its_line_and_refuses_on_a_cpu_host(built_wheels, channel, engine_up,
                                                                             tmp_path):
    dist, records = built_wheels
    record = records[X86]
    made = stamp.variant(dist / record["file"], "0.1.0", "cu130", publish.variant_properties(record), tmp_path)
    ch = channel(channels.VARIANTS)
    channels.publish(ch, "saxpy", {made: sha256(made)})
    url = _served(ch, engine_up)
    assert requests.get(f"{url}saxpy/saxpy-0.1.0-variants.json", timeout=10).json()["variants"]["cu130"]["nvidia"][
        "cuda_version_lower_bound"] == ["13.0"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    argv = [str(a) for a in publish.uv_install_argv(venv, url, "saxpy===0.1.0")]
    # this host has no NVIDIA driver: no variant fits, and uv says so (pip does not know variants at all)
    cpu = subprocess.run(argv, capture_output=True, text=True)
    assert cpu.returncode != 0 and "only unsupported wheel variants" in cpu.stderr
    # told it has a CUDA 12.9 driver: the 13.0 variant still does not fit
    old = subprocess.run(argv, capture_output=True, text=True, env={
        **publish.gpu_of(record), "NV_VARIANT_PROVIDER_FORCE_CUDA_DRIVER_VERSION": "12.9"})
    assert old.returncode != 0 and "only unsupported wheel variants" in old.stderr
    gpu = subprocess.run(argv, capture_output=True, text=True, env=publish.gpu_of(record))
    assert gpu.returncode == 0, gpu.stderr
    assert list(venv.glob("lib/python*/site-packages/saxpy-0.1.0.dist-info/variant.json"))
