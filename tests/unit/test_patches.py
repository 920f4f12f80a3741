"""Patched framework wheels, the parts without GNU patch: which files a patch names, and the audit of the copy."""

from __future__ import annotations

import zipfile

import pytest

from toolkit import patches, stamp
from toolkit.errors import BuildError


def test_a_copy_that_changed_more_than_the_patched_files_is_refused(patchable, tmp_path, monkeypatch):
    real = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read",  # the copy picks up other bytes for a file no patch names
                        lambda self, name, pwd=None: b"#\n" if str(getattr(name, "filename", name)) ==
                        "demo/__init__.py" else real(self, name, pwd))
    with pytest.raises(BuildError, match=r"changed \(demo/__init__.py, demo/_version.py\) are not those meant "
                                         r"to \(demo/_version.py\)"):
        stamp.patched(patchable.wheel, "1.0+proj", {"demo/_version.py": b"__version__ = '1.0+proj'\n"},
                      tmp_path / "out")


def test_targets_are_the_files_after_the_first_path_component(patchable):
    twice = patchable.patch + patchable.patch.replace("_version", "other")
    assert patches.targets(twice) == ["demo/_version.py", "demo/other.py"]
    assert patches.targets("--- /dev/null\n+++ b/demo/new.py\n") == ["demo/new.py"]
