"""``toolkit audit``: which GPU code each shared object in a wheel really carries.

The ``.nv_fatbin`` section of every ELF shared object is parsed (pyelftools
plus the fatbin container layout) into SASS and PTX entries, compared with the
arch list the matrix promises, and cross-checked with NVIDIA's ``cuobjdump``
when it is installed.
"""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import tempfile
import zipfile
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from . import cuda, tools
from .errors import BuildError

_FATBIN_MAGIC = 0xBA55ED50
_KIND = {1: "ptx", 2: "sass"}
# Entry flag bits that mark arch-specific (sm_90a) and family-specific (sm_100f) code.
_FLAG_ARCH_SPECIFIC, _FLAG_FAMILY = 0x100000, 0x200000


@dataclasses.dataclass(frozen=True)
class Entry:
    """One fatbin entry: SASS (a cubin) or PTX, for an sm like ``90a``."""

    kind: str
    sm: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObjectReport:
    """The GPU code of one shared object, and what it lacks of the promise."""

    name: str
    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    missing: tuple[str, ...]
    cuobjdump: str  # "agrees", "disagrees: …" or "not installed"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WheelReport:
    """The audit of one wheel against its promised arch list."""

    wheel: str
    expected: str
    objects: tuple[ObjectReport, ...]

    @property
    def ok(self) -> bool:
        """True when some object has device code and none misses a promised target."""
        return bool(self.objects) and not any(o.missing or o.cuobjdump.startswith("disagrees")
                                              for o in self.objects)


class MalformedFatbin(ValueError):
    """A fatbin whose sizes point nowhere sensible (truncated, corrupt, or not a fatbin at all)."""


_CONTAINER_HEADER, _ENTRY_HEADER = 16, 44  # the smallest headers that hold the fields read below


def fatbin_entries(data: bytes) -> list[Entry]:
    """Parse one or more concatenated fatbin containers into their entries; MalformedFatbin when corrupt."""
    entries, offset = [], 0
    while offset + 16 <= len(data):
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", data, offset)
        if magic != _FATBIN_MAGIC:  # padding between containers
            offset += 8
            continue
        pos, end = offset + header_size, offset + header_size + fat_size
        if header_size < _CONTAINER_HEADER or end > len(data):
            raise MalformedFatbin(f"container at offset {offset}: header size {header_size}, body size {fat_size}, "
                                  f"{len(data) - offset} bytes left")
        while pos < end:
            if pos + _ENTRY_HEADER > end:
                raise MalformedFatbin(f"entry at offset {pos} runs past its container's end ({end})")
            kind, _v, entry_header, padded = struct.unpack_from("<HHIQ", data, pos)
            if entry_header < _ENTRY_HEADER:
                raise MalformedFatbin(f"entry at offset {pos}: header size {entry_header}")
            arch, = struct.unpack_from("<I", data, pos + 28)
            flags, = struct.unpack_from("<I", data, pos + 40)
            suffix = "a" if flags & _FLAG_ARCH_SPECIFIC else "f" if flags & _FLAG_FAMILY else ""
            if kind in _KIND:
                entries.append(Entry(_KIND[kind], f"{arch}{suffix}"))
            pos += entry_header + padded
        offset = end
    return sorted(set(entries), key=lambda e: (e.kind, int(re.match(r"\d+", e.sm).group()), e.sm))


def object_entries(blob: bytes) -> list[Entry] | None:
    """The fatbin entries of an ELF object; None when it is not ELF or has no device code."""
    try:
        section = ELFFile(io.BytesIO(blob)).get_section_by_name(".nv_fatbin")
    except ELFError:
        return None
    return fatbin_entries(section.data()) if section is not None else None


def audit_wheel(wheel: Path, expected: tuple[cuda.GpuTarget, ...]) -> WheelReport:
    """Audit every shared object inside ``wheel`` against ``expected``."""
    objects = []
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"{wheel}: cannot be read as a wheel: {exc}") from None
    with archive as zf:
        for name in sorted(n for n in zf.namelist() if re.search(r"\.so(\.\d+)*$", n)):
            blob = zf.read(name)
            try:
                entries = object_entries(blob)
            except MalformedFatbin as exc:
                raise BuildError(f"{wheel.name}: {name}: malformed .nv_fatbin section: {exc}") from None
            if entries is None:
                continue
            objects.append(_report(name, entries, expected, _cuobjdump_check(blob, entries)))
    return WheelReport(wheel=wheel.name, expected=cuda.torch_arch_list(expected), objects=tuple(objects))


def _report(name: str, entries: list[Entry], expected: tuple[cuda.GpuTarget, ...], checked: str) -> ObjectReport:
    sass = tuple(e.sm for e in entries if e.kind == "sass")
    ptx = tuple(e.sm for e in entries if e.kind == "ptx")
    missing = [f"sm_{t.sm} (SASS)" for t in expected if t.sm not in sass]
    missing += [f"compute_{t.sm} (PTX)" for t in expected if t.ptx and t.sm not in ptx]
    return ObjectReport(name=name, sass=sass, ptx=ptx, missing=tuple(missing), cuobjdump=checked)


def _cuobjdump_check(blob: bytes, entries: list[Entry]) -> str:
    exe = tools.which("cuobjdump")
    if exe is None:
        return "not installed"
    with tempfile.NamedTemporaryFile(suffix=".so") as tmp:
        tmp.write(blob)
        tmp.flush()
        out = tools.run([exe, "--list-elf", "--list-ptx", tmp.name], capture=True, quiet=True).stdout
    # cuobjdump names family-specific cubins without their "f" (sm_100f SASS is listed as sm_100).
    theirs = {("sass" if kind == "cubin" else "ptx", sm) for sm, kind in re.findall(r"\.sm_(\w+?)\.(cubin|ptx)", out)}
    ours = {(e.kind, e.sm[:-1] if e.kind == "sass" and e.sm.endswith("f") else e.sm) for e in entries}
    return "agrees" if theirs == ours else f"disagrees: cuobjdump lists {sorted(theirs)}"


def to_json(report: WheelReport) -> dict:
    """The report as a manifest record."""
    return {"ok": report.ok, "expected": report.expected,
            "objects": [dataclasses.asdict(o) for o in report.objects]}


def describe(report: WheelReport) -> str:
    """One line per shared object: what it carries and what it lacks."""
    if not report.objects:
        return f"{report.wheel}: no shared object with device code (.nv_fatbin) found"
    return "; ".join(f"{o.name}: SASS {' '.join('sm_' + s for s in o.sass)}, PTX "
                     f"{' '.join('compute_' + p for p in o.ptx) or 'none'}"
                     + (f"; MISSING {', '.join(o.missing)}" if o.missing else "")
                     + ("" if o.cuobjdump in ("agrees", "not installed") else f"; {o.cuobjdump}")
                     for o in report.objects)
