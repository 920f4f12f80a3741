"""Patched framework wheels: GNU patch on the files a patch names, then a local label and RECORD by the wheel
library."""

from __future__ import annotations

import pytest
from wheel.wheelfile import WheelFile

from toolkit import cli, images, patches, smoke, stamp
from toolkit.errors import ConfigError
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan
from toolkit.wheels import sha256

pytestmark = pytest.mark.integration

def test_a_patch_changes_only_its_file_and_the_wheel_gets_the_local_label(patchable, tmp_path):
    wheel = patchable.wheel
    (tmp_path / "work").mkdir()
    files = patches.apply(wheel, [("p/0001.patch", patchable.patch.encode())], tmp_path / "work",
                          "m.toml: framework.x.patches")
    assert files == {"demo/_version.py": patchable.version_py.replace("'1.0'", "'1.0+proj'").encode()}
    out = stamp.patched(wheel, "1.0+proj", files, tmp_path / "out")
    assert out.name == "demo-1.0+proj-py3-none-any.whl"
    assert stamp.content_changes(wheel, out) == ["demo/_version.py"]
    with WheelFile(out) as w:  # reading checks every file against the RECORD the wheel library wrote
        assert w.read("demo/_version.py").decode().startswith("__version__ = '1.0+proj'")
        assert "Version: 1.0+proj" in w.read("demo-1.0+proj.dist-info/METADATA").decode()
        assert w.read("demo/__init__.py") == b"from ._version import __version__\n"


def test_a_patch_that_does_not_apply_names_its_key_file_and_hunk(patchable, tmp_path):
    stale = patchable.patch.replace(" GREETING = 'hello'", " GREETING = 'hi'")  # its context line is not the file's
    (tmp_path / "work").mkdir()
    with pytest.raises(ConfigError) as caught:
        patches.apply(patchable.wheel, [("p/0001.patch", patchable.patch.encode()), ("p/0002.patch", stale.encode())],
                      tmp_path / "work", "m.toml: framework.x.patches")
    message = str(caught.value)
    assert message.startswith("m.toml: framework.x.patches[1]: p/0002.patch does not apply to "
                              "demo-1.0-py3-none-any.whl: ")
    assert "demo/_version.py" in message and "Hunk #1 FAILED at 1" in message
    assert list((tmp_path / "work").rglob("*.rej")) == [], "no reject files are left behind"


SIX_PATCH = """Report the patched build in six.__version__.

--- a/six.py
+++ b/six.py
@@ -31,3 +31,3 @@
 __author__ = "Benjamin Peterson <benjamin@python.org>"
-__version__ = "1.16.0"
+__version__ = "1.16.0+gpu.toolkit"
\x20
"""  # the last context line is the blank line after: GNU patch anchors a hunk with less context after than
# before at the end of the file
FRAMEWORK = """
[framework.sixpatched]
requirements = ["six==1.16.0"]
module = "six"
cuda = ["13.0"]
arch = ["x86_64"]
smoke = ["python", "-c", "import six; print('six', six.__version__)"]
patches = ["patches/six/0001-version.patch"]
"""


@pytest.fixture
def patched_repo(repo_copy):
    """A copy of the repository whose matrix has one more framework: six from PyPI, with a patch."""
    root = repo_copy
    (root / "patches" / "six").mkdir(parents=True)
    (root / "patches" / "six" / "0001-version.patch").write_text(SIX_PATCH)
    matrix = root / "matrix.toml"
    text = matrix.read_text().replace('framework = ["none", ', 'framework = ["none", "sixpatched", ', 1)
    matrix.write_text(text + FRAMEWORK)
    assert cli.main(["--matrix", str(matrix), "render"]) == 0
    return root


def test_a_patched_framework_wheel_is_labelled_installed_and_seen_by_the_smoke_test(engine_up, patched_repo):
    m = load_matrix(patched_repo / "matrix.toml")
    plan = make_plan(m, Selection(cuda=("13.0",), framework=("sixpatched",)))
    dist = patched_repo / "dist"
    (record,) = images.build(m, plan, patched_repo, dist)
    made = record["patched_wheel"]
    assert made["file"] == "six-1.16.0+gpu.toolkit-py2.py3-none-any.whl"
    assert made["from"] == "six-1.16.0-py2.py3-none-any.whl" and made["changed"] == ["six.py"]
    assert made["sha256"] == sha256(dist / made["file"])
    (run,) = [r for r in smoke.smoke(m, plan, dist) if r.artifact == record["id"]]
    assert run.result == "pass", run.detail  # the probe found six 1.16.0+gpu.toolkit installed
    assert "six 1.16.0+gpu.toolkit" in run.detail  # the patched module itself says so


def test_a_patch_that_no_longer_applies_stops_the_build_naming_file_and_hunk(engine_up, patched_repo, capsys):
    patch = patched_repo / "patches" / "six" / "0001-version.patch"
    patch.write_text(SIX_PATCH.replace('"1.16.0"\n+', '"1.15.0"\n+'))
    matrix = patched_repo / "matrix.toml"
    assert cli.main(["--matrix", str(matrix), "images", "--framework", "sixpatched", "--cuda", "13.0",
                     "--dist", str(patched_repo / "dist")]) == 2
    err = capsys.readouterr().err
    assert (f"{matrix}: framework.sixpatched.patches[0]: patches/six/0001-version.patch does not apply to "
            "six-1.16.0-py2.py3-none-any.whl: checking file six.py; Hunk #1 FAILED at 31.") in err
    assert not (patched_repo / "dist" / "manifest.json").exists()
