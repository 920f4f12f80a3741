"""``matrix.toml`` → a frozen, validated :class:`Matrix`; nothing after loading reads raw TOML."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import re
import sys
import types
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from . import cuda
from .errors import ConfigError, allowed_list, suggest
from .settings import INDEX_PASSWORD_ENV, INDEX_USER_ENV
from .spec import HiddenValueError, Problems, defaults, json_schema, key_path, load_fields, setting

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
AXES = ("arch", "python", "cuda", "framework")
_REQUIREMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._[],<>=!~*+-")


class Arch(enum.Enum):
    """A CPU architecture as Python's platform tags spell it."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"

    @property
    def docker(self) -> str:
        """The architecture as Docker and BuildKit's TARGETARCH spell it."""
        return {"x86_64": "amd64", "aarch64": "arm64"}[self.value]

    @property
    def platform(self) -> str:
        """The OCI platform, e.g. ``linux/arm64``."""
        return f"linux/{self.docker}"


class Toolchain(enum.Enum):
    """Where a CUDA line's compiler comes from."""

    PYPI = "pypi"  # nvidia-cuda-nvcc & co. wheels (CUDA ≥ 13.0 has nvcc on PyPI)
    IMAGE = "image"  # a CUDA devel base image (CUDA 12.x ships only ptxas on PyPI)


class BuildMode(enum.Enum):
    """How wheels for a CPU architecture other than the host's are built."""

    AUTO = "auto"  # cross where the CUDA line's toolchain allows it, else emulated
    CROSS = "cross"  # aarch64 on x86_64: x86_64 nvcc, aarch64 host compiler, no emulation
    EMULATED = "emulated"  # in a container of the target platform under QEMU
    NATIVE = "native"  # only on a host of that architecture (e.g. an arm64 CI runner)


CROSS_RUNTIME = "nvidia-cuda-runtime"  # whose aarch64 wheel holds the static cudart a cross build links


def _python_version(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("write Python versions as strings, e.g. \"3.10\" (TOML reads 3.10 as 3.1)")
    if value not in PYTHONS:
        raise ValueError(f"unknown Python version{suggest(value, PYTHONS)}; allowed: {', '.join(PYTHONS)}")
    return value


def _cuda_version(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("write CUDA versions as strings, e.g. \"13.0\"")
    if value not in cuda.CUDA_SASS:
        raise ValueError(f"unknown CUDA version{suggest(value, cuda.CUDA_SASS)}; "
                         f"allowed: {', '.join(cuda.CUDA_SASS)}")
    return value


def _requirement(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if not value or not set(value) <= _REQUIREMENT_CHARS:
        raise ValueError("a requirement is a name with extras and version specifiers only, "
                         "no spaces, markers, URLs or quotes (e.g. vllm==0.32.0)")
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"not a valid requirement: {exc}") from None
    return value


def _version(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    try:
        if str(Version(value)) != value or Version(value).local:
            raise ValueError("write the version in its normalized PEP 440 form without a local label"
                             f" ({Version(value).public!s})")
    except InvalidVersion:
        raise ValueError("not a PEP 440 version") from None
    return value


# The OCI distribution reference grammar, lower case: a registry host (with a dot or a port, or
# localhost, as Docker tells a registry from a namespace) and path components.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*:[0-9]+)"
_REPOSITORY = re.compile(rf"^{_REGISTRY}(?:/{_PATH_COMPONENT})+$")
_NAME_COMPONENT = re.compile(rf"^{_PATH_COMPONENT}$")
_LOCAL_LABEL = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9]+)*$")


def _image_repository(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if not _REPOSITORY.match(value):
        raise ValueError("not an OCI repository: write REGISTRY/NAMESPACE in lower case, the registry with a dot "
                         "or a port (e.g. ghcr.io/my-org or 127.0.0.1:5000/my-project), no tag")
    return value


def _index_url(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    if parts.username or parts.password:
        raise HiddenValueError("credentials do not belong in the matrix (it is committed and printed): "
                         f"set {INDEX_USER_ENV} and {INDEX_PASSWORD_ENV} in the environment instead")
    return value


_CHANNEL_ROOT = re.compile(r"^[\w./@+=,:-]*$")


def _channel_root(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if not _CHANNEL_ROOT.match(value):
        raise ValueError("a local directory or an rclone remote (remote:bucket/path): letters, digits and ./@+=,:-")
    return value


def _local_label(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if value and not _LOCAL_LABEL.match(value):
        raise ValueError("a PEP 440 local label is lower-case letters and digits, parts joined by dots "
                         "(e.g. cu130)")
    return value


def _glibc(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string such as \"2.28\"")
    found = re.fullmatch(r"2\.([0-9]+)", value)
    if not found or int(found.group(1)) < 17:
        raise ValueError("a glibc version 2.17 or newer, such as 2.28 (manylinux_2_28) or 2.31")
    return value


_ABSOLUTE_PATH = re.compile(r"/(?:[A-Za-z0-9_+-][A-Za-z0-9._+-]*/?)*")


def _links(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError("expected a table of path = target strings")
    for path in (p for item in value.items() for p in item):
        if not _ABSOLUTE_PATH.fullmatch(path) or "/../" in f"{path}/":
            raise ValueError(f"{path!r} is not an absolute path (letters, digits and ._+- between slashes, no '..')")
    return types.MappingProxyType(dict(value))


def _positive(value: object) -> int:
    if type(value) is not int:
        raise TypeError("expected an integer")
    if value <= 0:
        raise ValueError("must be a positive number of MB")
    return value


_ARCHS = {"type": "string", "description": "e.g. \"7.5 8.0 9.0a 12.0+PTX\" or \"75-real;90a-real;120\""}
_REQ = {"type": "string", "description": "a pip requirement such as vllm==0.32.0"}
_CUDA_VERSIONS = {"enum": list(cuda.CUDA_SASS)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Project:
    """[project]: what is released."""

    name: str = setting("name", "Release name; image repositories and docs use it")
    version: str = setting("version", "Release version (PEP 440, no local label)", parse=_version,
                           schema={"type": "string"})
    source: str = setting("source", "Source repository URL (OCI label org.opencontainers.image.source)",
                          default="")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Axes:
    """[axes]: the values the release matrix spans."""

    arch: tuple[Arch, ...] = setting("arch", "CPU architectures")
    python: tuple[str, ...] = setting("python", "CPython versions, as strings",
                                      parse=_python_version, schema={"enum": list(PYTHONS)})
    cuda: tuple[str, ...] = setting("cuda", "CUDA versions, each with a [cuda.\"X.Y\"] table",
                                    parse=_cuda_version, schema=_CUDA_VERSIONS)
    framework: tuple[str, ...] = setting("framework", "Image variants, each with a [framework.NAME] table "
                                         "(none: a wheels-only project)", default=())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """[[exclude]] / [[include]]: a combination of axis values, and why."""

    arch: str = setting("arch", "CPU architecture", default="")
    python: str = setting("python", "Python version", default="")
    cuda: str = setting("cuda", "CUDA version", default="")
    framework: str = setting("framework", "framework", default="")
    reason: str = setting("reason", "Why; printed in the support matrix", text=True)

    def values(self) -> dict[str, str]:
        """The axis values this rule names."""
        return {axis: getattr(self, axis) for axis in AXES if getattr(self, axis)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CudaLine:
    """[cuda."X.Y"]: how one CUDA line is built."""

    archs: tuple[cuda.GpuTarget, ...] = setting("archs", "GPU architectures to build, PyTorch or CMake notation",
                                                parse=cuda.parse_arch_list, schema=_ARCHS, whole=True)
    toolchain: Toolchain = setting("toolchain", "pypi: nvcc from PyPI wheels (CUDA >= 13); image: a CUDA base image")
    toolchain_requirements: tuple[str, ...] = setting(
        "toolchain-requirements", "With toolchain = pypi: the CUDA wheels, pinned to one minor",
        default=(), parse=_requirement, schema=_REQ)
    local_version: str = setting("local-version", "PEP 440 local label for wheels, e.g. cu130", default="",
                                 parse=_local_label, schema={"type": "string", "pattern": _LOCAL_LABEL.pattern})
    build_image: str = setting("build-image", "Public name of the image builds start from")
    runtime_image: str = setting("runtime-image", "Public name of the slim runtime image")
    builder_python: str = setting("builder-python", "Version of build-image's python3 (bookworm: 3.11); "
                                  "the toolkit's wheel builder builds with it", default="3.11",
                                  parse=_python_version, schema={"enum": list(PYTHONS)})
    wheel_image: str = setting("wheel-image", "A manylinux image for cibuildwheel (e.g. manylinux_2_28) "
                               "instead of the builder the toolkit makes from build-image", default="")
    glibc: str = setting("glibc", "Oldest glibc the line's wheels install on, e.g. 2.28 (manylinux_2_28): auditwheel "
                         "repair refuses a wheel that needs a newer one; default: what the builder links against",
                         default="", parse=_glibc, schema={"type": "string", "pattern": r"^2\.[0-9]+$"})
    sysroot_image: str = setting("sysroot-image", "A Debian image whose C library the host code links against "
                                 "(--sysroot) instead of build-image's, to meet glibc: debian:bullseye-slim has 2.31",
                                 default="")
    torch: str = setting("torch", "PyTorch release whose PyPI wheels are built against this CUDA line (e.g. 2.11.0): "
                         "packages with torch = true build against it, unpacked for the target arch in the "
                         "builders (TORCH_ROOT), and require it", default="", parse=_version,
                         schema={"type": "string"})

    @property
    def cross_runtime(self) -> str:
        """The CUDA runtime requirement a cross build takes the aarch64 wheel of; "" when it cannot cross."""
        if self.toolchain is not Toolchain.PYPI or self.wheel_image:
            return ""
        return next((r for r in self.toolchain_requirements if Requirement(r).name == CROSS_RUNTIME), "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Framework:
    """[framework.NAME]: an image variant."""

    requirements: tuple[str, ...] = setting("requirements", "pip requirements installed into the image",
                                            default=(), parse=_requirement, schema=_REQ)
    wheels: tuple[str, ...] = setting("wheels", "This matrix's packages installed into the image", default=())
    module: str = setting("module", "Module the smoke test imports and whose version it checks", default="")
    arch: tuple[Arch, ...] = setting("arch", "Supported CPU architectures (empty: all)", default=())
    cuda: tuple[str, ...] = setting("cuda", "Supported CUDA versions (empty: all)", default=(),
                                    parse=_cuda_version, schema=_CUDA_VERSIONS)
    smoke: tuple[str, ...] = setting("smoke", "Smoke command, as an argv list (no shell)", default=(), text=True)
    max_size_mb: int = setting("max-size-mb", "Largest image allowed, in MB as the engine stores it "
                               "(uncompressed); a build over it fails, naming its largest layers; unset: no limit",
                               default=0, parse=_positive, schema={"type": "integer", "minimum": 1})
    patches: tuple[str, ...] = setting("patches", "Patch files (unified diffs, -p1; relative to matrix.toml) "
                                       "applied to the wheel of the first requirement, which must pin one "
                                       "version: the image installs it as that version + the project's name "
                                       "as a local label", default=())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Package:
    """[package.NAME]: a Python package whose wheels are built."""

    path: str = setting("path", "Source directory, relative to matrix.toml")
    abi3: bool = setting("abi3", "Built against the stable ABI: one wheel serves every Python", default=True)
    smoke: tuple[str, ...] = setting("smoke", "Smoke command, as an argv list (no shell)", default=(), text=True)
    max_size_mb: int = setting("max-size-mb", "Largest wheel allowed, in MB (PyPI's default limit)",
                               default=100, parse=_positive, schema={"type": "integer", "minimum": 1})
    gpu_smoke: tuple[str, ...] = setting("gpu-smoke", "Smoke command run where a GPU is present; its JSON "
                                         "output may report the kernel arch the device ran", default=(), text=True)
    torch: bool = setting("torch", "A PyTorch extension: built against each CUDA line's torch (cuda.\"X.Y\".torch)",
                          default=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Publish:
    """[publish]: where releases go."""

    index_url: str = setting("index-url", "Package index upload URL (no credentials: TWINE_USERNAME and "
                             "TWINE_PASSWORD)", default="http://127.0.0.1:8081/", parse=_index_url,
                             schema={"type": "string", "pattern": "^https?://"})
    simple_url: str = setting("simple-url", "The index's simple API that clients read (PEP 503/691); default: "
                              "index-url + simple/ (pypiserver, devpi), https://pypi.org/simple/ for PyPI's upload "
                              "URL", default="", parse=_index_url, schema={"type": "string", "pattern": "^https?://"})
    image_repository: str = setting("image-repository", "Image repository (registry/namespace, lower case)",
                                    default="127.0.0.1:5000/gpu-toolkit", parse=_image_repository,
                                    schema={"type": "string", "pattern": _REPOSITORY.pattern})
    default_cuda: str = setting("default-cuda", "The CUDA line whose wheels go to index-url, without a local "
                                "label (as on PyPI); default: the newest line of [axes] cuda", default="")
    channel_url: str = setting("channel-url", "Root URL of the per-CUDA channels (<channel-url>/cu130/simple/) "
                               "and the variants index (<channel-url>/variants/simple/) that clients read",
                               default="http://127.0.0.1:8082/", parse=_index_url,
                               schema={"type": "string", "pattern": "^https?://"})
    channel_root: str = setting("channel-root", "Where the channels are written: a local directory, or an rclone "
                                "remote (remote:bucket/path, configured through RCLONE_CONFIG_* variables); default: "
                                "channels/ in the toolkit's state directory, served on channel-url", default="",
                                parse=_channel_root, schema={"type": "string", "pattern": _CHANNEL_ROOT.pattern})


    @property
    def is_pypi(self) -> bool:
        """True for PyPI's and TestPyPI's upload URLs, which refuse versions with a local label."""
        return self.index_url in _KNOWN_SIMPLE

    def default_line(self, versions: tuple[str, ...]) -> str:
        """The CUDA line of the primary index: ``default-cuda``, else the newest of ``versions``."""
        return self.default_cuda or max(versions, key=Version)

    @property
    def read_url(self) -> str:
        """The simple API root that pip and the toolkit read from (``…/simple/``)."""
        return self.simple_url or _KNOWN_SIMPLE.get(self.index_url) or self.index_url.rstrip("/") + "/simple/"


# Upload URLs whose simple API lives elsewhere (warehouse: PyPI and TestPyPI).
_KNOWN_SIMPLE = {"https://upload.pypi.org/legacy/": "https://pypi.org/simple/",
                 "https://test.pypi.org/legacy/": "https://test.pypi.org/simple/"}
_EMPTY: Mapping = types.MappingProxyType({})


DEBIAN_COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """[bootstrap."NAME"]: how to make a public image from Debian where it is out of reach; a suite alone
    (``"debian:bookworm-slim" = "bookworm"``) is a minbase Debian."""

    SHORTHAND: ClassVar[str] = "suite"
    suite: str = setting("suite", "Debian suite to debootstrap (bookworm, trixie, ...)")
    components: tuple[str, ...] = setting("components", "Archive components the image's apt sources name",
                                          default=("main",), schema={"enum": list(DEBIAN_COMPONENTS)})
    packages: tuple[str, ...] = setting("packages", "Debian packages installed on top (no recommends), "
                                        "e.g. non-free's nvidia-cuda-toolkit for a CUDA devel image", default=())
    links: Mapping[str, str] = setting("links", "Symbolic links made last, path -> target: the layout of the "
                                       "image stood in for (NVIDIA's /usr/local/cuda, say)", default=_EMPTY,
                                       parse=_links, schema={"type": "object", "additionalProperties": {
                                           "type": "string", "pattern": _ABSOLUTE_PATH.pattern}})
    arch: tuple[Arch, ...] = setting("arch", "CPU architectures the packages exist for (empty: all); the "
                                     "others are not built here, and say so", default=())

    def makes(self, arch: Arch) -> bool:
        """Whether the recipe can make the image for ``arch``."""
        return not self.arch or arch in self.arch

    def why_not(self) -> str:
        """Why an arch the recipe does not make is out of reach here."""
        made = f"its [bootstrap] recipe makes it for {', '.join(a.value for a in self.arch)} only"
        return f"{made} (Debian {self.suite} has {', '.join(self.packages)} for no other)" if self.packages else made


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ci:
    """[ci]: where the rendered GitHub workflows run each part of the plan."""

    runners: Mapping[str, str] = setting(
        "runners", "CPU architecture -> GitHub runner label that builds natively on it",
        default=types.MappingProxyType({"x86_64": "ubuntu-24.04", "aarch64": "ubuntu-24.04-arm"}))
    gpu_runner: tuple[str, ...] = setting("gpu-runner", "Labels of the self-hosted runner with an NVIDIA GPU",
                                          default=("self-hosted", "linux", "x64", "gpu"))
    python: str = setting("python", "Python that runs the toolkit in CI", default="3.12",
                          parse=_python_version, schema={"enum": list(PYTHONS)})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Matrix:
    """matrix.toml: the release matrix and everything needed to build it."""

    project: Project = setting("project", "What is released")
    axes: Axes = setting("axes", "The values the matrix spans")
    cuda: Mapping[str, CudaLine] = setting("cuda", "One table per CUDA version")
    framework: Mapping[str, Framework] = setting("framework", "One table per image variant", default=_EMPTY)
    package: Mapping[str, Package] = setting("package", "Packages whose wheels are built", default=_EMPTY)
    exclude: tuple[Rule, ...] = setting("exclude", "Combinations left out", default=())
    include: tuple[Rule, ...] = setting("include", "Combinations added (all four axes named)", default=())
    mirror: Mapping[str, str] = setting("mirror", "Public image name -> the name to pull instead",
                                        default=_EMPTY)
    bootstrap: Mapping[str, Bootstrap] = setting(
        "bootstrap", "Public image name -> Debian suite to debootstrap it from when unreachable, or a recipe "
        "table (suite, components, packages, links, arch)", default=_EMPTY)
    build_mode: Mapping[str, BuildMode] = setting(
        "build-mode", "CPU architecture -> how its wheels are built on a host of another architecture: "
        "auto (cross where the toolchain allows, else emulated), cross, emulated, native (own-arch hosts only)",
        default=_EMPTY)
    python_image: Mapping[str, str] = setting(
        "python-image", "Python version -> public image whose python3 is that version, for smoke tests",
        default=_EMPTY)
    publish: Publish = setting("publish", "Publish targets", default=Publish())
    ci: Ci = setting("ci", "CI runners for the rendered workflows", default=Ci())
    source: Path = Path("matrix.toml")

    def image(self, public: str) -> str:
        """The name to pull for a public image name, after the mirror map."""
        return self.mirror.get(public, public)

    def patched(self, framework: str) -> str:
        """The requirement a framework's patched wheel is installed by (``vllm==0.32.0+gpu.toolkit``: its
        first requirement's pin with the project's name as a local label), or '' without patches."""
        fw = self.framework[framework]
        if not fw.patches:
            return ""
        req = Requirement(fw.requirements[0])
        return f"{req.name}=={Version(f'{_pin(req)}+{self.project.name}')}"

    def installed(self, framework: str) -> tuple[str, ...]:
        """The requirements a framework's image installs: the first as its patched wheel where it has patches."""
        requirements = self.framework[framework].requirements
        return (patched, *requirements[1:]) if (patched := self.patched(framework)) else requirements


def schema() -> dict:
    """The JSON Schema of matrix.toml, generated from the model."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "toolkit matrix.toml", **json_schema(Matrix)}


def load_matrix(path: Path) -> Matrix:
    """Read, convert and validate ``path``; raise ConfigError listing every problem."""
    problems = Problems(str(path))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (pass --matrix PATH or set TOOLKIT_MATRIX)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    values = load_fields(Matrix, raw, "", problems)
    if values is None:
        raise ConfigError(problems.items)
    # Cross-table checks look at every table that loaded, so that one typo hides no other mistake.
    _check(types.SimpleNamespace(**{**defaults(Matrix), **values}), path.resolve().parent, problems)
    if problems.items:
        raise ConfigError(problems.items)
    matrix = Matrix(**values, source=path)
    if not cells(matrix):
        problems.add("axes", "the matrix expands to nothing: every combination is excluded")
        raise ConfigError(problems.items)
    return matrix


def _check(m: Matrix, root: Path, problems: Problems) -> None:
    """Cross-table checks: everything that one table alone cannot know.

    ``m`` holds the tables that loaded; one that failed to load is None (its problems already recorded).
    """
    if m.axes:
        _check_axes(m.axes, problems)
        if m.cuda is not None:
            _check_names(m.axes.cuda, m.cuda, "axes.cuda", "cuda", problems)
            _check_local_labels(m.axes.cuda, m.cuda, problems)
            _check_default_cuda(m, problems)
        if m.framework is not None:
            _check_names(m.axes.framework, m.framework, "axes.framework", "framework", problems)
    for version, line in _loaded(m.cuda):
        _check_cuda_line(version, line, problems)
    for name, fw in _loaded(m.framework):
        _check_framework(m, root, name, fw, problems)
    for name, pkg in _loaded(m.package):
        _check_package(root, name, pkg, problems)
        _check_torch(m, name, pkg, problems)
    archs = [a.value for a in Arch]
    for arch in m.ci.runners if m.ci else ():
        if arch not in archs:
            problems.add(key_path("ci.runners", arch), "not an architecture" + suggest(arch, archs)
                         + f"; allowed: {', '.join(archs)}")
    for arch, mode in (m.build_mode or {}).items():
        _check_build_mode(m, arch, mode, problems)
    for name, recipe in _loaded(m.bootstrap):
        _check_bootstrap(key_path("bootstrap", name), recipe, problems)
    for version in m.python_image or ():
        if version not in PYTHONS:
            problems.add(key_path("python-image", version), "not a Python version" + suggest(version, PYTHONS)
                         + f"; allowed: {', '.join(PYTHONS)}")
    if m.axes:
        for kind, rules in (("exclude", m.exclude), ("include", m.include)):
            for i, rule in enumerate(rules or ()):
                _check_rule(m, f"{kind}[{i}]", rule, complete=kind == "include", problems=problems)


def _loaded(tables: Mapping | None) -> list[tuple[str, Any]]:
    """The entries of a table of tables that loaded (a failed one is None, its problems recorded)."""
    return [(key, value) for key, value in (tables or {}).items() if value is not None]


def _check_axes(axes: Axes, problems: Problems) -> None:
    for f in dataclasses.fields(axes):
        _check_unique(getattr(axes, f.name), f"axes.{f.metadata['key']}", problems)


def _check_unique(values: tuple, where: str, problems: Problems) -> None:
    for i, value in enumerate(values):
        if value in values[:i]:
            shown = value.value if isinstance(value, enum.Enum) else value
            problems.add(f"{where}[{i}]", f"{shown!r} is listed twice (first at [{values.index(value)}])")


def _pin(req: Requirement) -> str:
    """The one version ``req`` pins (``==0.32.0``), else ''."""
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version \
        and not Version(specs[0].version).local else ""


def _check_patches(root: Path, where: str, fw: Framework, problems: Problems) -> None:
    if not fw.patches:
        return
    if not fw.requirements or not _pin(Requirement(fw.requirements[0])):
        problems.add(f"{where}.patches", "patches apply to the wheel of the first requirement, which must pin "
                     f"one version without a local label (e.g. vllm==0.32.0); got "
                     f"{fw.requirements[0] if fw.requirements else 'no requirements'!r}")
    for i, patch in enumerate(fw.patches):
        path = Path(os.path.normpath(root / patch))
        if not path.is_relative_to(root):
            problems.add(f"{where}.patches[{i}]", f"{patch!r} leaves {root}: patches live in the project")
        elif not path.is_file():
            problems.add(f"{where}.patches[{i}]", f"{patch!r} does not exist (relative to {root})")


def _check_framework(m: Matrix, root: Path, name: str, fw: Framework, problems: Problems) -> None:
    where = key_path("framework", name)
    _check_patches(root, where, fw, problems)
    if not _NAME_COMPONENT.match(name):
        problems.add(where, "a framework name becomes an image name: lower-case letters, digits and "
                     "single . _ - between them (e.g. vllm, tensorrt-llm)")
    if not fw.requirements and not fw.wheels:
        problems.add(where, "installs nothing: give it requirements, wheels or both")
    for i, wheel in enumerate(fw.wheels if m.package is not None else ()):
        if wheel not in m.package:
            problems.add(f"{where}.wheels[{i}]", f"{wheel!r} is not a [package] table"
                         + suggest(wheel, m.package) + f"; allowed: {allowed_list(m.package)}")
    for key in ("arch", "cuda", "wheels", "patches"):
        _check_unique(getattr(fw, key), f"{where}.{key}", problems)


def _check_package(root: Path, name: str, pkg: Package, problems: Problems) -> None:
    where = key_path("package", name) + ".path"
    source = Path(os.path.normpath(root / pkg.path))  # lexically: a symlinked folder inside still counts
    if not source.is_relative_to(root):
        problems.add(where, f"{pkg.path!r} leaves {root}: cibuildwheel builds packages inside the project only")
    elif not source.is_dir():
        problems.add(where, f"{pkg.path!r} does not exist (relative to {root})")
    elif not (source / "pyproject.toml").is_file():
        problems.add(where, f"{pkg.path!r} has no pyproject.toml: it is not a Python package")


def _check_torch(m: Matrix, name: str, pkg: Package, problems: Problems) -> None:
    """A PyTorch extension needs a torch to build against on every CUDA line it is built for."""
    if not pkg.torch or not m.axes or m.cuda is None:
        return
    lacking = [v for v in m.axes.cuda if m.cuda.get(v) is not None and not m.cuda[v].torch]
    if lacking:
        problems.add(key_path("package", name) + ".torch", "a PyTorch extension builds against each CUDA line's "
                     f"torch; name one for {', '.join(key_path('cuda', v) for v in lacking)} (torch = \"2.11.0\": "
                     "a release whose PyPI wheels are built against that line), or build it in a matrix of its own")


def _check_local_labels(versions: tuple[str, ...], lines: Mapping[str, CudaLine], problems: Problems) -> None:
    """Two CUDA lines with one local label would build wheels of the same file name."""
    seen: dict[str, str] = {}
    for version in versions:
        if lines.get(version) is None:
            continue
        label = lines[version].local_version
        if label in seen:
            shown = f"local-version {label!r}" if label else "no local-version"
            problems.add(key_path(key_path("cuda", version), "local-version"),
                         f"{shown}, like {key_path('cuda', seen[label])}: their wheels would have the same "
                         "file name; give each CUDA line its own label (e.g. cu128, cu130)")
        seen.setdefault(label, version)


def _check_default_cuda(m: Matrix, problems: Problems) -> None:
    if m.publish and m.publish.default_cuda and m.publish.default_cuda not in m.axes.cuda:
        problems.add("publish.default-cuda", f"{m.publish.default_cuda!r} is not a line of [axes] cuda"
                     + suggest(m.publish.default_cuda, list(m.axes.cuda)) + f"; allowed: {', '.join(m.axes.cuda)}")


def _check_build_mode(m: Matrix, arch: str, mode: BuildMode, problems: Problems) -> None:
    archs = [a.value for a in Arch]
    where = key_path("build-mode", arch)
    if arch not in archs:
        problems.add(where, "not an architecture" + suggest(arch, archs) + f"; allowed: {', '.join(archs)}")
    elif mode is BuildMode.CROSS and arch != Arch.AARCH64.value:
        problems.add(where, "'cross' builds aarch64 wheels on x86_64 only; allowed here: auto, emulated, native")
    elif mode is BuildMode.CROSS and m.axes and m.cuda is not None:
        for version in m.axes.cuda:
            if m.cuda.get(version) is not None and m.cuda[version].sysroot_image:
                problems.add(where, f"'cross' has no aarch64 sysroot for {key_path('cuda', version)}.sysroot-image "
                             "(its aarch64 wheels build emulated); use 'auto'")
            elif m.cuda.get(version) is not None and not m.cuda[version].cross_runtime:
                problems.add(where, f"'cross' needs toolchain = 'pypi' with {CROSS_RUNTIME} in "
                             f"toolchain-requirements (and no wheel-image) for every CUDA line; "
                             f"{key_path('cuda', version)} has none; use 'auto' to cross-compile where possible")


def _check_names(values, tables: Mapping, axis: str, table: str, problems: Problems) -> None:
    for i, value in enumerate(values):
        if value not in tables:
            problems.add(f"{axis}[{i}]", f"{value!r} has no [{key_path(table, value)}] table"
                         + suggest(value, tables) + f"; defined: {allowed_list(tables)}")


def _check_bootstrap(where: str, recipe: Bootstrap, problems: Problems) -> None:
    _check_unique(recipe.components, f"{where}.components", problems)
    for i, component in enumerate(recipe.components):
        if component not in DEBIAN_COMPONENTS:
            problems.add(f"{where}.components[{i}]", f"{component!r} is not a Debian archive component"
                         + suggest(component, DEBIAN_COMPONENTS) + f"; allowed: {allowed_list(DEBIAN_COMPONENTS)}")
    if "main" not in recipe.components:
        problems.add(f"{where}.components", "must include 'main' (debootstrap's base system is in it)")


def _check_cuda_line(version: str, line: CudaLine, problems: Problems) -> None:
    where = key_path("cuda", version)
    if version not in cuda.CUDA_SASS:
        problems.add(where, "unknown CUDA version" + suggest(version, cuda.CUDA_SASS)
                     + f"; allowed: {', '.join(cuda.CUDA_SASS)}")
        return
    for sm in cuda.unsupported(version, line.archs):
        problems.add(f"{where}.archs", _why_unsupported(version, sm[3:]))
    if line.toolchain is Toolchain.PYPI and Version(version) < Version("13.0"):
        problems.add(f"{where}.toolchain", f"'pypi' needs CUDA >= 13.0 (CUDA {version} wheels ship no nvcc);"
                     " allowed here: image")
    if line.sysroot_image and line.wheel_image:
        problems.add(f"{where}.sysroot-image", "links against a sysroot in the toolkit's builder; a wheel-image "
                     "brings its own C library: leave one of them out")
    if line.toolchain is Toolchain.PYPI and not line.toolchain_requirements:
        problems.add(f"{where}.toolchain-requirements", "toolchain = 'pypi' needs the CUDA wheels to install")
    _check_pins(version, line.toolchain_requirements, f"{where}.toolchain-requirements", problems)


def _check_pins(version: str, requirements: tuple[str, ...], where: str, problems: Problems) -> None:
    """Every CUDA wheel pinned to the line's minor: ptxas rejects PTX of a newer nvvm ("Unsupported .version")."""
    names = [Requirement(r).name for r in requirements]
    _check_unique(tuple(names), where, problems)
    for i, req in enumerate(requirements):
        pins = [s.version for s in Requirement(req).specifier if s.operator == "=="]
        minor = ".".join(pins[0].split(".")[:2]) if pins else ""
        if minor != version:
            found = f"pinned to {minor}" if pins else "not pinned"
            problems.add(f"{where}[{i}]", f"{req!r} is {found}: pin every CUDA wheel to the line's minor "
                         f"({names[i]}=={version}.*), or nvcc and ptxas of different minors meet")


def _why_unsupported(version: str, sm: str) -> str:
    builders = [v for v in cuda.CUDA_SASS if sm in cuda.CUDA_SASS[v]]
    if not builders:
        return f"sm_{sm} is not a GPU architecture any known CUDA builds"
    newer = [v for v in builders if Version(v) > Version(version)]
    if newer:
        return f"sm_{sm} needs CUDA >= {newer[0]}; CUDA {version} cannot build it"
    return f"sm_{sm} was dropped after CUDA {builders[-1]}; CUDA {version} cannot build it"


def _check_rule(m: Matrix, where: str, rule: Rule, *, complete: bool, problems: Problems) -> None:
    named = rule.values()
    if not named:
        problems.add(where, f"names no axis; use some of: {', '.join(AXES)}")
    missing = [a for a in AXES if a not in named and (a != "framework" or m.axes.framework)]
    if complete and missing:
        problems.add(where, f"an include must name every axis; missing: {', '.join(missing)}")
    allowed = axis_values(m)
    for axis, value in named.items():
        if value not in allowed[axis]:
            problems.add(f"{where}.{axis}", f"{value!r} is not a value of axes.{axis}"
                         + suggest(value, allowed[axis]) + f"; allowed: {', '.join(allowed[axis])}")


def axis_values(m: Matrix) -> dict[str, tuple[str, ...]]:
    """Each axis's values as strings, in matrix order."""
    return {"arch": tuple(a.value for a in m.axes.arch), "python": m.axes.python,
            "cuda": m.axes.cuda, "framework": m.axes.framework}


def _cell_values(m: Matrix) -> dict[str, tuple[str, ...]]:
    """The axes a cell takes its values from; a wheels-only matrix has cells without a framework ("")."""
    return {**axis_values(m), "framework": m.axes.framework or ("",)}


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One combination of axis values."""

    arch: str
    python: str
    cuda: str
    framework: str


def exclusions(m: Matrix) -> tuple[Rule, ...]:
    """The exclude rules plus those implied by each framework's supported archs and CUDA."""
    implied = []
    for name in m.axes.framework:
        fw = m.framework[name]
        for axis, supported in (("arch", [a.value for a in fw.arch]), ("cuda", fw.cuda)):
            for value in axis_values(m)[axis]:
                if supported and value not in supported:
                    implied.append(Rule(framework=name, **{axis: value},
                                        reason=f"{name} supports {axis} {', '.join(supported)} only"))
    return m.exclude + tuple(implied)


def cells(m: Matrix) -> tuple[Cell, ...]:
    """Expand the axes, drop excluded cells, add included ones (as GitHub Actions does)."""
    rules = [tuple(rule.values().items()) for rule in exclusions(m)]  # once, not once per cell
    kept = [cell for cell in itertools.starmap(Cell, itertools.product(*_cell_values(m).values()))
            if not any(all(getattr(cell, axis) == value for axis, value in rule) for rule in rules)]
    kept += [Cell(**{"framework": "", **rule.values()}) for rule in m.include]
    return tuple(dict.fromkeys(kept))
