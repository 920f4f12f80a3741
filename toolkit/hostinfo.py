"""Facts about this machine: OS, CUDA toolchains and GPUs. Read-only; used by doctor and smoke."""

from __future__ import annotations

import dataclasses
import glob
import platform
import re
from pathlib import Path

from . import tools


@dataclasses.dataclass(frozen=True, kw_only=True)
class Nvcc:
    """One CUDA compiler found on this machine."""

    path: str
    version: str
    gpu_code: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gpu:
    """One NVIDIA GPU as nvidia-smi reports it."""

    name: str
    compute_capability: str
    driver: str


def os_name() -> str:
    """PRETTY_NAME from os-release, e.g. ``Debian GNU/Linux 12 (bookworm)``."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return match.group(1) if match else platform.system()


def nvcc_compilers() -> list[Nvcc]:
    """One nvcc per CUDA release, from PATH first, then /usr/local/cuda*, with its ``--list-gpu-code``."""
    candidates = [tools.which("nvcc"), *sorted(glob.glob("/usr/local/cuda*/bin/nvcc"))]
    found: dict[str, Nvcc] = {}
    for path in filter(None, candidates):
        out = tools.run([path, "--version"], capture=True, quiet=True, check=False).stdout
        match = re.search(r"release (\d+\.\d+)", out)
        if not match or match.group(1) in found:  # PATH entries are often wrappers of the same install
            continue
        codes = tools.run([path, "--list-gpu-code"], capture=True, quiet=True, check=False).stdout.split()
        found[match.group(1)] = Nvcc(path=path, version=match.group(1), gpu_code=tuple(codes))
    return list(found.values())


def gpus() -> list[Gpu]:
    """NVIDIA GPUs visible through nvidia-smi, else through the driver's /proc files; empty when there is none."""
    if tools.which("nvidia-smi") is None:
        return _driver_gpus()
    proc = tools.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                     capture=True, quiet=True, check=False)
    if proc.returncode != 0:
        return []
    rows = [[part.strip() for part in line.split(",")] for line in proc.stdout.splitlines() if line.strip()]
    return [Gpu(name=r[0], compute_capability=r[1], driver=r[2]) for r in rows if len(r) == 3]


def _driver_gpus(proc: Path = Path("/proc/driver/nvidia")) -> list[Gpu]:
    """GPUs as the loaded NVIDIA driver lists them, where nvidia-smi is not installed (slim images, some hosts)."""
    version = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", _read(proc / "version"))
    found = []
    for info in sorted(proc.glob("gpus/*/information")):
        model = re.search(r"^Model:\s*(.+)$", _read(info), re.M)
        found.append(Gpu(name=model.group(1).strip() if model else "NVIDIA GPU", compute_capability="?",
                         driver=version.group(1) if version else "?"))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
