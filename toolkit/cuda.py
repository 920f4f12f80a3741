"""CUDA knowledge: which GPU code each CUDA version builds, GPU families, and
renderers from one arch list to ``TORCH_CUDA_ARCH_LIST``, ``CMAKE_CUDA_ARCHITECTURES``
and nvcc ``-gencode`` flags.

An arch list is accepted in either of the two notations users already write:
PyTorch's (``8.0 8.6 9.0a 12.0+PTX``) or CMake's (``80-real;90a-real;120``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SASS targets (without the ``sm_`` prefix) that each CUDA release's nvcc accepts.
# CUDA 12.8 added Blackwell (100, 101, 120), 12.9 added 103/121 and the
# family-specific ``f`` targets, 13.0 dropped everything below sm_75 and renamed
# sm_101 to sm_110.
_CUDA_12_0 = "50 52 53 60 61 62 70 72 75 80 86 87 89 90 90a"
_CUDA_12_8 = _CUDA_12_0 + " 100 100a 101 101a 120 120a"
_CUDA_12_9 = _CUDA_12_8 + " 103 103a 121 121a 100f 101f 103f 120f 121f"
_CUDA_13_0 = (
    "75 80 86 87 88 89 90 90a 100 100a 100f 103 103a 103f 110 110a 110f"
    " 120 120a 120f 121 121a 121f"
)
CUDA_SASS: dict[str, frozenset[str]] = {
    version: frozenset(table.split())
    for version, table in {
        "12.0": _CUDA_12_0,
        "12.1": _CUDA_12_0,
        "12.2": _CUDA_12_0,
        "12.3": _CUDA_12_0,
        "12.4": _CUDA_12_0,
        "12.5": _CUDA_12_0,
        "12.6": _CUDA_12_0,
        "12.8": _CUDA_12_8,
        "12.9": _CUDA_12_9,
        "13.0": _CUDA_13_0,
    }.items()
}

_FAMILIES: dict[str, str] = {
    "5": "Maxwell",
    "6": "Pascal",
    "7.0": "Volta",
    "7.2": "Volta",
    "7.5": "Turing",
    "8": "Ampere",
    "8.9": "Ada Lovelace",
    "9": "Hopper",
    "10": "Blackwell",
    "11": "Blackwell",
    "12": "Blackwell",
}

_TORCH_TOKEN = re.compile(r"^(\d{1,2})\.(\d)([af]?)(\+PTX)?$")
_CMAKE_TOKEN = re.compile(r"^(\d{1,2})(\d)([af]?)(-real|-virtual)?$")


@dataclass(frozen=True, order=True, kw_only=True)
class GpuTarget:
    """One compute capability: SASS for it, and PTX too when ``ptx``.

    PTX-only targets are refused when parsing: TORCH_CUDA_ARCH_LIST, which the
    images export, has no way to write them.
    """

    major: int
    minor: int
    suffix: str = ""
    ptx: bool = False

    @property
    def sm(self) -> str:
        """The nvcc spelling without prefix, e.g. ``90a``."""
        return f"{self.major}{self.minor}{self.suffix}"

    @property
    def capability(self) -> str:
        """The compute capability as PyTorch writes it, e.g. ``9.0a``."""
        return f"{self.major}.{self.minor}{self.suffix}"

    @property
    def family(self) -> str:
        """The marketing family (Ampere, Hopper, …) of this compute capability."""
        cc = f"{self.major}.{self.minor}"
        return _FAMILIES.get(cc) or _FAMILIES.get(str(self.major), "unknown")


def parse_arch_list(text: str) -> tuple[GpuTarget, ...]:
    """Parse an arch list in PyTorch or CMake notation; raise ValueError if invalid."""
    tokens = [t for t in re.split(r"[;\s]+", text.strip()) if t]
    if not tokens:
        raise ValueError("the arch list is empty")
    targets: list[GpuTarget] = []
    for token in tokens:
        target = _parse_token(token)
        if any(t.sm == target.sm for t in targets):
            raise ValueError(f"{token!r} appears twice")
        targets.append(target)
    return tuple(sorted(targets))


def _parse_token(token: str) -> GpuTarget:
    if m := _TORCH_TOKEN.match(token):
        major, minor, suffix, ptx = m.groups()
        return GpuTarget(major=int(major), minor=int(minor), suffix=suffix, ptx=bool(ptx))
    if m := _CMAKE_TOKEN.match(token):
        major, minor, suffix, kind = m.groups()
        if kind == "-virtual":
            raise ValueError(f"{token!r} is PTX only, which TORCH_CUDA_ARCH_LIST cannot express; "
                             f"write {token[:-8]} for SASS and PTX")
        return GpuTarget(major=int(major), minor=int(minor), suffix=suffix, ptx=kind != "-real")
    raise ValueError(
        f"{token!r} is neither PyTorch notation (e.g. 8.6, 9.0a, 12.0+PTX) "
        "nor CMake notation (e.g. 86-real, 90a-real, 120, 120-virtual)"
    )


def unsupported(cuda: str, targets: tuple[GpuTarget, ...]) -> list[str]:
    """Return the sm names in ``targets`` that CUDA ``cuda`` cannot build."""
    known = CUDA_SASS[cuda]
    return [f"sm_{t.sm}" for t in targets if t.sm not in known]


def torch_arch_list(targets: tuple[GpuTarget, ...]) -> str:
    """Render ``TORCH_CUDA_ARCH_LIST``, e.g. ``8.0;9.0a;12.0+PTX``."""
    return ";".join(t.capability + ("+PTX" if t.ptx else "") for t in targets)


def cmake_architectures(targets: tuple[GpuTarget, ...]) -> str:
    """Render ``CMAKE_CUDA_ARCHITECTURES``: ``-real`` for SASS only, bare for SASS and PTX."""
    return ";".join(t.sm + ("" if t.ptx else "-real") for t in targets)


def gencode_flags(targets: tuple[GpuTarget, ...]) -> list[str]:
    """Render nvcc flags exactly as ``torch.utils.cpp_extension`` does: sorted, unique."""
    flags = set()
    for t in targets:
        flags.add(f"-gencode=arch=compute_{t.sm},code=sm_{t.sm}")
        if t.ptx:
            flags.add(f"-gencode=arch=compute_{t.sm},code=compute_{t.sm}")
    return sorted(flags)


def families(targets: tuple[GpuTarget, ...]) -> list[str]:
    """The GPU families that ``targets`` cover, oldest first, without repeats."""
    return list(dict.fromkeys(t.family for t in targets))
