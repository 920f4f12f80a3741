"""Build modes, and the ``cross`` one: aarch64 CUDA wheels compiled on x86_64 without emulation.

nvcc on x86_64 compiles device code for every GPU anyway; only host code needs an aarch64
compiler. The cross builder (rendered ``container/Dockerfile.cross-builder-*``) is the x86_64
wheel builder plus g++-aarch64-linux-gnu, Debian's arm64 Python headers and sysconfig data and
the aarch64 CUDA runtime wheel. cibuildwheel cannot cross-compile on Linux, so the toolkit drives
its steps itself, in that builder: the build frontend (with the rendered CMake toolchain file, and
the target's sysconfig data, so a per-Python extension gets the aarch64 suffix), a retag to
``linux_aarch64`` and ``auditwheel repair`` for the aarch64 policy. Audit and smoke (in an
arm64 container) then treat the wheel like any other.
"""

from __future__ import annotations

from pathlib import Path

from . import render, sccache
from .engine import docker
from .errors import ConfigError
from .matrix import CROSS_RUNTIME, Arch, BuildMode, Matrix
from .plan import WheelArtifact

PROJECT = "/project"
OUTPUT = "/output"
TOOLCHAIN = "/toolchain.cmake"
# auditwheel finds the aarch64 libstdc++/libgcc of the cross compiler here.
LDPATHS = f"/usr/{render.CROSS_TRIPLET}/lib"


def resolve(m: Matrix, w: WheelArtifact, host: Arch, override: BuildMode | None = None) -> BuildMode:
    """How wheel ``w`` is built on ``host`` (``override``: --build-mode)."""
    arch = w.build.arch
    if arch is host:
        return BuildMode.NATIVE
    wanted = override or m.build_mode.get(arch.value, BuildMode.AUTO)
    blocker = why_not_cross(m, w, host)
    if wanted is BuildMode.AUTO:
        return BuildMode.EMULATED if blocker else BuildMode.CROSS
    key = f"{m.source}: build-mode.{arch.value}"
    allowed = "allowed here: auto, " + ("emulated" if blocker else "cross, emulated")
    if wanted is BuildMode.NATIVE:
        raise ConfigError([f"{key}: 'native' builds only on an {arch.value} host, this one is {host.value}; "
                           + allowed])
    if wanted is BuildMode.CROSS and blocker:
        raise ConfigError([f"{key}: 'cross' cannot build {w.id}: {blocker}; {allowed}"])
    return wanted


def why_not_cross(m: Matrix, w: WheelArtifact, host: Arch) -> str:
    """Why ``w`` cannot be cross-compiled on ``host`` ("" when it can): what ``auto`` builds emulated, and why."""
    line = m.cuda[w.build.cuda]
    if w.build.arch is not Arch.AARCH64 or host is not Arch.X86_64:
        return f"cross builds aarch64 wheels on an x86_64 host, not {w.build.arch.value} on {host.value}"
    if line.sysroot_image:
        return (f"the cross builder has no aarch64 sysroot for cuda.\"{w.build.cuda}\".sysroot-image "
                f"({line.sysroot_image}, the glibc floor)")
    if w.build.cuda not in render.cross_lines(m):
        return (f"CUDA {w.build.cuda} has no aarch64 CUDA runtime to link (cross needs toolchain = 'pypi' with "
                f"{CROSS_RUNTIME} in toolchain-requirements, and no wheel-image)")
    # A per-Python extension only for the Python whose aarch64 headers and sysconfig data the builder has.
    if not w.abi3 and w.pythons != (line.builder_python,):
        return (f"a per-Python extension cross-compiles for the builder's Python ({line.builder_python}) only, "
                f"this one is for {w.pythons[0]}")
    return ""


def ensure_builder(m: Matrix, version: str, root: Path, ca: Path, dry_run: bool) -> str:
    """Make sure the cross builder of a CUDA line exists (linux/amd64 only); return its image."""
    dockerfile = root / render.cross_dockerfile(version)
    image = render.cross_image(m, version, dockerfile.read_text())
    docker.ensure_image(image, [Arch.X86_64.platform], dockerfile=dockerfile, dry_run=dry_run, secrets={"ca": ca})
    return image


def command(m: Matrix, version: str, image: str, project: Path, out: Path, root: Path, ca: Path,
            env: dict[str, str], cache: sccache.Session) -> list[str]:
    """The ``docker run`` that builds (through sccache: ``cache``), retags and repairs one aarch64 wheel of
    ``project`` into ``out``."""
    python_bin = f"/opt/python/{render.python_tag(m.cuda[version].builder_python)}/bin"
    script = " && ".join([
        f"export PATH={python_bin}:$PATH",
        cache.start(),
        f"cp -r {PROJECT} /tmp/src",  # the source mount stays read-only
        "python -m build --installer=uv --wheel --outdir /tmp/raw /tmp/src",
        cache.report(),
        "python -m wheel tags --remove --platform-tag linux_aarch64 /tmp/raw/*.whl",
        f"{render.repair_command(m.cuda[version], Arch.AARCH64.value)} --ldpaths {LDPATHS} -w {OUTPUT} /tmp/raw/*.whl",
    ])
    mounts = [f"{project.resolve()}:{PROJECT}:ro", f"{out.resolve()}:{OUTPUT}",
              f"{(root / render.CROSS_TOOLCHAIN).resolve()}:{TOOLCHAIN}:ro", f"{ca}:{render.CA_IN_CONTAINER}:ro",
              *cache.volumes()]
    environment = {**dict(render.wheel_environment(m.cuda[version])), **env, **cache.environment(),
                   "CMAKE_TOOLCHAIN_FILE": TOOLCHAIN,
                   "_PYTHON_SYSCONFIGDATA_NAME": render.CROSS_SYSCONFIG,
                   "CMAKE_ARGS": "-DCMAKE_POLICY_DEFAULT_CMP0190=NEW"}
    return ["docker", "run", "--rm", f"--platform={Arch.X86_64.platform}",
            *(f"--volume={v}" for v in mounts), *(f"--env={k}={v}" for k, v in environment.items()),
            image, "bash", "-c", script]
