"""Engine components 1-3: the Docker daemon, buildx and aarch64/x86_64 emulation."""

from __future__ import annotations

import os
import platform
import re
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
# The ELF header (magic, mask) binfmt_misc matches each arch's executables by, as Debian registers them.
_ELF_HEADERS = {
    Arch.AARCH64: ("7f454c460201010000000000000000000200b700", "ffffffffffffff00fffffffffffffffffeffffff"),
    Arch.X86_64: ("7f454c4602010100000000000000000002003e00", "fffffffffffefe00fffffffffffffffffeffffff"),
}
# Bookworm's QEMU 7.2 hangs or crashes running PyTorch's aarch64 build; trixie's 10.0 runs it.
MIN_QEMU = (10, 0)
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
    entry = _binfmt_entry(name)
    # F (fix binary) lets containers and chroots use the interpreter without a copy inside.
    return entry.get("enabled") == "" and "F" in entry.get("flags", "")


def _binfmt_entry(name: str) -> dict[str, str]:
    """The kernel's binfmt_misc entry ``name`` as {field: value} (``enabled`` has the value "")."""
    try:
        lines = (BINFMT / name).read_text().splitlines()
    except OSError:
        return {}
    # Lines read "enabled", "interpreter /usr/bin/qemu-aarch64", "flags: PF", …
    return {key.rstrip(":"): value for key, _, value in (line.partition(" ") for line in lines)}


def qemu_version(name: str) -> tuple[int, ...]:
    """The version of the QEMU registered as ``name``, () when none is or it does not say."""
    interpreter = _binfmt_entry(name).get("interpreter", "").strip()
    if not interpreter or not Path(interpreter).exists():
        return ()
    # Debian's registered path is a link to the binary; only under its own name does it answer --version.
    proc = tools.run([str(Path(interpreter).resolve()), "--version"], capture=True, quiet=True, check=False)
    found = re.search(r"version (\d+)\.(\d+)", proc.stdout)
    return tuple(map(int, found.groups())) if found else ()


def binfmt_status() -> Status:
    """Emulated platforms registered with the kernel, and the QEMU that runs them."""
    found = emulated_platforms()
    versions = {".".join(map(str, qemu_version(name))) for arch, name in _QEMU.items() if arch.platform in found}
    return Status(name="emulation", up=bool(found), address=", ".join(found), version=", ".join(sorted(versions)),
                  detail="" if found else "no qemu binfmt entries")


def ensure_binfmt(archs: list[Arch], state: Path) -> Status:
    """Register QEMU >= 10 for every arch in ``archs`` that is not the host's: Debian trixie's static build,
    unpacked into the state directory (an older registered QEMU is replaced)."""
    for arch in archs:
        name = _QEMU[arch]
        if arch is host_arch() or (_binfmt_enabled(name) and qemu_version(name) >= MIN_QEMU):
            continue
        require_root(f"{arch.value} emulation", f"register QEMU >= {'.'.join(map(str, MIN_QEMU))} with binfmt_misc")
        qemu = state / "qemu" / "usr" / "bin" / name
        if not qemu.exists():
            step(f"fetching QEMU {'.'.join(map(str, MIN_QEMU))} ({name}) from Debian trixie")
            tools.run(["dpkg-deb", "-x", _trixie_download(state / "apt-trixie", "qemu-user"), state / "qemu"])
        if not (BINFMT / "register").exists():
            tools.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        if (BINFMT / name).exists():
            (BINFMT / name).write_text("-1")  # unregister the old one: one entry per name
        magic, mask = _ELF_HEADERS[arch]
        (BINFMT / "register").write_text(f":{name}:M::{_escaped(magic)}:{_escaped(mask)}:{qemu}:PF")
        if not _binfmt_enabled(name) or qemu_version(name) < MIN_QEMU:
            raise EngineError(f"{name} from {qemu} is not enabled with the F flag in {BINFMT}")
    return binfmt_status()


def _escaped(hex_bytes: str) -> str:
    """binfmt_misc's register syntax for bytes: \\xNN each."""
    return "".join(f"\\x{hex_bytes[i:i + 2]}" for i in range(0, len(hex_bytes), 2))
