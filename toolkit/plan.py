"""The plan: a matrix expanded into wheel and image artifacts with stable ids.

Pure functions only; executing the plan is the business of later stages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from packaging.version import Version

from . import cuda
from .errors import ConfigError, suggest
from .matrix import AXES, Arch, Cell, Matrix, Toolchain, axis_values, cells, exclusions


def cuda_tag(version: str) -> str:
    """``13.0`` → ``cu130``: the short form used in ids and tags."""
    return "cu" + version.replace(".", "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Build:
    """What every artifact shares: platform, CUDA line, toolchain and GPU code."""

    arch: Arch
    cuda: str
    toolchain: Toolchain
    toolchain_requirements: tuple[str, ...]
    gpu_targets: tuple[cuda.GpuTarget, ...]
    build_image: str
    build_image_public: str

    @property
    def platform(self) -> str:
        """The OCI platform, e.g. ``linux/arm64``."""
        return self.arch.platform

    @property
    def torch_arch_list(self) -> str:
        """``TORCH_CUDA_ARCH_LIST`` for this build's GPU targets."""
        return cuda.torch_arch_list(self.gpu_targets)

    @property
    def cmake_architectures(self) -> str:
        """``CMAKE_CUDA_ARCHITECTURES`` for this build's GPU targets."""
        return cuda.cmake_architectures(self.gpu_targets)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WheelArtifact:
    """One wheel: abi3 wheels serve every Python of the axis with one build."""

    id: str
    package: str
    version: str
    pythons: tuple[str, ...]
    abi3: bool
    smoke: tuple[str, ...]
    gpu_smoke: tuple[str, ...]
    max_size_mb: int
    path: str
    build: Build
    sysroot_image_public: str = ""  # the C library its host code links against, when not build-image's

    @property
    def python_tag(self) -> str:
        """The wheel's Python tag: ``cp310-abi3`` or ``cp312-cp312``."""
        cp = "cp" + self.pythons[0].replace(".", "")
        return f"{cp}-abi3" if self.abi3 else f"{cp}-{cp}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageArtifact:
    """One single-platform image; images of the same tag join into a manifest list."""

    id: str
    framework: str
    requirements: tuple[str, ...]
    wheels: tuple[str, ...]
    module: str
    smoke: tuple[str, ...]
    max_size_mb: int  # 0: no limit
    patches: tuple[str, ...]  # applied to the wheel of the first requirement (toolkit.patches)
    patched: str  # the requirement that installs the patched wheel, '' without patches
    tag: str
    runtime_image: str
    runtime_image_public: str
    build: Build


Artifact = WheelArtifact | ImageArtifact


@dataclasses.dataclass(frozen=True, kw_only=True)
class Selection:
    """CLI/session filters; an empty tuple selects every value of that axis."""

    arch: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    cuda: tuple[str, ...] = ()
    framework: tuple[str, ...] = ()

    def admits(self, cell: Cell) -> bool:
        """True when the cell has a selected value on every filtered axis."""
        return all(not getattr(self, a) or getattr(cell, a) in getattr(self, a) for a in AXES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """Everything the selection asks to build, in a stable order."""

    wheels: tuple[WheelArtifact, ...]
    images: tuple[ImageArtifact, ...]

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        """Wheels first (images contain them), then images."""
        return self.wheels + self.images


def make_plan(m: Matrix, selection: Selection = Selection()) -> Plan:
    """Expand ``m`` into artifacts for the cells that ``selection`` admits."""
    _check_selection(m, selection)
    chosen = [c for c in cells(m) if selection.admits(c)]
    if not chosen:
        raise ConfigError([_why_empty(m, selection)])
    frameworks = dict.fromkeys(c.framework for c in chosen)
    packages = m.package if not selection.framework else {
        name: m.package[name] for fw in frameworks for name in m.framework[fw].wheels}
    wheels = tuple(_wheels(m, packages, chosen))
    images = tuple(_image(m, fw, arch, version, wheels)
                   for fw, version, arch in dict.fromkeys((c.framework, c.cuda, c.arch) for c in chosen) if fw)
    return Plan(wheels=wheels, images=images)


def _check_selection(m: Matrix, selection: Selection) -> None:
    allowed = axis_values(m)
    problems = [f"--{axis} {value}: not a value of axes.{axis} in {m.source}"
                + suggest(value, allowed[axis]) + f"; allowed: {', '.join(allowed[axis])}"
                for axis in AXES for value in getattr(selection, axis) if value not in allowed[axis]]
    if problems:
        raise ConfigError(problems)


def _why_empty(m: Matrix, selection: Selection) -> str:
    rules = [r for r in exclusions(m) if all(
        not getattr(selection, axis) or value in getattr(selection, axis)
        for axis, value in r.values().items())]
    reasons = "; ".join(f"{_describe(r.values())}: {r.reason}" for r in rules)
    return f"{m.source}: the selection {_describe(_selected(selection))} matches no cell" + (
        f"; excluded by {reasons}" if reasons else "")


def _selected(selection: Selection) -> dict[str, str]:
    return {a: ",".join(getattr(selection, a)) for a in AXES if getattr(selection, a)}


def _describe(values: dict[str, str]) -> str:
    return " ".join(f"{axis}={value}" for axis, value in values.items()) or "(everything)"


def _build(m: Matrix, arch: str, version: str) -> Build:
    line = m.cuda[version]
    return Build(arch=Arch(arch), cuda=version, toolchain=line.toolchain,
                 toolchain_requirements=line.toolchain_requirements, gpu_targets=line.archs,
                 build_image=m.image(line.build_image), build_image_public=line.build_image)


def _wheels(m: Matrix, packages: dict, chosen: Iterable[Cell]) -> Iterable[WheelArtifact]:
    pythons: dict[tuple[str, str], list[str]] = {}
    for c in chosen:
        pythons.setdefault((c.cuda, c.arch), [])
        if c.python not in pythons[(c.cuda, c.arch)]:
            pythons[(c.cuda, c.arch)].append(c.python)
    for name, pkg in packages.items():
        for (version, arch), pys in pythons.items():
            ordered = tuple(sorted(pys, key=Version))
            groups = [ordered] if pkg.abi3 else [(p,) for p in ordered]
            for group in groups:
                yield _wheel(m, name, version, arch, group)


def _wheel(m: Matrix, name: str, version: str, arch: str, pythons: tuple[str, ...]) -> WheelArtifact:
    pkg, line = m.package[name], m.cuda[version]
    py = "" if pkg.abi3 else ":cp" + pythons[0].replace(".", "")
    local = f"+{line.local_version}" if line.local_version else ""
    return WheelArtifact(
        id=f"wheel:{name}:{cuda_tag(version)}{py}:{arch}", package=name,
        version=m.project.version + local, pythons=pythons, abi3=pkg.abi3, smoke=pkg.smoke,
        gpu_smoke=pkg.gpu_smoke, max_size_mb=pkg.max_size_mb, path=pkg.path, build=_build(m, arch, version),
        sysroot_image_public=line.sysroot_image)


def _image(m: Matrix, name: str, arch: str, version: str,
           wheels: tuple[WheelArtifact, ...]) -> ImageArtifact:
    fw, line = m.framework[name], m.cuda[version]
    contained = tuple(w.id for w in wheels
                      if w.package in fw.wheels and w.build.cuda == version and w.build.arch.value == arch)
    return ImageArtifact(
        id=f"image:{name}:{cuda_tag(version)}:{arch}", framework=name,
        requirements=fw.requirements, wheels=contained, module=fw.module, smoke=fw.smoke,
        max_size_mb=fw.max_size_mb, patches=fw.patches, patched=m.patched(name),
        tag=f"{m.publish.image_repository}/{name}:{m.project.version}-{cuda_tag(version)}",
        runtime_image=m.image(line.runtime_image), runtime_image_public=line.runtime_image,
        build=_build(m, arch, version))


def to_json(plan: Plan) -> list[dict[str, Any]]:
    """The plan as JSON-ready dicts, derived flags included, for ``plan --json`` and CI."""
    return [artifact_json(a) for a in plan.artifacts]


def artifact_json(a: Artifact) -> dict[str, Any]:
    """One artifact as a JSON-ready dict, derived flags included."""
    out = {f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f.name != "build"}
    out["kind"] = "wheel" if isinstance(a, WheelArtifact) else "image"
    b = a.build
    out.update(arch=b.arch.value, platform=b.platform, cuda=b.cuda, toolchain=b.toolchain.value,
               toolchain_requirements=b.toolchain_requirements,
               gpu_archs=[t.sm for t in b.gpu_targets],
               torch_cuda_arch_list=b.torch_arch_list, cmake_cuda_architectures=b.cmake_architectures,
               gencode=cuda.gencode_flags(b.gpu_targets),
               build_image=b.build_image, build_image_public=b.build_image_public)
    if isinstance(a, WheelArtifact):
        out["python_tag"] = a.python_tag
    return out
