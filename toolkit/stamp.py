"""Copies of a built wheel under another version or as a wheel variant, and the check that only metadata changed.

The files a project built (its extension modules, its Python code) are never touched: a copy renames the
``.dist-info`` folder, rewrites ``METADATA``'s ``Version`` (and adds ``variant.json`` for a variant) and
lets the ``wheel`` library write ``RECORD``. Every entry keeps the date and mode it had, and RECORD takes the
date of the original's RECORD, so a copy of the same wheel is the same file on every machine.
"""

from __future__ import annotations

import calendar
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.utils import parse_wheel_filename
from packaging.version import Version
from variantlib.api import VariantDescription, VariantProperty, make_variant_dist_info
from variantlib.constants import VALIDATION_WHEEL_NAME_REGEX, VARIANT_DIST_INFO_FILENAME
from variantlib.models.variant_info import ProviderInfo, VariantInfo
from wheel.wheelfile import WheelFile

from .errors import BuildError

# The NVIDIA provider that installers know (uv vendors it under this plugin API; the PyPI package of that
# name is still a placeholder, so properties cannot be validated by a plugin here).
NVIDIA = VariantInfo(namespace_priorities=["nvidia"], providers={"nvidia": ProviderInfo(
    requires=["nvidia-variant-provider"], plugin_api="nvidia_variant_provider.plugin:NvidiaVariantPlugin")})
_VERSION_LINE = re.compile(rb"^Version: .*$", re.MULTILINE)


def with_version(wheel: Path, version: str, out: Path) -> Path:
    """``wheel`` as ``version`` (e.g. ``0.1.0`` from ``0.1.0+cu130``, or the reverse), written into ``out``."""
    return _rewrite(wheel, out, version=version, suffix="", extra={})


def variant(wheel: Path, version: str, label: str, properties: list[str], out: Path) -> Path:
    """A PEP 825 wheel variant of ``wheel`` as ``version``: the file name ends in ``-<label>``, and the dist-info
    holds ``variant.json`` with ``properties`` (``nvidia :: cuda_version_lower_bound :: 13.0`` …)."""
    description = VariantDescription(properties=[VariantProperty.from_str(p) for p in properties], label=label)
    info = make_variant_dist_info(description, variant_info=NVIDIA)
    return _rewrite(wheel, out, version=version, suffix=f"-{label}",
                    extra={VARIANT_DIST_INFO_FILENAME: info.encode()})


def patched(wheel: Path, version: str, files: dict[str, bytes], out: Path) -> Path:
    """``wheel`` as ``version`` with ``files`` (path in the wheel -> new bytes) replaced or added, written into
    ``out``; only those files and the dist-info may differ from the original (checked)."""
    return _rewrite(wheel, out, version=version, suffix="", extra={}, replace=files)


def base(filename: str) -> str:
    """The wheel file name without its variant label (``…_x86_64-cu130.whl`` → ``…_x86_64.whl``), which
    ``packaging`` parses."""
    match = VALIDATION_WHEEL_NAME_REGEX.fullmatch(filename)
    return f"{match.group('base_wheel_name')}.whl" if match else filename


def content_changes(original: Path, copy: Path) -> list[str]:
    """Every file outside the dist-info that differs between two wheels (missing on either side, or other
    bytes); empty when a copy changed metadata only."""
    def payload(path: Path) -> dict[str, int]:
        with zipfile.ZipFile(path) as z:
            return {i.filename: i.CRC for i in z.infolist() if ".dist-info/" not in i.filename}
    a, b = payload(original), payload(copy)
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


def _rewrite(wheel: Path, out: Path, *, version: str, suffix: str, extra: dict[str, bytes],
             replace: dict[str, bytes] | None = None) -> Path:
    replace = replace or {}
    name = parse_wheel_filename(wheel.name)[0]
    new = Version(version)
    dist = name.replace("-", "_")
    target = out / f"{dist}-{new}-{wheel.name.split('-', 2)[2].removesuffix('.whl')}{suffix}.whl"
    out.mkdir(parents=True, exist_ok=True)
    with WheelFile(wheel) as src:
        old_info, new_info = src.dist_info_path, f"{dist}-{new}.dist-info"
        record = src.getinfo(src.record_path)
        names = set(src.namelist())
        # read before the copy: writing an entry into dst moves its ZipInfo's offsets
        meant = sorted(name for name, data in replace.items() if name not in names or src.read(name) != data)
        with _source_date(record.date_time), WheelFile(target, "w") as dst:
            for info in src.infolist():
                if info.filename == src.record_path:
                    continue
                folder = info.filename.endswith("/")
                data = b"" if folder else replace[info.filename] if info.filename in replace else src.read(info)
                if info.filename == f"{old_info}/METADATA":
                    data = _VERSION_LINE.sub(f"Version: {new}".encode(), data, count=1)
                info.filename = info.filename.replace(old_info, new_info, 1)
                # folder entries are kept as they were, outside RECORD
                (zipfile.ZipFile.writestr if folder else WheelFile.writestr)(dst, info, data)
            added = {**{f"{new_info}/{name}": data for name, data in extra.items()},
                     **{name: data for name, data in replace.items() if name not in names}}
            for filename, data in added.items():
                dated = zipfile.ZipInfo(filename, date_time=record.date_time)
                dated.external_attr, dated.compress_type = record.external_attr, record.compress_type
                dst.writestr(dated, data)
    if (changed := content_changes(wheel, target)) != meant:
        raise BuildError(f"{target.name}: the files of {wheel.name} that changed ({', '.join(changed) or 'none'}) "
                         f"are not those meant to ({', '.join(meant) or 'only its metadata'})")
    return target


@contextmanager
def _source_date(date_time: tuple[int, ...]) -> Iterator[None]:
    """The ``wheel`` library dates the RECORD it writes by SOURCE_DATE_EPOCH: the original RECORD's date."""
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(calendar.timegm((*date_time, 0, 0, 0)))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SOURCE_DATE_EPOCH")
        else:
            os.environ["SOURCE_DATE_EPOCH"] = saved
