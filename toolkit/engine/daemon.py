"""Engine components 1-3: the Docker daemon, buildx and aarch64/x86_64 emulation."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from .. import settings, tools
from ..console import step
from ..errors import EngineError
from ..matrix import Arch
from . import docker
from .host import Status, apt_install, require_root, start_service, started_by, wait_for

BINFMT = Path("/proc/sys/fs/binfmt_misc")
DOCKER_SOCKET = Path("/var/run/docker.sock")
_QEMU = {Arch.AARCH64: "qemu-aarch64", Arch.X86_64: "qemu-x86_64"}
# Debian bookworm has no docker-buildx; trixie's package (a static Go binary) installs on it.
_TRIXIE_SOURCES = ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                   "http://deb.debian.org/debian trixie main\n")


def host_arch() -> Arch:
    """This machine's CPU architecture."""
    return Arch(platform.machine())


def dockerd_status(state: Path) -> Status:
    """Whether a Docker engine answers, and who started it."""
    if not docker.ping():
        return Status(name="docker", up=False)
    return Status(name="docker", up=True, version=docker.engine_version(),
                  address=settings.docker_host() or f"unix://{DOCKER_SOCKET}",
                  started_by=started_by(state, "dockerd"))


def ensure_dockerd(state: Path) -> Status:
    """Use a running engine; otherwise install docker.io if needed and start dockerd."""
    if not docker.ping():
        if settings.docker_host():
            raise EngineError(f"DOCKER_HOST={settings.docker_host()} does not answer: "
                              "start that engine, or unset DOCKER_HOST to let the toolkit run one")
        _require_access()
        if tools.which("dockerd") is None:
            apt_install(["docker.io", "containerd", "runc", "iptables"], "the Docker engine")
        step("starting dockerd")
        start_service("dockerd", ["dockerd"], state)
        wait_for(docker.ping, "dockerd", timeout=90, log=state / "dockerd.log")
    return dockerd_status(state)


def _require_access() -> None:
    """Say at once why a non-root user has no engine, instead of starting a second dockerd or waiting."""
    if DOCKER_SOCKET.exists() and not os.access(DOCKER_SOCKET, os.R_OK | os.W_OK):
        raise EngineError(f"a Docker engine runs, but {DOCKER_SOCKET} is not open to you: join the docker group "
                          "(`sudo usermod -aG docker $USER`, then log in again) or run the toolkit as root")
    if os.geteuid() != 0 and tools.which("dockerd") is not None:
        raise EngineError("dockerd is installed but not running, and starting it needs root: "
                          "`sudo systemctl start docker` (or `sudo toolkit engine up`), then retry")


def buildx_status() -> Status:
    """The buildx plugin's version, up when it is new enough."""
    version = docker.buildx_version()
    return Status(name="buildx", up=bool(version and version >= docker.MIN_BUILDX),
                  version=str(version or ""),
                  detail="" if version else f"needs docker buildx >= {docker.MIN_BUILDX}")


def ensure_buildx(state: Path) -> Status:
    """Install trixie's docker-buildx package when buildx is missing or too old."""
    if not buildx_status().up:
        _install_trixie_buildx(state / "apt-trixie")
    status = buildx_status()
    if not status.up:
        raise EngineError(f"docker buildx >= {docker.MIN_BUILDX} is needed and could not be installed: "
                          "install Docker's buildx plugin (docker-buildx-plugin or Debian trixie's "
                          "docker-buildx) into /usr/libexec/docker/cli-plugins")
    return status


def _install_trixie_buildx(workdir: Path) -> None:
    require_root("docker buildx", "install Debian trixie's docker-buildx package")
    step("installing docker-buildx from Debian trixie")
    tools.run(["dpkg", "-i", _trixie_download(workdir, "docker-buildx")])


def _trixie_download(workdir: Path, package: str) -> Path:
    """The .deb of ``package`` from Debian trixie (apt with lists of its own: the host's sources stay as they are)."""
    lists = workdir / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    sources = workdir / "sources.list"
    sources.write_text(_TRIXIE_SOURCES)
    apt = ["apt-get", "-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
           "-o", f"Dir::State::Lists={lists}"]
    tools.run([*apt, "update", "-qq"])
    for old in workdir.glob(f"{package}_*.deb"):
        old.unlink()
    tools.run([*apt, "download", package], cwd=workdir)
    return next(iter(sorted(workdir.glob(f"{package}_*.deb"))))


def cosign(state: Path) -> Path:
    """cosign on PATH, else trixie's package unpacked into the state directory once (a static binary: no root)."""
    found = tools.which("cosign")
    unpacked = state / "cosign" / "usr" / "bin" / "cosign"
    if found or unpacked.exists():
        return Path(found or unpacked)
    step("fetching cosign from Debian trixie")
    tools.run(["dpkg-deb", "-x", _trixie_download(state / "apt-trixie", "cosign"), state / "cosign"])
    return unpacked


def emulated_platforms() -> list[str]:
    """Platforms other than the host's that binfmt_misc can run (``linux/arm64`` …)."""
    return [arch.platform for arch, name in _QEMU.items()
            if arch is not host_arch() and _binfmt_enabled(name)]


def _binfmt_enabled(name: str) -> bool:
    try:
        entry = (BINFMT / name).read_text()
    except OSError:
        return False
    # F (fix binary) lets containers and chroots use the interpreter without a copy inside.
    return entry.startswith("enabled") and "F" in next(
        (line.split()[1] for line in entry.splitlines() if line.startswith("flags:")), "")


def binfmt_status() -> Status:
    """Emulated platforms registered with the kernel."""
    found = emulated_platforms()
    return Status(name="emulation", up=bool(found), address=", ".join(found),
                  detail="" if found else "no qemu binfmt entries")


def ensure_binfmt(archs: list[Arch]) -> Status:
    """Register QEMU for every arch in ``archs`` that is not the host's."""
    for arch in archs:
        name = _QEMU[arch]
        if arch is host_arch() or _binfmt_enabled(name):
            continue
        if tools.which("update-binfmts") is None or not Path(f"/usr/bin/{name}-static").exists():
            apt_install(["qemu-user-static", "binfmt-support"], f"{arch.value} emulation")
        if not (BINFMT / "register").exists():
            tools.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        tools.run(["update-binfmts", "--enable", name])
        if not _binfmt_enabled(name):
            raise EngineError(f"{name} is not enabled with the F flag in {BINFMT} after update-binfmts")
    return binfmt_status()
