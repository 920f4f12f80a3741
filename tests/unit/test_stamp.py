"""Wheel copies under another version or as a variant: reproducible, metadata-only, valid RECORD."""

from __future__ import annotations

import calendar
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from wheel.wheelfile import WheelFile

from toolkit import stamp

ORIGINAL = "demo_pkg-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl"


STAMPED = (2026, 11, 23, 12, 26, 10)


@pytest.fixture
def built(tmp_path: Path, monkeypatch) -> Path:
    """A small wheel as a build backend writes it: a folder entry, a module, dist-info with a local label, every
    entry (RECORD too) dated from SOURCE_DATE_EPOCH."""
    path = tmp_path / "in" / ORIGINAL
    path.parent.mkdir()
    with monkeypatch.context() as env, WheelFile(path, "w") as whl:  # the copies are made without it
        env.setenv("SOURCE_DATE_EPOCH", str(calendar.timegm((*STAMPED, 0, 0, 0))))
        stamped = STAMPED
        whl.writestr(zipfile.ZipInfo("demo_pkg/", date_time=stamped), b"")
        whl.writestr(zipfile.ZipInfo("demo_pkg/__init__.py", date_time=stamped), b"X = 1\n")
        whl.writestr(zipfile.ZipInfo("demo_pkg-0.1.0+cu130.dist-info/METADATA", date_time=stamped),
                     b"Metadata-Version: 2.4\nName: demo-pkg\nVersion: 0.1.0+cu130\n\nVersion: in the body\n")
        whl.writestr(zipfile.ZipInfo("demo_pkg-0.1.0+cu130.dist-info/WHEEL", date_time=stamped),
                     b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp310-abi3-manylinux_2_34_x86_64\n")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_copy_without_the_label_is_the_same_file_every_time(built, tmp_path):
    one = stamp.with_version(built, "0.1.0", tmp_path / "a")
    two = stamp.with_version(built, "0.1.0", tmp_path / "b")
    assert one.name == "demo_pkg-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl"
    assert _digest(one) == _digest(two)
    with WheelFile(one) as whl:  # reading checks every file against RECORD
        names = whl.namelist()
        metadata = whl.read("demo_pkg-0.1.0.dist-info/METADATA").decode()
        assert whl.read("demo_pkg/__init__.py") == b"X = 1\n"
    assert "demo_pkg-0.1.0.dist-info/RECORD" in names and not any("+cu130" in n for n in names)
    assert "\nVersion: 0.1.0\n" in metadata and "Version: in the body" in metadata  # the header only
    assert stamp.content_changes(built, one) == []
    with zipfile.ZipFile(one) as z:  # the original's dates, RECORD's too: not the time of the copy
        assert {i.date_time for i in z.infolist()} == {STAMPED}


def test_a_variant_carries_variant_json_and_its_label(built, tmp_path):
    props = ["nvidia :: cuda_version_lower_bound :: 13.0", "nvidia :: sm_arch :: 90_real"]
    made = stamp.variant(built, "0.1.0", "cu130", props, tmp_path)
    assert made.name == "demo_pkg-0.1.0-cp310-abi3-manylinux_2_34_x86_64-cu130.whl"
    assert stamp.base(made.name) == "demo_pkg-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl"
    with WheelFile(made) as whl:
        info = json.loads(whl.read("demo_pkg-0.1.0.dist-info/variant.json"))
    assert info["variants"] == {"cu130": {"nvidia": {"cuda_version_lower_bound": ["13.0"], "sm_arch": ["90_real"]}}}
    assert info["providers"]["nvidia"]["plugin-api"] == "nvidia_variant_provider.plugin:NvidiaVariantPlugin"
    assert _digest(made) == _digest(stamp.variant(built, "0.1.0", "cu130", props, tmp_path / "again"))


def test_content_changes_name_each_changed_file(built, tmp_path):
    other = tmp_path / "other" / ORIGINAL
    other.parent.mkdir()
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"X = 2\n" if info.filename == "demo_pkg/__init__.py" else data)
        dst.writestr("demo_pkg/extra.py", b"")
    assert stamp.content_changes(built, other) == ["demo_pkg/__init__.py", "demo_pkg/extra.py"]
