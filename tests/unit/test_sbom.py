"""SBOMs: CycloneDX 1.6 from cyclonedx-python-lib, standard purls, refused when not schema-valid."""

from __future__ import annotations

import json
import zipfile

import pytest

from toolkit import sbom
from toolkit.errors import PublishError
from toolkit.matrix import load_matrix

WHEEL = {"id": "wheel:saxpy:cu130:x86_64", "file": "saxpy-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl",
         "sha256": "68c3a461" * 8}
IMAGE = {"id": "image:none:cu130:aarch64", "tag": "127.0.0.1:5000/gpu-toolkit/none:0.1.0-cu130",
         "platform": "linux/arm64", "digest": "sha256:" + "d4c2790b" * 8}
DPKG_STATUS = """Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u10

Package: gone
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0

Package: python3.11
Status: install ok installed
Architecture: arm64
Source: python3.11
Version: 3.11.2-6+deb12u6
Description: Interactive high-level object-oriented language
 a continuation line
"""


def test_the_release_sbom_names_each_artifact_by_a_standard_purl_and_its_sha256(request, tmp_path):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    bom = json.loads(sbom.write_release(m, [WHEEL], [IMAGE], tmp_path).read_text())
    assert bom["specVersion"] == "1.6" and bom["metadata"]["component"]["name"] == m.project.name
    parts = {c["bom-ref"]: c for c in bom["components"]}
    wheel, image = parts[WHEEL["id"]], parts[IMAGE["id"]]
    assert wheel["purl"] == ("pkg:pypi/saxpy@0.1.0%2Bcu130?file_name="
                             "saxpy-0.1.0%2Bcu130-cp310-abi3-manylinux_2_34_x86_64.whl")
    assert wheel["hashes"] == [{"alg": "SHA-256", "content": WHEEL["sha256"]}]
    assert image["purl"] == ("pkg:oci/none@sha256:" + "d4c2790b" * 8 + "?arch=arm64&repository_url="
                             "127.0.0.1:5000/gpu-toolkit/none&tag=0.1.0-cu130")
    assert (image["type"], image["name"], image["version"]) == ("container", "127.0.0.1:5000/gpu-toolkit/none",
                                                                "0.1.0-cu130")
    assert bom["dependencies"][0] == {"ref": m.project.name, "dependsOn": sorted(parts)}


def test_an_sbom_the_schema_refuses_is_never_written(request, tmp_path):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    with pytest.raises(PublishError, match=r"CycloneDX 1\.6 schema"):
        sbom.write_release(m, [{**WHEEL, "sha256": ""}], [], tmp_path)  # an empty digest
    assert not (tmp_path / "sbom.cdx.json").exists()


def test_a_wheel_sbom_lists_its_requirements_and_vendored_libraries(tmp_path):
    path = tmp_path / WHEEL["file"]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("saxpy-0.1.0+cu130.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: saxpy\nVersion: 0.1.0+cu130\n"
                    "Requires-Dist: nvidia-cuda-runtime==13.0.*\nRequires-Dist: NumPy>=1.26; extra == 'test'\n")
        zf.writestr("saxpy.libs/libgomp-a34b3233.so.1.0.0", b"\x7fELF vendored")
        zf.writestr("saxpy/_core.abi3.so", b"\x7fELF own code")
    bom = json.loads(sbom.wheel(path, WHEEL))
    assert bom["metadata"]["component"]["bom-ref"] == WHEEL["id"]
    parts = {c["name"]: c for c in bom["components"]}
    assert sorted(parts) == ["libgomp-a34b3233.so.1.0.0", "numpy", "nvidia-cuda-runtime"]
    assert parts["numpy"]["purl"] == "pkg:pypi/numpy"  # PEP 503 name; the range is the requirement's
    requirement = {"name": "gpu-toolkit:requirement", "value": 'NumPy>=1.26; extra == "test"'}
    assert parts["numpy"]["properties"] == [requirement]
    assert parts["libgomp-a34b3233.so.1.0.0"]["hashes"][0]["alg"] == "SHA-256"
    depends = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert sorted(depends[WHEEL["id"]]) == sorted(c["bom-ref"] for c in bom["components"])


def test_an_image_sbom_lists_installed_debian_packages_and_python_distributions():
    system = {"var/lib/dpkg/status": DPKG_STATUS, "usr/lib/os-release": 'ID=debian\nVERSION_ID="12"\n'}
    dists = [("opt/venv/lib/python3.11/site-packages/saxpy-0.1.0+cu130.dist-info/METADATA",
              "Metadata-Version: 2.1\nName: saxpy\nVersion: 0.1.0+cu130\n\nlong description")]
    bom = json.loads(sbom.image_bom(IMAGE, system, dists))
    purls = sorted(c.get("purl", "") for c in bom["components"])
    assert purls == ["", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=arm64&distro=debian-12",
                     "pkg:deb/debian/python3.11@3.11.2-6%2Bdeb12u6?arch=arm64&distro=debian-12",
                     "pkg:pypi/saxpy@0.1.0%2Bcu130"]  # the OS has no purl; a removed package is not listed
    os_ = next(c for c in bom["components"] if c["type"] == "operating-system")
    assert (os_["name"], os_["version"]) == ("debian", "12")
    saxpy = next(c for c in bom["components"] if c["name"] == "saxpy")
    assert saxpy["properties"] == [{"name": "gpu-toolkit:location", "value": "/opt/venv/lib/python3.11/site-packages"}]
    assert bom["metadata"]["component"]["purl"].startswith("pkg:oci/none@sha256:")
