"""Patched framework wheels, the parts without GNU patch: which files a patch names, and the audit of the copy."""

from __future__ import annotations

import zipfile

import pytest
from wheel.wheelfile import WheelFile

from toolkit import patches, stamp
from toolkit.errors import BuildError

VERSION_PY = "__version__ = '1.0'\nGREETING = 'hello'\n"
PATCH = """Say who patched it.

--- a/demo/_version.py
+++ b/demo/_version.py
@@ -1,2 +1,2 @@
-__version__ = '1.0'
+__version__ = '1.0+proj'
 GREETING = 'hello'
"""


@pytest.fixture
def wheel(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as w:
        w.writestr("demo/__init__.py", "from ._version import __version__\n")
        w.writestr("demo/_version.py", VERSION_PY)
        w.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        w.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return path


def test_a_copy_that_changed_more_than_the_patched_files_is_refused(wheel, tmp_path, monkeypatch):
    real = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read",  # the copy picks up other bytes for a file no patch names
                        lambda self, name, pwd=None: b"#\n" if str(getattr(name, "filename", name)) ==
                        "demo/__init__.py" else real(self, name, pwd))
    with pytest.raises(BuildError, match=r"changed \(demo/__init__.py, demo/_version.py\) are not those meant "
                                         r"to \(demo/_version.py\)"):
        stamp.patched(wheel, "1.0+proj", {"demo/_version.py": b"__version__ = '1.0+proj'\n"}, tmp_path / "out")


def test_targets_are_the_files_after_the_first_path_component():
    assert patches.targets(PATCH + PATCH.replace("_version", "other")) == ["demo/_version.py", "demo/other.py"]
    assert patches.targets("--- /dev/null\n+++ b/demo/new.py\n") == ["demo/new.py"]
