"""The release SBOM: CycloneDX 1.6 from cyclonedx-python-lib, standard purls, refused when not schema-valid."""

from __future__ import annotations

import json

import pytest

from toolkit import publish
from toolkit.errors import PublishError
from toolkit.matrix import load_matrix

WHEEL = {"id": "wheel:saxpy:cu130:x86_64", "file": "saxpy-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl",
         "sha256": "68c3a461" * 8}
IMAGE = {"id": "image:none:cu130:aarch64", "tag": "127.0.0.1:5000/gpu-toolkit/none:0.1.0-cu130",
         "platform": "linux/arm64", "digest": "sha256:" + "d4c2790b" * 8}


def test_the_sbom_names_each_artifact_by_a_standard_purl_and_its_sha256(request, tmp_path):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    sbom = json.loads(publish.write_sbom(m, [WHEEL], [IMAGE], tmp_path).read_text())
    assert sbom["specVersion"] == "1.6" and sbom["metadata"]["component"]["name"] == m.project.name
    parts = {c["bom-ref"]: c for c in sbom["components"]}
    wheel, image = parts[WHEEL["id"]], parts[IMAGE["id"]]
    assert wheel["purl"] == ("pkg:pypi/saxpy@0.1.0%2Bcu130?file_name="
                             "saxpy-0.1.0%2Bcu130-cp310-abi3-manylinux_2_34_x86_64.whl")
    assert wheel["hashes"] == [{"alg": "SHA-256", "content": WHEEL["sha256"]}]
    assert image["purl"] == ("pkg:oci/none@sha256:" + "d4c2790b" * 8 + "?arch=arm64&repository_url="
                             "127.0.0.1:5000/gpu-toolkit/none&tag=0.1.0-cu130")
    assert (image["type"], image["name"], image["version"]) == ("container", "127.0.0.1:5000/gpu-toolkit/none",
                                                                "0.1.0-cu130")
    assert sbom["dependencies"][0] == {"ref": m.project.name, "dependsOn": sorted(parts)}


def test_an_sbom_the_schema_refuses_is_never_written(request, tmp_path):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    with pytest.raises(PublishError, match=r"CycloneDX 1\.6 schema"):
        publish.write_sbom(m, [{**WHEEL, "sha256": ""}], [], tmp_path)  # an empty digest
    assert not (tmp_path / "sbom.cdx.json").exists()
