"""Will a framework's requirements install on each platform? Found before any build, in seconds.

For every framework image of a plan, uv's resolver (``uv pip compile --only-binary :all:``) resolves the
framework's requirements against PyPI for the image's platform, at the Python and glibc of its runtime
image, binary wheels only: what an emulated build would otherwise discover after many minutes, when pip
starts compiling an sdist under QEMU or gives up. Results are written to RESOLVED, which the support
matrix reads, and block the images preflight.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import re
import time
from pathlib import Path

import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from pypi_simple import NoSuchProjectError, PyPISimple
from uv import find_uv_bin

from . import settings, tools
from .console import step
from .errors import CommandError
from .matrix import Matrix
from .plan import Plan

PYPI = "https://pypi.org/simple/"  # where the images' pip installs from
RESOLVED = "docs/verification/resolve.json"
# The Python (its python3, which the image's pip runs) and glibc of the distributions runtime images are made
# from, found by name in the image reference. uv knows manylinux tags up to MAX_GLIBC.
DISTROS = {"bullseye": ("3.9", "2.31"), "bookworm": ("3.11", "2.36"), "trixie": ("3.13", "2.41"),
           "ubuntu20.04": ("3.8", "2.31"), "ubuntu22.04": ("3.10", "2.35"), "ubuntu24.04": ("3.12", "2.39")}
MAX_GLIBC = (2, 40)
RESOLVES, NO_WHEEL, UNKNOWN = "resolves", "no wheel", "unknown"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """One framework on one platform, at its runtime image's Python and glibc."""

    framework: str
    requirements: tuple[str, ...]
    platform: str
    arch: str
    runtime_image: str
    made_from: str  # what distro() reads: the runtime image's name, or the suite its [bootstrap] recipe uses

    @property
    def key(self) -> tuple[str, str, str]:
        return self.framework, self.platform, self.runtime_image


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    """What the resolver said: RESOLVES (with the pins), NO_WHEEL (with uv's reason), or UNKNOWN (it could
    not tell: an unknown distribution, or PyPI unreachable)."""

    framework: str
    platform: str
    runtime_image: str
    python: str
    glibc: str
    status: str
    reason: str = ""
    packages: int = 0
    pins: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        """The target's key (framework, platform, runtime image)."""
        return self.framework, self.platform, self.runtime_image

    def detail(self) -> str:
        """The reason, or what resolved: ``197 packages: torch==2.13.0 vllm==0.32.0``."""
        return self.reason or f"{self.packages} packages: " + " ".join(f"{k}=={v}" for k, v in self.pins.items())

    def why(self) -> str:
        """The reason a framework image cannot be built on this platform ('' when it can, or nobody knows)."""
        if self.status != NO_WHEEL:
            return ""
        return (f"{self.framework}'s requirements have no binary wheel for {self.platform} at Python {self.python}, "
                f"glibc {self.glibc}: {self.reason}")


def targets(m: Matrix, plan: Plan) -> list[Target]:
    """The (framework, platform, runtime image) of every planned framework image with requirements. A runtime
    image with a [bootstrap] recipe is taken as made by it (a stand-in named after the image it replaces)."""
    found = {}
    for image in plan.images:
        if image.requirements:
            public = image.runtime_image_public
            recipe = m.bootstrap.get(public)
            t = Target(framework=image.framework, requirements=image.requirements, platform=image.build.platform,
                       arch=image.build.arch.value, runtime_image=public, made_from=recipe.suite if recipe else public)
            found.setdefault(t.key, t)
    return list(found.values())


def distro(image: str) -> tuple[str, str] | None:
    """(Python, glibc) of the distribution ``image`` is made from, when its name says which."""
    name = image.rsplit("/", 1)[-1]
    return next((v for k, v in DISTROS.items() if re.search(rf"(^|[:\-_.]){re.escape(k)}($|[\-_.])", name)), None)


def resolve(target: Target) -> Result:
    """Resolve one target's requirements with uv, binary wheels only."""
    base = {"framework": target.framework, "platform": target.platform, "runtime_image": target.runtime_image}
    known = distro(target.made_from)
    if known is None:
        return Result(**base, python="?", glibc="?", status=UNKNOWN,
                      reason=f"the toolkit does not know the Python and glibc of {target.made_from} "
                             f"(it knows {', '.join(DISTROS)})")
    return Result(**base, python=known[0], glibc=known[1], **_compile(target.requirements, target.arch, *known))


@functools.cache  # one resolver run per (requirements, arch, Python, glibc) and process
def _compile(requirements: tuple[str, ...], arch: str, python: str, glibc: str) -> dict:
    tag = min(tuple(map(int, glibc.split("."))), MAX_GLIBC)
    argv = [find_uv_bin(), "pip", "compile", "-", "--no-config", "--quiet", "--no-header", "--no-annotate",
            "--only-binary", ":all:", "--python-version", python,
            "--python-platform", f"{arch}-manylinux_{tag[0]}_{tag[1]}", "--index-url", PYPI]
    started = time.monotonic()
    try:
        out = tools.run(argv, input="\n".join(requirements) + "\n", capture=True, check=False, quiet=True,
                        env={"SSL_CERT_FILE": str(settings.ca_mount())}, timeout=300)
    except CommandError as exc:
        return {"status": UNKNOWN, "reason": str(exc)}
    found = parse(out.returncode, out.stdout, out.stderr, requirements)
    if found["status"] == NO_WHEEL:  # uv says that a release has no usable wheel, not what it has instead
        offers = [o for name, version in NO_USABLE.findall(found["reason"]) if (o := _offered(name, version, arch))]
        found["reason"] = "; ".join([found["reason"], *offers])
    return {**found, "seconds": round(time.monotonic() - started, 1)}


NO_USABLE = re.compile(r"([A-Za-z0-9._-]+)==(\S+) has no usable wheels")


def parse(returncode: int, stdout: str, stderr: str, requirements: tuple[str, ...]) -> dict:
    """What ``uv pip compile`` said: the pins of the requirements (and torch), uv's reason, or UNKNOWN."""
    if returncode == 0:
        pins = dict(line.split("==", 1) for line in stdout.splitlines() if "==" in line)
        shown = {"torch", *(canonicalize_name(Requirement(r).name) for r in requirements)}  # uv's names are canonical
        return {"status": RESOLVES, "packages": len(pins), "pins": {k: v for k, v in pins.items() if k in shown}}
    cause = re.search(r"cause: (.*?)(?:, we can conclude|\n\s*\n|$)", stderr, re.S)
    if "No solution found" in stderr and cause:
        reason = re.sub(r" and you require .*", "", " ".join(cause.group(1).split()).removeprefix("Because "))
        return {"status": NO_WHEEL, "reason": reason}
    detail = " ".join(stderr.strip().splitlines()[-3:])[-400:]
    return {"status": UNKNOWN, "reason": f"the resolver could not tell ({detail or f'exit {returncode}'})"}


def _offered(name: str, version: str, arch: str) -> str:
    """What PyPI holds of one release for ``arch``, in a line: its wheels' Pythons and platforms, or none."""
    try:
        with PyPISimple(PYPI) as index:
            files = [p for p in index.get_project_page(name, timeout=30).packages if p.version == version]
    except (NoSuchProjectError, requests.RequestException):
        return ""
    tags = [t for p in files if p.package_type == "wheel" for t in parse_wheel_filename(p.filename)[3]]
    if not tags:
        sdist = any(p.package_type == "sdist" for p in files)
        return f"PyPI has no wheel of {name} {version}" + (", only a source distribution" if sdist else "")
    ours = [t for t in tags if t.platform.endswith(f"_{arch}")]
    if not ours:
        others = sorted({t.platform for t in tags if "linux" in t.platform}) or ["none for Linux"]
        return f"PyPI has no {arch} wheel of {name} {version} (its Linux wheels: {', '.join(others)})"
    return (f"PyPI's {arch} wheels of {name} {version} are for {', '.join(sorted({t.interpreter for t in ours}))} "
            f"on {', '.join(sorted({t.platform for t in ours}))}")


def run(m: Matrix, plan: Plan) -> list[Result]:
    """Resolve every target of ``plan``: each distinct question once, in parallel (a uv process that mostly
    waits on the index)."""
    found = targets(m, plan)
    asks = {(t.requirements, t.arch, *known) for t in found if (known := distro(t.made_from))}
    if asks:
        step(f"resolving the requirements of {len({t.framework for t in found})} framework(s) for "
             f"{len(asks)} platform/Python/glibc target(s), binary wheels only")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, len(asks)))) as pool:
        list(pool.map(lambda ask: _compile(*ask), asks))
    return [resolve(t) for t in found]


def blocked(plan: Plan, results: list[Result]) -> dict[str, str]:
    """Image artifact id -> why its framework cannot be installed on its platform."""
    why = {r.key: r.why() for r in results}
    return {i.id: w for i in plan.images if (w := why.get((i.framework, i.build.platform, i.runtime_image_public)))}


def write(results: list[Result], root: Path) -> Path:
    """Record the results where the support matrix reads them (RESOLVED)."""
    path = root / RESOLVED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2) + "\n")
    return path


def load(root: Path, m: Matrix, plan: Plan) -> list[Result]:
    """The committed results for the targets ``plan`` still has (none before the first `resolve --write`)."""
    path = root / RESOLVED
    planned = {t.key for t in targets(m, plan)}
    found = [Result(**r) for r in json.loads(path.read_text())] if path.exists() else []
    return [r for r in found if r.key in planned]
